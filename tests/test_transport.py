"""The asyncio transport on both sides: ``open_tcp`` as the client, ``serve_tcp`` as the server."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from smtpshell.transport import (
    AsyncioStream,
    MockStream,
    TransportError,
    format_peer,
    open_tcp,
    serve_tcp,
)


async def _pair() -> tuple[asyncio.Server, AsyncioStream, AsyncioStream]:
    """A listener, the client stream connected to it and the server's accepted stream."""
    accepted: asyncio.Queue[AsyncioStream] = asyncio.Queue()
    server = await serve_tcp("127.0.0.1", 0, accepted.put_nowait)
    port = server.sockets[0].getsockname()[1]
    client = await open_tcp("127.0.0.1", port, timeout=5)
    return server, client, await accepted.get()


async def _read_exactly(stream: AsyncioStream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await stream.read()
        assert chunk, "end of stream"
        data += chunk
    return data


def test_an_accepted_stream_reads_writes_and_sees_the_client_close() -> None:
    async def main() -> None:
        server, client, accepted = await _pair()
        try:
            assert accepted.peer == format_peer(client._transport.get_extra_info("sockname"))
            await client.write(b"EHLO x\r\n")
            assert await _read_exactly(accepted, 8) == b"EHLO x\r\n"
            await accepted.write(b"250 ok\r\n")
            assert await _read_exactly(client, 8) == b"250 ok\r\n"
            assert not accepted.at_eof()
            await client.close()
            assert await accepted.read() == b""
            assert accepted.at_eof()
        finally:
            await accepted.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def test_server_side_start_tls_meets_the_client_side(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async def main() -> None:
        server, client, accepted = await _pair()
        try:
            server_tls, client_tls = await asyncio.gather(
                accepted.start_tls(server_ctx, "ignored.on.the.server.side", 5),
                client.start_tls(client_ctx, "localhost", 5),
            )
            assert server_tls.ssl_object is not None and client_tls.ssl_object is not None
            assert server_tls.ssl_object.server_side
            await client_tls.write(b"MAIL FROM:<a@b>\r\n")
            assert await _read_exactly(server_tls, 17) == b"MAIL FROM:<a@b>\r\n"
            await server_tls.write(b"250 ok\r\n")
            assert await _read_exactly(client_tls, 8) == b"250 ok\r\n"
            await client_tls.close()
            assert await server_tls.read() == b""
            await server_tls.close()
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def test_a_client_hello_sent_at_once_reaches_the_server_handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    """Implicit TLS: the client's first bytes must go to the TLS layer, not the plain stream."""

    async def main() -> None:
        started: asyncio.Queue[AsyncioStream] = asyncio.Queue()

        def on_accept(stream: AsyncioStream) -> None:
            async def handshake() -> None:
                started.put_nowait(await stream.start_tls(server_ctx, None, 5))

            asyncio.get_running_loop().create_task(handshake())

        server = await serve_tcp("127.0.0.1", 0, on_accept)
        port = server.sockets[0].getsockname()[1]
        try:
            client = await open_tcp("127.0.0.1", port, timeout=5, ssl_context=client_ctx,
                                    server_hostname="localhost")
            accepted = await asyncio.wait_for(started.get(), 5)
            assert accepted.ssl_object is not None and client.ssl_object is not None
            await client.close()
            await accepted.close()
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def test_a_silent_client_times_the_server_handshake_out(server_ctx: ssl.SSLContext) -> None:
    async def main() -> None:
        server, client, accepted = await _pair()
        try:
            with pytest.raises(TimeoutError):
                await accepted.start_tls(server_ctx, None, 0.1)
            await accepted.close()  # the failed handshake closed it: no wait
            assert await client.read() == b""
        finally:
            await client.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def test_format_peer() -> None:
    assert format_peer(("127.0.0.1", 2525)) == "127.0.0.1:2525"
    assert format_peer(("::1", 25, 0, 0)) == "[::1]:25"
    assert format_peer("/run/smtp.sock") == "/run/smtp.sock"


def test_mock_stream_answers_each_write_and_start_tls_returns_a_new_stream() -> None:
    async def run() -> None:
        stream = MockStream([b"220 hi\r\n", b"220 go\r\n", b"250 ok\r\n"], tls_report="report")
        assert await stream.read() == b"220 hi\r\n"
        reading = asyncio.create_task(stream.read())
        await asyncio.sleep(0)
        assert not reading.done()  # the next chunk answers the next write
        await stream.write(b"STARTTLS\r\n")
        assert await reading == b"220 go\r\n"
        tls = await stream.start_tls(ssl.create_default_context(), "mx", 5)
        assert tls is not stream and tls.tls and not stream.tls
        assert tls.tls_report == "report" and tls.ssl_object is None
        with pytest.raises(TransportError):
            await stream.write(b"in clear\r\n")  # the plain stream is finished
        await tls.write(b"EHLO me\r\n")
        assert await tls.read() == b"250 ok\r\n"
        await tls.write(b"QUIT\r\n")
        assert await tls.read() == b""  # out of chunks: the server closed
        assert tls.written == b"STARTTLS\r\nEHLO me\r\nQUIT\r\n"

    asyncio.run(run())
