"""The mock server: play the server side of a transcript to a client and check what it sends.

For each connection the mock walks :meth:`Transcript.steps`: it sends the recorded server
lines literally, reads the client's lines and matches them by the rules of
``docs/transcript-format.md`` ("Mock server: matching client lines"), performs the server side
of the TLS handshake where the transcript has ``== tls`` (or from the first byte when the
header says ``tls: implicit``) and closes where it has ``== closed by=server``. A command that
differs only in its arguments is noted and answered as recorded; where the recorded replies
cannot fit (another verb, the client ends early) it answers ``421`` and closes; the
connection's :class:`MockResult` lists every difference. A transcript with several
``== connect`` is served connection by connection (the Nth accepted walks the Nth), and
``== pause``/``== split``/``== drop`` script it as a fake server.
One concern, so one module past 500 lines: serving a transcript's server side (the
listener, each connection's walk, its result); the command line is ``smtpshell.cli.mock``.

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
import math
import re
import ssl
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType

from smtpshell.protocol.sasl.redact import mask_answer
from smtpshell.transcript.matching import (
    Mismatch,
    credentials_problem,
    is_skip,
    match_body,
    match_client_bytes,
    match_client_line,
)
from smtpshell.transcript.model import (
    DEFAULT_RULE,
    SCRIPT_EVENTS,
    ClientBytes,
    ClientEntry,
    ClientLine,
    Comment,
    Elided,
    ElidedBytes,
    Event,
    Expect,
    Send,
    ServerLine,
    Step,
    Transcript,
    TranscriptError,
    check_secret_env,
    parse_count,
    parse_decimal,
    secret_env_problem,
    wire_bytes,
)
from smtpshell.transport import AsyncioStream, TransportError, serve_tcp

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TLS_PORT",
    "DEVIATED_REPLY",
    "MAX_PAUSE",
    "Connection",
    "MockResult",
    "MockServer",
    "connections",
    "implicit_tls",
    "mixed_kinds",
    "needs_tls",
    "tls_words",
]

DEFAULT_PORT = 2525
DEFAULT_TLS_PORT = 4650  # implicit-TLS connections of a transcript that mixes kinds
MAX_PAUSE = 300.0  # seconds: the longest '== pause' (a client's timeout is usually shorter)
SPLIT_GAP = 0.01  # seconds between the two writes of '== split'
DEFAULT_TIMEOUT = 60.0
DEVIATED_REPLY = "421 4.3.0 smtpshell mock: client deviated from the transcript"
TIMEOUT_REPLY = "421 4.4.2 smtpshell mock: timed out waiting for the client"
MAX_LINE = 65536  # bytes without CRLF before the mock gives up on a line
MAX_BODY = 64 * 1024 * 1024  # bytes of message body before the mock gives up on its '.'
WRONG_CREDENTIALS_REPLY = "535 5.7.8 smtpshell mock: authentication credentials invalid"
_AUTH_RE = re.compile(r"AUTH (?P<mech>[A-Za-z0-9_-]+)(?: (?P<rest>.*))?",
                      re.IGNORECASE | re.ASCII | re.DOTALL)
# What a server sends when the client has not given the initial response (RFC 4954 §4).
_EMPTY_CHALLENGE = {"LOGIN": "334 VXNlcm5hbWU6"}


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class MockResult:
    """One connection: ok, a :class:`Mismatch` (the client deviated), or an error."""

    number: int
    peer: str
    mismatch: Mismatch | None = None
    """The first difference."""
    error: str | None = None
    also: tuple[Mismatch, ...] = ()
    """The differences after the first, where the mock could go on (a message body, AUTH,
    a command with other arguments)."""
    note: str | None = None
    """What the mock did as the transcript scripted it (``== drop``), for the report."""

    @property
    def ok(self) -> bool:
        return self.mismatch is None and self.error is None

    @property
    def mismatches(self) -> tuple[Mismatch, ...]:
        """Every difference found on this connection, in order."""
        return () if self.mismatch is None else (self.mismatch, *self.also)

    def render(self) -> str:
        """The report block: one head line, then each mismatch diff indented."""
        head = f"connection {self.number} from {self.peer}"
        if self.mismatch is not None:
            found = self.mismatches
            count = f" ({len(found)} differences)" if len(found) > 1 else ""
            blocks = [textwrap.indent(m.render(), "  ") for m in found]
            if self.error is not None:
                blocks.append(f"  then: {self.error}")
            return f"{head}: MISMATCH{count}\n" + "\n".join(blocks)
        if self.error is not None:
            return f"{head}: ERROR {self.error}"
        note = f" ({self.note})" if self.note else ""
        return f"{head}: ok, the client followed the transcript{note}"


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


class _Dropped(Exception):
    """The transcript's ``== drop``: the mock ends the connection there, as scripted."""

    def __init__(self, event: Event) -> None:
        super().__init__(f"dropped the connection at line {event.lineno}, as scripted"
                         if event.lineno is not None else "dropped the connection, as scripted")


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

    async def read_bytes(self, limit: int) -> bytes:
        """Up to ``limit`` exact bytes (``->>``): those received and not yet read, else the
        next that come, however the client's writes split them; b"" at end of input."""
        if not self.buffer and not self.eof:
            try:
                data = await self.stream.read()
            except TransportError:
                data = b""
            self.buffer += data
            self.eof = not data
        out = bytes(self.buffer[:limit])
        del self.buffer[:limit]
        return out

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


def serve_problem(transcript: Transcript, secret_env: Iterable[str] | None = (),
                  option: str = "--secret-env") -> str | None:
    """Why the mock cannot serve ``transcript`` (one line with its line number), or None.
    A secret read from a variable that is not ``SMTPSHELL_*`` nor in ``secret_env`` is one
    (``option``: how the user allows one); ``secret_env`` None: no secret is read."""
    try:
        if secret_env is not None:
            check_secret_env(transcript.entries, secret_env, option)
    except TranscriptError as exc:
        return f"line {exc.lineno}: {exc.message}"
    steps = transcript.steps()
    for index, step in enumerate(steps):
        if isinstance(step, Event) and is_skip(step):
            before = steps[index - 1] if index else None
            after = steps[index + 1] if index + 1 < len(steps) else None
            inside = any(isinstance(s, Send) and s.body for s in (before, after))
            opened = isinstance(before, Expect) and before.code == 354
            if not inside and not opened:
                return f"line {step.lineno}: '== skip' is for the lines of a DATA body only"
    body = {id(line) for step in steps if isinstance(step, Send) and step.body
            for line in step.lines}
    entries = [e for e in transcript.entries if not isinstance(e, Comment)]
    for index, entry in enumerate(entries):
        if isinstance(entry, Event) and entry.kind in SCRIPT_EVENTS:
            nxt = next((e for e in entries[index + 1:]
                       if not (isinstance(e, Event) and e.kind in SCRIPT_EVENTS)), None)
            problem = _script_problem(entry, nxt, body)
            if problem is not None:
                where = f"line {entry.lineno}: " if entry.lineno is not None else ""
                return f"{where}{problem}"
    return None


_SCRIPT_FIELDS = {"pause": ("seconds", "after-bytes"), "split": ("after-bytes",),
                  "drop": ("after-bytes",)}


def _script_problem(event: Event, after: object, body: set[int]) -> str | None:
    """Why a ``pause``/``split``/``drop`` event is wrong (its fields, or where it stands)."""
    kind = event.kind
    allowed = _SCRIPT_FIELDS[kind]
    for name, _ in event.fields:
        if name not in allowed:
            return (f"'== {kind}' has no field {name!r} (its fields: "
                    f"{', '.join(allowed)})")
    if kind == "pause":
        text = event.get("seconds")
        if text is None:
            return "'== pause' needs seconds= (how long the mock waits: seconds=0.2)"
        try:
            seconds = float(text)
        except ValueError:
            return f"'== pause' seconds={text!r} is not a number of seconds"
        if not math.isfinite(seconds) or not 0 <= seconds <= MAX_PAUSE:
            return f"'== pause' seconds={text} is not between 0 and {MAX_PAUSE:g}"
        if parse_decimal(text) is None:  # float() also takes 1_0, 1e3, ' 1'
            return (f"'== pause' seconds={text!r} is not a number of seconds (digits, "
                    "at most one dot)")
    cut = event.get("after-bytes")
    if cut is not None:
        if parse_count(cut) is None:
            return f"'== {kind}' after-bytes={cut!r} is not a number of bytes"
        if not isinstance(after, ServerLine):
            return (f"'== {kind} after-bytes=…' goes right before the server line it cuts "
                    "(the mock sends that many bytes of it first)")
        size = len(wire_bytes(after.text)) + 2
        if int(cut) > size:
            return (f"'== {kind}' after-bytes={cut} is beyond the next server line "
                    f"({size} bytes with its CRLF)")
        return None
    in_body = id(after) in body or (isinstance(after, Event) and is_skip(after))
    if in_body:
        return (f"'== {kind}' is not for the lines of a DATA body (the client is sending): "
                "put it before the server's reply")
    if kind == "split" and not isinstance(after, ServerLine):
        return ("'== split' goes between server lines (the lines before and after it go in "
                "separate writes)")
    if kind == "pause" and isinstance(after, ClientLine | Elided | ClientBytes | ElidedBytes):
        return ("'== pause' goes before a server line or an event: here the client sends, "
                "the mock has nothing to wait with")
    return None


def _script(transcript: Transcript) -> dict[int, tuple[Event, ...]]:
    """The ``pause``/``split``/``drop`` events by the entry they stand before (its ``id``;
    0: the end of the file)."""
    out: dict[int, list[Event]] = {}
    waiting: list[Event] = []
    for entry in transcript.entries:
        if isinstance(entry, Comment):
            continue
        if isinstance(entry, Event) and entry.kind in SCRIPT_EVENTS:
            waiting.append(entry)
        elif waiting:
            out[id(entry)] = waiting
            waiting = []
    if waiting:
        out[0] = waiting
    return {key: tuple(events) for key, events in out.items()}


@dataclass(frozen=True)
class Connection:
    """One connection of a transcript as the mock serves it: the steps from its
    ``== connect`` (or the start) up to the next one."""

    number: int
    lineno: int | None
    """The line of its ``== connect`` (None without one)."""
    implicit: bool
    plan: tuple[Step, ...]
    last_lineno: int | None
    end: int
    """Where its script events at the end are kept (see ``_script``)."""

    @property
    def kind(self) -> str:
        return "implicit TLS" if self.implicit else "plain/STARTTLS"


def connections(transcript: Transcript) -> list[Connection]:
    """The transcript's connections, in order (at least one)."""
    blocks: list[list[Step]] = [[]]
    for step in transcript.steps():
        if (isinstance(step, Event) and step.kind == "connect"
                and any(not isinstance(s, Event) or s.kind == "connect" for s in blocks[-1])):
            blocks.append([])
        blocks[-1].append(step)
    out: list[Connection] = []
    for number, block in enumerate(blocks, 1):
        connect = next((s for s in block if isinstance(s, Event) and s.kind == "connect"), None)
        mode = (connect.get("tls") if connect is not None else None) or transcript.header.tls_mode
        implicit = mode == "implicit" or any(
            isinstance(s, Event) and s.kind == "tls" and s.get("via") == "implicit"
            for s in block)
        numbers = [n for s in block for n in _linenos(s) if n is not None]
        following = blocks[number][0] if number < len(blocks) else None
        out.append(Connection(number, None if connect is None else connect.lineno, implicit,
                              tuple(plan(block)), max(numbers, default=None),
                              0 if following is None else id(following)))
    return out


def _linenos(step: Step) -> list[int | None]:
    if isinstance(step, Event):
        return [step.lineno]
    return [line.lineno for line in step.lines]


def needs_tls(transcript: Transcript) -> bool:
    """True if serving ``transcript`` needs a server certificate."""
    return any(c.implicit for c in connections(transcript)) or any(
        isinstance(e, Event) and e.kind == "tls" for e in transcript.entries
    )


def implicit_tls(transcript: Transcript) -> bool:
    """True if some connection of ``transcript`` is implicit TLS."""
    return any(c.implicit for c in connections(transcript))


def mixed_kinds(transcript: Transcript) -> bool:
    """True if the transcript has implicit-TLS and plain/STARTTLS connections: the mock
    then listens on two ports."""
    return len({c.implicit for c in connections(transcript)}) == 2


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

    def __init__(self, server: MockServer, conn: _Client, block: Connection) -> None:
        self.conn = conn
        self.steps: Sequence[Step] = block.plan
        self.implicit = block.implicit
        self.end = block.end
        self.first = block.number == 1
        """Script events before this connection's ``connect`` are its own (for later
        connections they end the one before)."""
        self.script = server._script
        self.context = server.ssl_context
        self.timeout = server.timeout
        self.source = server._source
        self.last_lineno = block.last_lineno
        self.env = server.env
        self.dropped: str | None = None
        """Set when the transcript's ``== drop`` ended the connection."""
        self.found: list[Mismatch] = []
        """Differences the mock reported and went on after (every one ends up in the result)."""
        self.in_auth = False
        """The client sent AUTH and the last reply was a 334: its lines are credentials."""

    async def run(self) -> tuple[list[Mismatch], str | None]:
        try:
            try:
                if self.implicit:
                    await self._handshake(None)
                await self._walk()
            except _Dropped as dropped:
                self.dropped = str(dropped)
            except _Failure as failure:
                if failure.reply is not None:
                    with contextlib.suppress(_Failure):
                        await self._send(failure.reply.encode() + b"\r\n")
                if failure.mismatch is not None:
                    self.found.append(failure.mismatch)
                return self.found, failure.error
            return self.found, None
        finally:
            await self.conn.close()

    async def _walk(self) -> None:
        steps = self.steps
        i = 0
        while i < len(steps):
            step = steps[i]
            if isinstance(step, Expect):
                await self._reply(step.lines)
            elif (isinstance(step, Send) and step.body and not _has_bytes(step)) or is_skip(step):
                i = await self._receive_body(i)
                continue
            elif isinstance(step, Send):
                if _auth_line(step) is not None:
                    await self._scripted(step.lines[0])
                    i = await self._auth(i)
                    continue
                await self._receive(step)
            elif step.kind == "connect":
                if self.first:  # before the file's first connect: at the start
                    await self._scripted(step)
            else:
                await self._scripted(step)
                if step.kind == "tls":
                    if step.get("via") != "implicit" and not self.conn.tls:
                        await self._handshake(step)
                elif step.kind == "closed":
                    if step.get("by") == "client":
                        await self._client_closes(step)
                    return
            i += 1
        await self._scripted(None)
        await self._client_closes(None)

    async def _scripted(self, entry: object) -> None:
        """The ``pause``/``drop`` events written before ``entry`` (None: the connection's
        end), where the mock sends nothing: wait, or end the connection."""
        key = self.end if entry is None else id(entry)
        for event in self.script.get(key, ()):
            if event.kind == "pause":
                await asyncio.sleep(float(event.get("seconds") or 0))
            elif event.kind == "drop":
                raise _Dropped(event)

    async def _reply(self, lines: Sequence[ServerLine]) -> None:
        if lines and not lines[-1].text.startswith("334"):
            self.in_auth = False
        await self._send_lines(lines)

    async def _send_lines(self, lines: Sequence[ServerLine]) -> None:
        """Server lines, in one write unless ``pause``/``split``/``drop`` events cut them:
        what comes before such an event goes out first, then the mock waits (``pause``,
        ``split``) or closes (``drop``); ``after-bytes=N`` cuts the next line after N
        bytes."""
        data = bytearray()
        for line in lines:
            raw = wire_bytes(line.text) + b"\r\n"
            done = 0
            for event in self.script.get(id(line), ()):
                cut = max(done, min(len(raw), int(event.get("after-bytes") or 0)))
                data += raw[done:cut]
                done = cut
                if data:
                    await self._send(bytes(data))
                    data.clear()
                if event.kind == "drop":
                    raise _Dropped(event)
                await asyncio.sleep(float(event.get("seconds") or 0) if event.kind == "pause"
                                    else SPLIT_GAP)
            data += raw[done:]
        if data:
            await self._send(bytes(data))

    async def _send(self, data: bytes) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.conn.write(data)
        except TimeoutError:
            raise _Failure(error=f"the client did not read the replies for {self.timeout:g} s",
                           reply=None) from None

    # -- reading and matching

    def _mismatch(self, reason: str, lineno: int | None,
                  expected: tuple[ClientEntry, ...], got: tuple[str, ...]) -> Mismatch:
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
            if not step.body:
                await self._scripted(entry)
            if isinstance(entry, ClientBytes | ElidedBytes):
                await self._receive_bytes(entry)
                continue
            if isinstance(entry, Elided):
                await self._receive_elided(entry, step.body)
                continue
            got = await self._read(entry, "the transcript expects this line next")
            assert got is not None
            mismatch = match_client_line(entry, got, body=step.body)
            if mismatch is not None:
                found = replace(mismatch, got=self._masked(mismatch.got),
                                got_tls=self.conn.tls, source=self.source)
                if step.body or not _same_command(entry.text, got):
                    raise _Failure(found)
                # the same command with other arguments (another address, another EHLO
                # name): the recorded reply still fits, so note it and go on
                self.found.append(found)
            if not step.body:
                self._follow(got)

    async def _receive_bytes(self, entry: ClientBytes | ElidedBytes) -> None:
        """Exact bytes (``->>``, or a byte elision): exactly that many, however the client's
        writes split them; compared byte for byte (an elision by size and sha256)."""
        exact = isinstance(entry, ClientBytes)
        size = len(entry.data) if isinstance(entry, ClientBytes) else entry.nbytes
        got, digest, count = bytearray(), hashlib.sha256(), 0

        def shown() -> tuple[str, ...]:
            if exact:
                return (_text(bytes(got)),) if got else ()
            return (f"({count} bytes, sha256={digest.hexdigest()})",)

        while count < size:
            try:
                async with asyncio.timeout(self.timeout):
                    data = await self.conn.read_bytes(min(size - count, 1 << 16))
            except TimeoutError:
                raise _Failure(self._mismatch(
                    f"no bytes from the client for {self.timeout:g} s; the transcript "
                    f"expects {size} bytes here, {count} came", entry.lineno, (entry,),
                    shown()), reply=TIMEOUT_REPLY) from None
            if not data:
                raise _Failure(self._mismatch(
                    f"the client closed the connection after {count} of the {size} bytes "
                    "the transcript expects here", entry.lineno, (entry,), shown()),
                    reply=None)
            count += len(data)
            digest.update(data)
            if exact:
                got += data
        if isinstance(entry, ClientBytes):
            mismatch = match_client_bytes(entry, bytes(got), tls=self.conn.tls)
            if mismatch is not None:
                raise _Failure(replace(mismatch, got=self._masked(mismatch.got),
                                       source=self.source))
        elif digest.hexdigest() != entry.sha256 or entry.tls != self.conn.tls:
            raise _Failure(self._mismatch(
                "the bytes differ from the elided ones (sha256)" if entry.tls == self.conn.tls
                else "the elided bytes were recorded " + ("inside TLS" if entry.tls
                                                          else "in the clear"),
                entry.lineno, (entry,), shown()))

    async def _receive_body(self, i: int) -> int:
        """A DATA body: the body steps from ``i`` (and ``== skip`` events) up to the ``.``
        are matched together against the client's lines up to its ``.``; every difference is
        kept, and the mock goes on with the recorded reply. Returns the next step's index."""
        pattern: list[ClientLine | Elided | Event] = []
        j = i
        while j < len(self.steps):
            step = self.steps[j]
            if isinstance(step, Event) and is_skip(step):
                pattern.append(step)
            elif isinstance(step, Send) and step.body:
                pattern.extend(e for e in step.lines if isinstance(e, ClientLine | Elided))
                last = step.lines[-1] if step.lines else None
                if isinstance(last, ClientLine) and last.text == ".":
                    j += 1
                    break
            else:
                break
            j += 1
        lines = [e for e in pattern if not isinstance(e, Event)]
        got: list[str] = []
        size = 0
        while True:
            entry = lines[min(len(got), len(lines) - 1)] if lines else None
            line = await self._read(entry, "the transcript expects the message body and its "
                                    "'.' line")
            if line is None:  # only when the body is empty in the transcript
                raise _Failure(self._mismatch("the client closed the connection in the "
                                              "message body", self.last_lineno, (), ()),
                               reply=None)
            got.append(line)
            size += len(line) + 2
            if line == ".":
                break
            if size > MAX_BODY:
                raise _Failure(self._mismatch(
                    f"the client sent more than {MAX_BODY} bytes of message body without the "
                    "'.' line", entry.lineno if entry else None, (), (_summary(got),)))
        for mismatch in match_body(pattern, got, tls=self.conn.tls):
            self.found.append(replace(mismatch, source=self.source))
        return j

    # -- AUTH: the initial-response and two-step forms match each other

    async def _auth(self, i: int) -> int:
        """An AUTH command and its exchange (``334`` challenges and the client's answers).

        ``AUTH PLAIN <response>`` and ``AUTH PLAIN`` + ``334`` + ``<response>`` match each
        other whichever the transcript has (the same for LOGIN's user name): a missing
        challenge is sent as an empty ``334 `` (``334 VXNlcm5hbWU6`` for LOGIN), a recorded
        one the client does not wait for is left out. When the transcript's secrets can be
        resolved from ``env``, the credentials are checked and a wrong one gets ``535``.
        """
        command = self.steps[i]
        assert isinstance(command, Send)
        line = command.lines[0]
        assert isinstance(line, ClientLine)
        split = _auth_line(command)
        assert split is not None
        mech, initial = split
        prompts: list[Expect | None] = [None] if initial is not None else []
        answers: list[ClientLine] = [initial] if initial is not None else []
        j = i + 1
        while j + 1 < len(self.steps):
            challenge_step, answer_step = self.steps[j], self.steps[j + 1]
            if not (isinstance(challenge_step, Expect) and challenge_step.code == 334
                    and challenge_step.complete and isinstance(answer_step, Send)
                    and not answer_step.body and len(answer_step.lines) == 1
                    and isinstance(answer_step.lines[0], ClientLine)):
                break
            prompts.append(challenge_step)
            answers.append(answer_step.lines[0])
            j += 2

        got = await self._read(line, "the transcript expects this line next")
        assert got is not None
        words = got.split(" ", 2)
        same = (len(words) >= 2 and words[0].upper() == "AUTH"
                and words[1].upper() == mech.upper())
        got_initial = words[2] if same and len(words) == 3 else None
        if not same or (got_initial is not None and not answers):
            mismatch = match_client_line(line, got) or self._mismatch(
                "text differs", line.lineno, (line,), (got,))
            raise _Failure(replace(mismatch, got_tls=self.conn.tls, source=self.source))
        self._follow(got)
        wrong: list[str] = []
        sent = [got]  # as the report shows them: the answers masked
        challenge: str | None = None
        for index, (prompt, expected) in enumerate(zip(prompts, answers, strict=True)):
            if index == 0 and got_initial is not None:
                answer = got_initial
            else:
                if prompt is None:  # the transcript had an initial response; this client waits
                    text = _EMPTY_CHALLENGE.get(mech.upper(), "334 ")
                    await self._send(wire_bytes(text) + b"\r\n")
                    challenge = text[4:].strip()
                else:
                    await self._send_lines(prompt.lines)
                    challenge = prompt.lines[-1].text[4:].strip()
                read = await self._read(expected, "the transcript expects this AUTH answer")
                assert read is not None
                answer = read
                sent.append(mask_answer(answer))
            if match_client_line(expected, answer) is not None:
                shown = got if index == 0 and got_initial is not None else mask_answer(answer)
                raise _Failure(self._mismatch("the AUTH answer differs", expected.lineno,
                                              (line if index == 0 else expected,), (shown,)))
            problem = self._check_credentials(expected, answer, challenge)
            if problem is not None:
                wrong.append(problem)
        if wrong:
            recorded = (line, *(a for a in answers if a.lineno != line.lineno))
            self.found.append(Mismatch("; ".join(wrong) + " (answered 535)", line.lineno,
                                       recorded, tuple(sent), self.conn.tls, self.source))
            await self._send(WRONG_CREDENTIALS_REPLY.encode() + b"\r\n")
            await self._after_refusal()
            raise _Failure(reply=None)
        return j

    def _check_credentials(self, expected: ClientLine, answer: str,
                           challenge: str | None) -> str | None:
        """Why ``answer`` carries other credentials than the transcript's secret; None if
        they agree, or if they cannot be checked (no secret, a variable not set)."""
        secret = expected.secret
        if secret is None or self.env is None:
            return None
        try:
            wanted = expected.resolve(self.env, challenge=challenge)
        except TranscriptError:
            return None  # its variable is not set: any credentials are accepted
        return credentials_problem(secret, wanted.split(" ")[-1], answer.split(" ")[-1])

    async def _after_refusal(self) -> None:
        """After a ``535`` the session is over as far as the transcript goes, and the mock
        answers like a server that requires AUTH: QUIT ``221`` (and closes), another AUTH
        ``535`` (smtplib tries the next mechanism), RSET and NOOP ``250``, anything else
        ``530``, until the client closes."""
        while True:
            line = await self._read(None, "after the 535 reply")
            if line is None:
                return
            verb = line.split(" ", 1)[0].upper()
            if verb == "QUIT":
                await self._send(b"221 2.0.0 smtpshell mock: bye\r\n")
                return
            reply = (WRONG_CREDENTIALS_REPLY if verb == "AUTH"
                     else "250 2.0.0 OK" if verb in ("RSET", "NOOP")
                     else "530 5.7.0 smtpshell mock: authentication required")
            await self._send(reply.encode() + b"\r\n")

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


def _auth_line(step: Send) -> tuple[str, ClientLine | None] | None:
    """(mechanism, initial response as a line of its own or None) if ``step`` is one AUTH
    command; None otherwise."""
    if step.body or len(step.lines) != 1 or not isinstance(step.lines[0], ClientLine):
        return None
    line = step.lines[0]
    first = line.parts[0] if line.parts else None
    m = _AUTH_RE.fullmatch(first) if isinstance(first, str) else None
    if m is None or line.rule.kind != "default":
        return None
    rest = ((m["rest"],) if m["rest"] else ()) + line.parts[1:]
    return m["mech"], (ClientLine(rest, line.tls, DEFAULT_RULE, line.lineno) if rest else None)


# Commands after which the client's next move depends on more than the reply code: a
# difference in their arguments still stops the mock.
_FLOW_VERBS = frozenset({"AUTH", "BDAT", "STARTTLS"})


def _same_command(recorded: str, got: str) -> bool:
    """True if ``got`` is the recorded command with other arguments: the same verb, one
    whose arguments do not change what the client does next (not DATA/BDAT/AUTH/STARTTLS,
    and not a line that is no command, such as an AUTH answer)."""
    verb = recorded.split(" ", 1)[0].upper()
    if not verb.isascii() or not verb.isalpha() or verb in _FLOW_VERBS:
        return False
    return got.split(" ", 1)[0].upper() == verb


def _has_bytes(step: Send) -> bool:
    """A body with exact bytes (``->>``) in it is read as it is written, not as lines."""
    return any(isinstance(e, ClientBytes | ElidedBytes) for e in step.lines)


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

    The Nth accepted connection walks the transcript's Nth connection (after the last, the
    first again); a transcript with one connection serves it to every client. A transcript
    whose connections are all implicit TLS is served with TLS on ``port``; one that mixes
    implicit-TLS and plain/STARTTLS connections needs two listeners: plain on ``port``,
    TLS on ``tls_port`` (None or 0: any free port; see ``.tls_port``, which is ``port`` for
    an all-implicit transcript and None for one without implicit TLS). A client that comes
    to the other listener than its connection's kind gets an error result.

    ``ssl_context`` (server side) is required when the transcript uses TLS. ``timeout`` bounds
    each wait for the client (None: no bound). With ``env`` (variables), secrets that can be
    resolved from it are checked and wrong credentials get ``535``; without, any are taken.
    Secrets are read only from ``SMTPSHELL_*`` variables and those named in ``secret_env``:
    a transcript naming another is refused (ValueError).
    After ``max_connections`` accepted connections
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
        env: Mapping[str, str] | None = None,
        tls_port: int | None = None,
        secret_env: Iterable[str] = (),
        secret_env_option: str = "--secret-env",
    ) -> None:
        if ssl_context is None and needs_tls(transcript):
            raise ValueError("this transcript uses TLS: the mock needs an ssl_context")
        problem = serve_problem(transcript, None if env is None else secret_env,
                                secret_env_option)
        if problem is not None:
            raise ValueError(problem)
        allowed = frozenset(secret_env)
        # only the variables a secret may be read from (SMTPSHELL_*, ``secret_env``)
        self.env = None if env is None else {
            k: v for k, v in env.items() if secret_env_problem(k, allowed) is None}
        self.transcript = transcript
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.max_connections = max_connections
        self.results: list[MockResult] = []
        self._on_result = on_result
        self.connections = connections(transcript)
        self._script = _script(transcript)
        self._mixed = mixed_kinds(transcript)
        self.tls_port: int | None = (tls_port or 0) if self._mixed else None
        self._source = None if transcript.source == "<string>" else transcript.source
        self._server: asyncio.Server | None = None
        self._tls_server: asyncio.Server | None = None
        self.binding = port
        """The port ``start()`` was binding last (the one named when it raises OSError)."""
        self._accepted = 0
        self._tasks: dict[asyncio.Task[None], _Client] = {}
        self._changed: asyncio.Condition | None = None
        self._connected: asyncio.Event | None = None

    @property
    def accepted(self) -> int:
        """Connections accepted so far (including any beyond ``max_connections``)."""
        return self._accepted

    async def start(self) -> None:
        """Start listening; raises OSError if the address cannot be bound."""
        self._changed = asyncio.Condition()
        self._connected = asyncio.Event()
        self.binding = self.port
        self._server = await serve_tcp(self.host, self.port,
                                       lambda stream: self._spawn(stream, None))
        self.port = self._server.sockets[0].getsockname()[1]
        if self.tls_port is not None:
            self.binding = self.tls_port
            try:
                self._tls_server = await serve_tcp(self.host, self.tls_port,
                                                   lambda stream: self._spawn(stream, True))
            except OSError:
                self._server.close()
                self._server = None
                raise
            self.tls_port = self._tls_server.sockets[0].getsockname()[1]
        elif self.connections[0].implicit:
            self.tls_port = self.port

    def _close_listeners(self) -> None:
        for server in (self._server, self._tls_server):
            if server is not None:
                server.close()

    async def stop(self) -> None:
        """Stop listening; connections still in progress end with an error result."""
        servers = [s for s in (self._server, self._tls_server) if s is not None]
        self._server = self._tls_server = None
        for server in servers:
            server.close()
        for task, conn in list(self._tasks.items()):
            conn.abort()
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in servers:
            await server.wait_closed()

    async def connected(self, count: int = 1) -> None:
        """Return once ``count`` clients have connected (at once if they have)."""
        assert self._connected is not None, "start the server first"
        while self._accepted < count:
            self._connected.clear()  # set again by the next accepted connection
            await self._connected.wait()

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

    def _spawn(self, stream: AsyncioStream, tls_listener: bool | None) -> None:
        """``tls_listener``: True for the implicit-TLS listener of a mixed transcript, None
        for the one listener of a transcript of one kind (or the plain one of a mixed)."""
        self._accepted += 1
        if self._connected is not None:
            self._connected.set()
        limit = self.max_connections
        if self._server is None or (limit is not None and self._accepted > limit):
            stream.abort()
            return
        conn = _Client(stream)
        if limit is not None and self._accepted >= limit:
            self._close_listeners()
        task = asyncio.get_running_loop().create_task(
            self._serve(conn, self._accepted, bool(tls_listener)))
        self._tasks[task] = conn
        task.add_done_callback(lambda done: self._tasks.pop(done, None))

    def _wrong_port(self, block: Connection, tls_listener: bool) -> str | None:
        """Why a connection of a mixed transcript came to the wrong listener, or None."""
        if not self._mixed or block.implicit == tls_listener:
            return None
        came, wanted = ((f"implicit-TLS port {self.tls_port}", f"port {self.port}")
                        if tls_listener else
                        (f"port {self.port}", f"implicit-TLS port {self.tls_port}"))
        where = f" (line {block.lineno})" if block.lineno is not None else ""
        return (f"the transcript's connection {block.number}{where} is {block.kind}: the "
                f"client connected to {came} instead of {wanted}")

    async def _serve(self, conn: _Client, number: int, tls_listener: bool) -> None:
        peer = conn.peer
        block = self.connections[(number - 1) % len(self.connections)]
        wrong = self._wrong_port(block, tls_listener)
        if wrong is not None:
            await conn.close()
            self._record(MockResult(number, peer, error=wrong))
            assert self._changed is not None
            async with self._changed:
                self._changed.notify_all()
            return
        session = _Session(self, conn, block)
        try:
            found, error = await session.run()
        except asyncio.CancelledError:
            found = session.found
            self._record(MockResult(number, peer, found[0] if found else None,
                                    "the mock was stopped during the session",
                                    tuple(found[1:])))
            raise
        self._record(MockResult(number, peer, found[0] if found else None, error,
                                tuple(found[1:]), session.dropped))
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    def _record(self, result: MockResult) -> None:
        self.results.append(result)
        if self._on_result is not None:
            self._on_result(result)
