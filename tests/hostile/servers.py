"""Small misbehaving SMTP servers on 127.0.0.1 (port 0), each a coroutine per connection."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import trustme

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Hostile:
    host: str
    port: int
    received: bytearray


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[Hostile]:
    """Run ``handler`` for each connection; close everything afterwards."""
    received = bytearray()
    tasks: set[asyncio.Task[None]] = set()

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Hostile("127.0.0.1", port, received)
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*(names or ("localhost", "127.0.0.1"))).configure_cert(ctx)
    return ctx


async def read_line(reader: asyncio.StreamReader) -> bytes:
    return await reader.readline()


def implicit_tls(ctx: ssl.SSLContext, name: str = "hostile.test") -> Handler:
    """An implicit-TLS server: handshake first, then a greeting naming ``name``, 250 to
    every line, 221 to QUIT."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await writer.start_tls(ctx)
        writer.write(b"220 " + name.encode() + b" ESMTP\r\n")
        while line := await reader.readline():
            if line.upper().startswith(b"QUIT"):
                writer.write(b"221 bye\r\n")
                await writer.drain()
                return
            writer.write(b"250 ok\r\n")
            await writer.drain()

    return handler


@contextlib.contextmanager
def serve_in_thread(handler: Handler) -> Iterator[Hostile]:
    """``serve`` in a background thread, for tests whose client runs its own event loop."""
    started = threading.Event()
    box: dict[str, object] = {}

    async def main() -> None:
        stop = asyncio.Event()
        box["loop"], box["stop"] = asyncio.get_running_loop(), stop
        async with serve(handler) as srv:
            box["srv"] = srv
            started.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    try:
        srv = box["srv"]
        assert isinstance(srv, Hostile)
        yield srv
    finally:
        loop, stop = box["loop"], box["stop"]
        assert isinstance(loop, asyncio.AbstractEventLoop) and isinstance(stop, asyncio.Event)
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


async def no_starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A server whose EHLO does not offer STARTTLS and that answers 502 to it."""
    writer.write(b"220 plain ESMTP\r\n")
    while line := await reader.readline():
        verb = line.split(b" ")[0].strip().upper()
        if verb == b"EHLO":
            writer.write(b"250-plain\r\n250 PIPELINING\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            return
        elif verb == b"STARTTLS":
            writer.write(b"502 5.5.1 not implemented\r\n")
        else:
            writer.write(b"250 ok\r\n")
        await writer.drain()
