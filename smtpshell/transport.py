"""The thin asyncio transport: connect, implicit TLS, STARTTLS, bounded buffers.

``NetworkStream`` is what the session needs: ``read``, ``write``, ``close``,
``abort``, ``start_tls`` (returning a new stream), and ``take_buffered`` so that
plaintext that arrived before a STARTTLS handshake can be discarded instead of being
mixed into the TLS session.  ``AsyncioStream`` implements it on an asyncio Protocol;
``open_stream`` is the default *opener* a ``Session`` connects with.  ``MockStream``
is the in-memory stand-in (httpcore's model): canned server bytes, recorded writes, a
``start_tls`` that returns a new MockStream reporting TLS.  Tests whose point is not
the network use it; the network itself is tested over real sockets on 127.0.0.1.

The same stream serves the server side of a connection (the transcript mock):
``serve_tcp`` hands each accepted connection over as a server-side ``AsyncioStream``,
whose ``start_tls`` performs the server side of the handshake.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol


class TransportError(Exception):
    """A network failure, described in one line for the user."""


class NetworkStream(Protocol):
    async def read(self) -> bytes: ...
    async def write(self, data: bytes) -> None: ...
    async def close(self) -> None: ...
    def abort(self) -> None: ...
    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str | None, timeout: float | None
    ) -> NetworkStream: ...
    def take_buffered(self) -> bytes: ...
    @property
    def ssl_object(self) -> ssl.SSLObject | None: ...
    @property
    def peer(self) -> str: ...


class Opener(Protocol):
    """How a session opens its stream (``open_stream``; tests pass ``MockStream.opener``)."""

    async def __call__(
        self,
        *,
        host: str,
        port: int,
        unix_path: str | None,
        timeout: float | None,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        family: int,
        local_addr: tuple[str, int] | None,
    ) -> NetworkStream: ...


_HIGH_WATER = 256 * 1024


class _StreamProtocol(asyncio.Protocol):
    """Collects received bytes; pauses reading above a high-water mark (bounded memory).

    ``on_made`` is called from ``connection_made`` (a listener's accepted connections).
    """

    def __init__(self, on_made: Callable[[_StreamProtocol], None] | None = None) -> None:
        self._on_made = on_made
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.eof = False
        self.error: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._paused_reading = False
        self._paused_writing = False
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self._on_made is not None:
            self._on_made(self)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size > _HIGH_WATER and self.transport and not self._paused_reading:
            self._paused_reading = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self.eof = True
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self.lost.set()
        self._wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    @property
    def paused_writing(self) -> bool:
        return self._paused_writing

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.size = 0
        if self._paused_reading and self.transport is not None:
            self._paused_reading = False
            self.transport.resume_reading()
        return data

    async def wait_data(self) -> None:
        while not self.chunks and not self.eof:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None

    async def drain(self) -> None:
        while self._paused_writing and self.transport and not self.transport.is_closing():
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain
            self._drain = None


class AsyncioStream:
    """A connection; ``server_side`` streams (from ``serve_tcp``) do the server side of TLS."""

    def __init__(
        self,
        transport: asyncio.Transport,
        protocol: _StreamProtocol,
        peer: str,
        *,
        server_side: bool = False,
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._peer = peer
        self._server_side = server_side

    @property
    def peer(self) -> str:
        return self._peer

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        obj = self._transport.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject) else None

    async def read(self) -> bytes:
        """Whatever has arrived (at least one byte), or b"" at end of stream."""
        await self._protocol.wait_data()
        data = self._protocol.take()
        if not data and self._protocol.error is not None:
            raise TransportError(describe_os_error(self._protocol.error, self._peer))
        return data

    async def write(self, data: bytes) -> None:
        if self._transport.is_closing():
            raise TransportError(f"cannot send to {self._peer}: the connection is closed")
        self._transport.write(data)
        await self._protocol.drain()

    def take_buffered(self) -> bytes:
        return self._protocol.take()

    def at_eof(self) -> bool:
        """True when the peer has closed its side and everything it sent has been read."""
        return self._protocol.eof and not self._protocol.chunks

    def abort(self) -> None:
        """Close at once, dropping whatever is not yet sent."""
        self._transport.abort()

    async def close(self) -> None:
        if not self._transport.is_closing():
            if self._protocol.paused_writing:
                # The peer stopped reading: a graceful close would wait to flush for ever.
                self._transport.abort()
            else:
                self._transport.close()
        try:
            await asyncio.wait_for(self._protocol.lost.wait(), 2.0)
        except TimeoutError:
            self._transport.abort()

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str | None, timeout: float | None
    ) -> AsyncioStream:
        """The TLS handshake (the server's side on a server-side stream, which ignores
        ``server_hostname``); the returned stream carries on over TLS."""
        loop = asyncio.get_running_loop()
        protocol = _StreamProtocol()
        if self._server_side:
            # The client speaks first: its ClientHello may be arriving already and must
            # reach the TLS layer, not this stream, in the loop iteration before wait_for
            # starts loop.start_tls (which pauses reading too, and resumes it).
            self._transport.pause_reading()
        try:
            # Our own deadline, so a silent peer is a TimeoutError (asyncio's own handshake
            # timeout, kept as a backstop, reports a ConnectionAbortedError instead).
            new = await asyncio.wait_for(
                loop.start_tls(
                    self._transport,
                    protocol,
                    context,
                    server_side=self._server_side,
                    server_hostname=None if self._server_side else _sni(server_hostname),
                    ssl_handshake_timeout=None if timeout is None else timeout + 5,
                ),
                timeout,
            )
            if new is None:  # the peer closed the connection cleanly during the handshake
                raise ConnectionResetError("the connection closed during the TLS handshake")
        except BaseException:
            # The transport belonged to the failed TLS layer, which closed it; this
            # stream's protocol is never told, so mark it lost (close() need not wait).
            self._protocol.connection_lost(None)
            raise
        assert isinstance(new, asyncio.Transport)
        protocol.transport = new
        return AsyncioStream(new, protocol, self._peer, server_side=self._server_side)


def _sni(name: str | None) -> Any:
    """``server_hostname`` for ``ssl``: an ASCII name as the bytes ``ssl`` would make of it.

    ``ssl`` encodes a ``str`` with the IDNA codec, whose first use loads ``stringprep``
    and its tables before the ClientHello can go; for an ASCII name (or an address) that
    codec only checks label lengths and returns the name's ASCII bytes, so these are
    passed instead (``ssl`` takes ``bytes`` as they are).  Anything else stays a ``str``.
    """
    if name is None or not name.isascii():
        return name
    *labels, last = name.split(".")
    if all(0 < len(label) < 64 for label in labels) and len(last) < 64:
        return name.encode("ascii")
    return name


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_peer(peername: object) -> str:
    """A socket's ``peername`` extra info as text: ``host:port``, or as it is (a Unix path)."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        return format_address(str(peername[0]), int(peername[1]))
    return str(peername)


def describe_os_error(exc: BaseException, target: str) -> str:
    """One line in words for a network error."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host name for {target}: {exc.strerror}"
    if isinstance(exc, TimeoutError):
        return f"timed out connecting to {target}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {target} (nothing listening on that port?)"
    if isinstance(exc, ConnectionResetError):
        return f"connection reset by {target}"
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return f"network unreachable: {target} ({exc.strerror})"
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"cannot use that address for {target} ({exc.strerror})"
        return f"network error with {target}: {exc.strerror or exc}"
    return f"error with {target}: {exc}"


async def open_tcp(
    host: str,
    port: int,
    *,
    timeout: float | None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    family: int = 0,
    local_addr: tuple[str, int] | None = None,
) -> AsyncioStream:
    """Connect; with ``ssl_context`` the TLS handshake runs too (implicit TLS).

    TLS errors (``ssl.SSLError``) are passed through so the caller can explain them
    with ``tls.explain_tls_error``; network errors become ``TransportError``.
    """
    loop = asyncio.get_running_loop()
    connecting = loop.create_connection(
        _StreamProtocol,
        host,
        port,
        ssl=ssl_context,
        server_hostname=_sni(server_hostname) if ssl_context else None,
        family=family,
        local_addr=local_addr,
    )
    return await _connected(connecting, format_address(host, port), timeout)


async def open_unix(
    path: str, *, timeout: float | None, ssl_context: ssl.SSLContext | None = None
) -> AsyncioStream:
    loop = asyncio.get_running_loop()
    connecting = loop.create_unix_connection(_StreamProtocol, path, ssl=ssl_context)
    return await _connected(connecting, path, timeout)


async def _connected(
    connecting: Coroutine[Any, Any, tuple[asyncio.BaseTransport, _StreamProtocol]],
    target: str,
    timeout: float | None,
) -> AsyncioStream:
    """Await a connection within ``timeout``: TLS errors pass, network errors in words."""
    try:
        transport, protocol = await asyncio.wait_for(connecting, timeout)
    except ssl.SSLError:
        raise
    except (OSError, TimeoutError) as exc:
        raise TransportError(describe_os_error(exc, target)) from exc
    assert isinstance(transport, asyncio.Transport)
    return AsyncioStream(transport, protocol, target)


async def serve_tcp(
    host: str, port: int, on_accept: Callable[[AsyncioStream], None]
) -> asyncio.Server:
    """Listen on ``host``:``port`` (0: any free port); raises OSError if it cannot be bound.

    Each accepted connection is handed to ``on_accept`` as a server-side stream, from
    ``connection_made``: before anything is read, so a handler may start TLS at once.
    """

    def accepted(protocol: _StreamProtocol) -> None:
        assert protocol.transport is not None
        peer = format_peer(protocol.transport.get_extra_info("peername"))
        on_accept(AsyncioStream(protocol.transport, protocol, peer, server_side=True))

    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _StreamProtocol(accepted), host, port)


async def open_stream(
    *,
    host: str,
    port: int,
    unix_path: str | None = None,
    timeout: float | None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    family: int = 0,
    local_addr: tuple[str, int] | None = None,
) -> NetworkStream:
    """The default opener: a Unix socket when ``unix_path`` is given, else TCP."""
    if unix_path:
        return await open_unix(unix_path, timeout=timeout, ssl_context=ssl_context)
    return await open_tcp(
        host,
        port,
        timeout=timeout,
        ssl_context=ssl_context,
        server_hostname=server_hostname,
        family=family,
        local_addr=local_addr,
    )


class _Script:
    """What a MockStream and the streams its ``start_tls`` made share."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks: deque[bytes] = deque(chunks)
        self.writes: list[bytes] = []
        self.released = 1  # the first chunk (the greeting) is there from the start
        self.given = 0
        self.closed = False
        self.changed = asyncio.Event()


class MockStream:
    """A stream of canned server bytes that records what the client writes.

    ``chunks[0]`` can be read at once (the greeting); each later chunk becomes readable
    after one more ``write`` (the server answers what it was sent).  An empty chunk is
    the server closing, at once (``[b"220 hi\\r\\n", b"221 bye\\r\\n", b""]``).  When the
    chunks run out, ``read`` returns ``b""`` after the next write, or at ``close``.
    ``start_tls`` returns a new MockStream on the same script whose ``tls`` is true and
    whose ``tls_report`` is the one given here (any object: the session shows it as the
    handshake's result); the old stream is then dead.
    """

    def __init__(
        self,
        chunks: Iterable[bytes] = (),
        *,
        tls: bool = False,
        tls_report: object | None = None,
        _script: _Script | None = None,
    ) -> None:
        self._script = _script if _script is not None else _Script(chunks)
        self.tls = tls
        self.tls_report = tls_report
        self.started_tls: MockStream | None = None
        self.aborted = False

    @property
    def written(self) -> bytes:
        """Everything the client wrote, on this stream and the ones start_tls made."""
        return b"".join(self._script.writes)

    @property
    def writes(self) -> list[bytes]:
        return list(self._script.writes)

    @property
    def peer(self) -> str:
        return "mock"

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        return None

    @property
    def closed(self) -> bool:
        return self._script.closed

    def opener(self) -> Opener:
        """An opener that hands out this stream (``Session(..., opener=stream.opener())``)."""

        async def open_mock(**_: object) -> NetworkStream:
            return self

        return open_mock

    def _check(self) -> None:
        if self._script.closed or self.started_tls is not None:
            raise TransportError("cannot use the mock stream: it is closed")

    async def read(self) -> bytes:
        script = self._script
        while True:
            if self.started_tls is not None:
                return b""
            if script.closed:
                return b""
            if script.chunks and not script.chunks[0] and script.given >= 1:
                script.chunks.popleft()  # the server closes without being asked
                return b""
            if script.given < script.released:
                if script.chunks:
                    script.given += 1
                    return script.chunks.popleft()
                return b""
            script.changed.clear()
            await script.changed.wait()

    async def write(self, data: bytes) -> None:
        self._check()
        script = self._script
        script.writes.append(bytes(data))
        script.released += 1
        script.changed.set()

    def take_buffered(self) -> bytes:
        return b""

    def abort(self) -> None:
        self.aborted = True
        self._script.closed = True
        self._script.changed.set()

    async def close(self) -> None:
        self._script.closed = True
        self._script.changed.set()

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str | None, timeout: float | None
    ) -> MockStream:
        self._check()
        new = MockStream(tls=True, tls_report=self.tls_report, _script=self._script)
        self.started_tls = new
        self._script.changed.set()
        return new
