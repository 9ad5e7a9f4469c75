"""More helpers for the hostile suite: a polite server, resets, certificates, shell drivers.

``servers.serve`` runs one handler per connection; ``hostile(bad, polite)`` lets the
first connection misbehave and the next ones (after ``/reconnect``) behave, so each test
can show that the shell is still usable afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

from smtpshell.session import ConnectOptions
from smtpshell.status import ExitStatus
from smtpshell.tls import TlsOptions
from smtpshell.ui.core import ShellCore
from smtpshell.ui.render import Renderer
from tests.helpers import write_self_signed
from tests.hostile.servers import Handler, Hostile, serve
from tests.ptyshell import PtyShell

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


# ---- servers -------------------------------------------------------------------------


async def polite(reader: Reader, writer: Writer) -> None:
    """A well-behaved little SMTP server: the one /reconnect finds."""
    writer.write(b"220 polite ESMTP\r\n")
    while line := await reader.readline():
        verb = line.split(b" ", 1)[0].strip().upper()
        if verb == b"QUIT":
            writer.write(b"221 2.0.0 bye\r\n")
            await writer.drain()
            return
        if verb == b"EHLO":
            writer.write(b"250-polite\r\n250 PIPELINING\r\n")
        elif verb == b"DATA":
            writer.write(b"354 go ahead\r\n")
            await writer.drain()
            while await reader.readline() not in (b".\r\n", b""):
                pass
            writer.write(b"250 2.0.0 message accepted\r\n")
        else:
            writer.write(b"250 2.0.0 ok\r\n")
        await writer.drain()


@contextlib.asynccontextmanager
async def hostile(*handlers: Handler) -> AsyncIterator[Hostile]:
    """``serve`` where the n-th connection gets ``handlers[n]`` (the last one repeats).

    On exit it first waits (with a deadline) for the connections to end by themselves,
    so that ``serve`` has nothing left to cancel.
    """
    running: set[asyncio.Task[object]] = set()
    count = 0

    async def handler(reader: Reader, writer: Writer) -> None:
        nonlocal count
        task = asyncio.current_task()
        assert task is not None
        running.add(task)
        chosen = handlers[min(count, len(handlers) - 1)]
        count += 1
        try:
            await chosen(reader, writer)
        finally:
            running.discard(task)

    async with serve(handler) as srv:
        try:
            yield srv
        finally:
            if running:
                await asyncio.wait(set(running), timeout=5)


def reset(writer: Writer) -> None:
    """Drop the connection with a TCP RST (SO_LINGER 0, then abort), not a polite FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def until_eof(reader: Reader) -> None:
    """Read and discard until the client closes (so the handler ends by itself)."""
    while await reader.read(65536):
        pass


async def greet_and_answer(reader: Reader, writer: Writer, verb: bytes) -> None:
    """Greet, answer 250 to everything up to ``verb``; return when ``verb`` arrives."""
    writer.write(b"220 hostile ESMTP\r\n")
    await writer.drain()
    while line := await reader.readline():
        if line.split(b" ", 1)[0].strip().upper() == verb:
            return
        writer.write(b"250 ok\r\n")
        await writer.drain()
    raise ConnectionResetError("the client left before " + verb.decode())


# ---- certificates --------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    """Server contexts with certificate problems, and the CA file the client trusts."""

    cafile: str
    good: ssl.SSLContext
    untrusted: ssl.SSLContext
    expired: ssl.SSLContext
    wrong_host: ssl.SSLContext
    self_signed: ssl.SSLContext


def _context(leaf: trustme.LeafCert) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(ctx)
    return ctx


def _self_signed_context(directory: Path) -> ssl.SSLContext:
    certfile, keyfile, _ = write_self_signed(directory, "127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certfile), str(keyfile))
    return ctx


def make_certs(directory: Path) -> Certs:
    ca, other = trustme.CA(), trustme.CA()
    cafile = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    return Certs(
        cafile=str(cafile),
        good=_context(ca.issue_cert("127.0.0.1", "localhost")),
        untrusted=_context(other.issue_cert("127.0.0.1", "localhost")),
        expired=_context(
            ca.issue_cert("127.0.0.1", not_before=past, not_after=past + dt.timedelta(days=30))
        ),
        wrong_host=_context(ca.issue_cert("mail.example.test")),
        self_signed=_self_signed_context(directory),
    )


# ---- driving the shell in-process ------------------------------------------------------


def shell_options(port: int, **kw: object) -> ConnectOptions:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "ehlo_name": "hostile.test",
        "connect_timeout": 5.0,
        "reply_timeout": 5.0,
        "send_timeout": 5.0,
    }
    base.update(kw)
    return ConnectOptions(**base)  # type: ignore[arg-type]


@dataclass
class Shell:
    """A ShellCore connected as batch mode would, printing into ``out``."""

    core: ShellCore
    out: io.StringIO
    connect_status: ExitStatus

    async def type(self, *lines: str) -> None:
        for line in lines:
            await self.core.handle_line(line)

    @property
    def output(self) -> str:
        return self.out.getvalue()


@contextlib.asynccontextmanager
async def shell(port: int, *, cafile: str | None = None, **kw: object) -> AsyncIterator[Shell]:
    """Connect a ShellCore to 127.0.0.1:``port``; close it afterwards."""
    out = io.StringIO()
    if cafile is not None:
        kw["tls"] = TlsOptions(cafile=cafile)
    core = ShellCore(shell_options(port, **kw), Renderer(out, echo=True, arrows=True))
    status = await core.connect()
    try:
        yield Shell(core, out, status)
    finally:
        await core.close()


async def drive(port: int, lines: list[str], *, cafile: str | None = None,
                **kw: object) -> Shell:
    """Connect, type ``lines``, close; the finished Shell."""
    async with shell(port, cafile=cafile, **kw) as sh:
        await sh.type(*lines)
    return sh


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("x ")]


async def wait_for_text(
    out: io.StringIO, text: str, timeout: float = 10.0, *, task: asyncio.Task[Any] | None = None
) -> str:
    """Wait (with a deadline) until ``text`` appears in what the shell printed.

    With ``task`` (the REPL), its exception is raised at once if it ends first.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while text not in out.getvalue():
        if task is not None and task.done():
            task.result()
            raise AssertionError(f"ended before {text!r} appeared; got:\n{out.getvalue()}")
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {text!r}; got:\n{out.getvalue()}")
        await asyncio.sleep(0.01)
    return out.getvalue()


# ---- driving the real program in a terminal -----------------------------------------------

class TtyShell(PtyShell):
    """``PtyShell`` whose pty is the program's controlling terminal.

    Then Ctrl-C typed while the shell waits for the server (terminal in cooked mode)
    makes the terminal send SIGINT, exactly as for a person at a real terminal.
    """

    def __init__(self, args: list[str], env: Mapping[str, str] | None = None) -> None:
        super().__init__(args, env, controlling_tty=True)
