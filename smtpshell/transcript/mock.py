"""The mock server: play the server side of a transcript to a client and check what it sends.

For each connection the mock walks :meth:`Transcript.steps`: it sends the recorded server
lines literally, reads the client's lines and matches them by the rules of
``docs/transcript-format.md`` ("Mock server: matching client lines"), performs the server side
of the TLS handshake where the transcript has ``== tls`` (or from the first byte when the
header says ``tls: implicit``) and closes where it has ``== closed by=server``. At the first
deviation it answers ``421`` and closes; the connection's :class:`MockResult` says why.

Programmatic use::

    async with MockServer(transcript, "127.0.0.1", 0, ssl_context=ctx) as srv:
        ...  # point a client at srv.port
        results = await srv.wait(1)

``smtpshell mock FILE`` (its command line) is ``smtpshell.cli.mock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from smtpshell.protocol.sasl.redact import mask_answer
from smtpshell.transcript.matching import Mismatch, match_client_line
from smtpshell.transcript.model import (
    ClientLine,
    Elided,
    Event,
    Expect,
    Send,
    ServerLine,
    Step,
    Transcript,
    wire_bytes,
)
from smtpshell.transport import AsyncioStream, TransportError, serve_tcp

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "DEVIATED_REPLY",
    "MockResult",
    "MockServer",
    "implicit_tls",
    "make_server_context",
    "needs_tls",
    "tls_words",
]

DEFAULT_PORT = 2525
DEFAULT_TIMEOUT = 60.0
DEVIATED_REPLY = "421 4.3.0 smtpshell mock: client deviated from the transcript"
TIMEOUT_REPLY = "421 4.4.2 smtpshell mock: timed out waiting for the client"
MAX_LINE = 65536  # bytes without CRLF before the mock gives up on a line


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class MockResult:
    """One connection: ok, a :class:`Mismatch` (the client deviated), or an error."""

    number: int
    peer: str
    mismatch: Mismatch | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.mismatch is None and self.error is None

    def render(self) -> str:
        """The report block: one head line, then the mismatch diff indented."""
        head = f"connection {self.number} from {self.peer}"
        if self.mismatch is not None:
            return f"{head}: MISMATCH\n" + textwrap.indent(self.mismatch.render(), "  ")
        if self.error is not None:
            return f"{head}: ERROR {self.error}"
        return f"{head}: ok, the client followed the transcript"


class _Failure(Exception):
    """Ends a session early: a mismatch or an error, and what to tell the client first."""

    def __init__(self, mismatch: Mismatch | None = None, error: str | None = None,
                 reply: str | None = DEVIATED_REPLY) -> None:
        super().__init__(error or (mismatch.reason if mismatch else ""))
        self.mismatch = mismatch
        self.error = error
        self.reply = reply


class _LineTooLong(Exception):
    pass


# --------------------------------------------------------------------------- connection


class _Client:
    """One accepted connection as the session sees it: CRLF lines read from a server-side
    transport stream, which is replaced by its TLS successor after a handshake."""

    def __init__(self, stream: AsyncioStream) -> None:
        self.stream = stream
        self.buffer = bytearray()  # received, not yet returned as a line
        self.eof = False

    @property
    def peer(self) -> str:
        return self.stream.peer

    @property
    def tls(self) -> bool:
        return self.stream.ssl_object is not None

    async def readline(self) -> bytes | None:
        """The next line without its CRLF; None at end of input (a partial line stays)."""
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return line
            if self.eof:
                return None
            if len(self.buffer) > MAX_LINE:
                raise _LineTooLong
            try:
                data = await self.stream.read()
            except TransportError:  # reset by the client: the same as closed, for the mock
                data = b""
            self.buffer += data
            self.eof = not data

    def take_unread(self) -> bytes:
        """Everything received and not yet read as lines (emptying the buffers)."""
        data = bytes(self.buffer) + self.stream.take_buffered()
        self.buffer.clear()
        return data

    def closed_by_peer(self) -> bool:
        return self.eof or self.stream.at_eof()

    async def write(self, data: bytes) -> None:
        """Send (waiting while the client does not read); if the connection is closed the
        data is dropped and the next read says so."""
        with contextlib.suppress(TransportError):
            await self.stream.write(data)

    async def start_tls(self, context: ssl.SSLContext, timeout: float | None) -> None:
        """The server side of the handshake; raises OSError (ssl.SSLError…) on failure."""
        self.stream = await self.stream.start_tls(context, None, timeout)

    async def close(self) -> None:
        await self.stream.close()

    def abort(self) -> None:
        self.stream.abort()


# --------------------------------------------------------------------------- session


def needs_tls(transcript: Transcript) -> bool:
    """True if serving ``transcript`` needs a server certificate."""
    return transcript.header.tls_mode == "implicit" or any(
        isinstance(e, Event) and e.kind == "tls" for e in transcript.entries
    )


def implicit_tls(transcript: Transcript) -> bool:
    return transcript.header.tls_mode == "implicit" or any(
        isinstance(e, Event) and e.kind == "tls" and e.get("via") == "implicit"
        for e in transcript.entries
    )


def plan(steps: Sequence[Step]) -> list[Step]:
    """The steps the mock walks: a pipelined group whose replies follow it directly is split
    into command/reply pairs, so a client that waits for each reply works too (a pipelining
    client just gets its replies sooner)."""
    out: list[Step] = []
    i = 0
    while i < len(steps):
        step = steps[i]
        if isinstance(step, Send) and not step.body and len(step.lines) > 1:
            k = len(step.lines)
            replies = steps[i + 1 : i + 1 + k]
            if (all(isinstance(line, ClientLine) for line in step.lines) and len(replies) == k
                    and all(isinstance(r, Expect) for r in replies)):
                for line, reply in zip(step.lines, replies, strict=True):
                    out += [Send((line,)), reply]
                i += 1 + k
                continue
        out.append(step)
        i += 1
    return out


class _Session:
    """Walks the plan for one connection; raises :class:`_Failure` at the first deviation."""

    def __init__(self, server: MockServer, conn: _Client) -> None:
        self.conn = conn
        self.steps = server._plan
        self.implicit = server._implicit
        self.context = server.ssl_context
        self.timeout = server.timeout
        self.source = server._source
        self.last_lineno = server._last_lineno
        self.in_auth = False
        """The client sent AUTH and the last reply was a 334: its lines are credentials."""

    async def run(self) -> tuple[Mismatch | None, str | None]:
        try:
            try:
                if self.implicit:
                    await self._handshake(None)
                await self._walk()
            except _Failure as failure:
                if failure.reply is not None:
                    with contextlib.suppress(_Failure):
                        await self._send(failure.reply.encode() + b"\r\n")
                return failure.mismatch, failure.error
            return None, None
        finally:
            await self.conn.close()

    async def _walk(self) -> None:
        for step in self.steps:
            if isinstance(step, Expect):
                await self._reply(step.lines)
            elif isinstance(step, Send):
                await self._receive(step)
            elif step.kind == "tls":
                if step.get("via") != "implicit" and not self.conn.tls:
                    await self._handshake(step)
            elif step.kind == "closed":
                if step.get("by") == "client":
                    await self._client_closes(step)
                return
        await self._client_closes(None)

    async def _reply(self, lines: Sequence[ServerLine]) -> None:
        if lines and not lines[-1].text.startswith("334"):
            self.in_auth = False
        await self._send(b"".join(wire_bytes(line.text) + b"\r\n" for line in lines))

    async def _send(self, data: bytes) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.conn.write(data)
        except TimeoutError:
            raise _Failure(error=f"the client did not read the replies for {self.timeout:g} s",
                           reply=None) from None

    # -- reading and matching

    def _mismatch(self, reason: str, lineno: int | None,
                  expected: tuple[ClientLine | Elided, ...], got: tuple[str, ...]) -> Mismatch:
        return Mismatch(reason, lineno, expected, self._masked(got), self.conn.tls, self.source)

    def _masked(self, got: tuple[str, ...]) -> tuple[str, ...]:
        """A credential the client sent is reported as ``<credential redacted>``: an AUTH
        line keeps its mechanism, an answer inside the exchange is masked whole."""
        return tuple(mask_answer(line) if self.in_auth else line for line in got)

    def _follow(self, line: str) -> None:
        words = line.split()
        if words and words[0].upper() == "AUTH":
            self.in_auth = True

    def _partial(self) -> tuple[str, ...]:
        return (_text(bytes(self.conn.buffer)),) if self.conn.buffer else ()

    async def _read(self, entry: ClientLine | Elided | None, what: str) -> str | None:
        """The next client line, or None if the client closed (only when ``entry`` is None)."""
        expected = () if entry is None else (entry,)
        lineno = self.last_lineno if entry is None else entry.lineno
        try:
            async with asyncio.timeout(self.timeout):
                raw = await self.conn.readline()
        except TimeoutError:
            hint = " (lines must end in CRLF)" if b"\n" in self.conn.buffer else ""
            raise _Failure(self._mismatch(
                f"no line from the client for {self.timeout:g} s; {what}{hint}",
                lineno, expected, self._partial()), reply=TIMEOUT_REPLY) from None
        except _LineTooLong:
            raise _Failure(self._mismatch(
                f"the client sent more than {MAX_LINE} bytes without a CRLF", lineno, expected,
                (_text(bytes(self.conn.buffer[:80])) + "…",))) from None
        if raw is None and entry is not None:
            middle = " in the middle of a line" if self.conn.buffer else ""
            raise _Failure(self._mismatch(
                f"the client closed the connection{middle}; {what}", lineno, expected,
                self._partial()), reply=None)
        return None if raw is None else _text(raw)

    async def _receive(self, step: Send) -> None:
        for entry in step.lines:
            if isinstance(entry, Elided):
                await self._receive_elided(entry, step.body)
                continue
            got = await self._read(entry, "the transcript expects this line next")
            assert got is not None
            mismatch = match_client_line(entry, got, body=step.body)
            if mismatch is not None:
                raise _Failure(replace(mismatch, got=self._masked(mismatch.got),
                                       got_tls=self.conn.tls, source=self.source))
            if not step.body:
                self._follow(got)

    async def _receive_elided(self, entry: Elided, body: bool) -> None:
        chunk: list[str] = []
        while len(chunk) < entry.lines:
            got = await self._read(entry, "the transcript expects the elided lines")
            assert got is not None
            if body and got == ".":
                raise _Failure(self._mismatch(
                    f"the body ended after {len(chunk)} of the {entry.lines} elided lines",
                    entry.lineno, (entry,), (_summary(chunk),)))
            chunk.append(got)
        if not entry.matches(chunk):
            raise _Failure(self._mismatch(
                "the body differs from the elided lines (count, bytes or sha256)",
                entry.lineno, (entry,), (_summary(chunk),)))

    async def _client_closes(self, event: Event | None) -> None:
        """Wait for the client to close: ``closed by=client``, or the end of the transcript."""
        what = ("the transcript expects the client to close the connection" if event
                else f"the transcript ends at line {self.last_lineno}")
        got = await self._read(None, what)
        if got is not None:
            lineno = event.lineno if event else self.last_lineno
            reason = ("expected the client to close the connection" if event
                      else "the client sent more than the transcript has")
            raise _Failure(self._mismatch(reason, lineno, (), (got,)))

    async def _handshake(self, event: Event | None) -> None:
        lineno = event.lineno if event is not None else None
        where = f"line {lineno}: " if lineno is not None else ""
        unread = self.conn.take_unread()
        if unread:
            lines = tuple(_text(unread).split("\r\n"))
            raise _Failure(self._mismatch(
                "the client sent more after STARTTLS instead of waiting for the 220 reply and "
                "starting TLS (those bytes must be discarded, RFC 3207)",
                lineno, (), tuple(line for line in lines if line)))
        if self.conn.closed_by_peer():
            raise _Failure(self._mismatch("the client closed the connection instead of "
                                          "starting TLS", lineno, (), ()), reply=None)
        assert self.context is not None
        try:
            await self.conn.start_tls(self.context, self.timeout)
        except TimeoutError:
            raise _Failure(error=f"{where}TLS handshake failed: not finished within "
                           f"{self.timeout:g} s", reply=None) from None
        except (OSError, ssl.SSLError) as exc:
            raise _Failure(error=f"{where}TLS handshake failed: {tls_words(exc)}",
                           reply=None) from None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _summary(lines: Sequence[str]) -> str:
    digest = hashlib.sha256(b"".join(wire_bytes(line) + b"\r\n" for line in lines))
    size = sum(len(wire_bytes(line)) + 2 for line in lines)
    return f"({len(lines)} lines, {size} bytes, sha256={digest.hexdigest()})"


def tls_words(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        words = reason.replace("_", " ").lower()
        if "unknown ca" in words or "bad certificate" in words or "certificate unknown" in words:
            words += " (does the client trust the mock's CA certificate?)"
        return words
    if isinstance(exc, ConnectionError) and not str(exc):
        return "the client closed the connection"
    return str(exc) or type(exc).__name__


# --------------------------------------------------------------------------- server


class MockServer:
    """Serves ``transcript``'s server side on ``host``:``port`` (0: any; see ``.port``).

    ``ssl_context`` (server side) is required when the transcript uses TLS. ``timeout`` bounds
    each wait for the client (None: no bound). After ``max_connections`` accepted connections
    the listener closes. ``results`` collects one :class:`MockResult` per finished connection;
    ``on_result`` is called with each as it is added.
    """

    def __init__(
        self,
        transcript: Transcript,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_connections: int | None = None,
        on_result: Callable[[MockResult], None] | None = None,
    ) -> None:
        if ssl_context is None and needs_tls(transcript):
            raise ValueError("this transcript uses TLS: the mock needs an ssl_context")
        self.transcript = transcript
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.max_connections = max_connections
        self.results: list[MockResult] = []
        self._on_result = on_result
        self._plan = plan(transcript.steps())
        self._implicit = implicit_tls(transcript)
        self._source = None if transcript.source == "<string>" else transcript.source
        numbers = [e.lineno for e in transcript.entries if e.lineno is not None]
        self._last_lineno = max(numbers, default=None)
        self._server: asyncio.Server | None = None
        self._accepted = 0
        self._tasks: dict[asyncio.Task[None], _Client] = {}
        self._changed: asyncio.Condition | None = None

    async def start(self) -> None:
        """Start listening; raises OSError if the address cannot be bound."""
        self._changed = asyncio.Condition()
        self._server = await serve_tcp(self.host, self.port, self._spawn)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening; connections still in progress end with an error result."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task, conn in list(self._tasks.items()):
            conn.abort()
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def wait(self, count: int = 1) -> list[MockResult]:
        """Wait until ``count`` connections have finished; returns all results so far."""
        assert self._changed is not None, "start the server first"
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.results) >= count)
        return list(self.results)

    async def __aenter__(self) -> MockServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _spawn(self, stream: AsyncioStream) -> None:
        self._accepted += 1
        limit = self.max_connections
        if self._server is None or (limit is not None and self._accepted > limit):
            stream.abort()
            return
        conn = _Client(stream)
        if limit is not None and self._accepted >= limit:
            self._server.close()
        task = asyncio.get_running_loop().create_task(self._serve(conn, self._accepted))
        self._tasks[task] = conn
        task.add_done_callback(lambda done: self._tasks.pop(done, None))

    async def _serve(self, conn: _Client, number: int) -> None:
        peer = conn.peer
        try:
            mismatch, error = await _Session(self, conn).run()
        except asyncio.CancelledError:
            self._record(MockResult(number, peer, None, "the mock was stopped during the session"))
            raise
        self._record(MockResult(number, peer, mismatch, error))
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    def _record(self, result: MockResult) -> None:
        self.results.append(result)
        if self._on_result is not None:
            self._on_result(result)


# --------------------------------------------------------------------------- certificates


def make_server_context(names: Sequence[str], ca_out: str | Path) -> ssl.SSLContext:
    """A server context with a fresh trustme certificate for ``names``; the CA goes to
    ``ca_out`` (PEM) for the client to trust."""
    import trustme  # only when a certificate is made

    ca = trustme.CA(organization_name="smtpshell mock")
    cert = ca.issue_cert(*names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca.cert_pem.write_to_path(str(ca_out))
    return context
