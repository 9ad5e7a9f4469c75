"""Replay a transcript against a server as a regression test.

The client lines are sent, each reply is matched by the rules of
docs/transcript-format.md, STARTTLS and implicit TLS happen where the transcript
says, and the first mismatch ends the run with a diff.  The ``smtpshell replay`` command
line is ``smtpshell.cli.replay``.

One concern, so one module a little past 500 lines: driving a client session from a
transcript (one file, parsed or streamed, or many at once) and saying where it diverged.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from ..protocol.events import Closed, Reply
from ..protocol.sasl.redact import Outgoing, Redaction
from ..session import (
    ConnectOptions,
    Session,
    SessionError,
    SessionEvent,
    TlsEstablished,
    TlsFailed,
)
from ..tls import TlsConfigError, TlsFailure, TlsOptions, make_client_context
from .matching import Mismatch, match_reply
from .model import (
    ClientBytes,
    ClientEntry,
    ClientLine,
    Elided,
    ElidedBytes,
    Entry,
    Event,
    Expect,
    Header,
    Send,
    ServerLine,
    Step,
    Transcript,
    TranscriptError,
    check_secret_env,
    iter_steps,
    secret_env_names,
    secret_env_problem,
    wire_bytes,
)
from .syntax import escape_text, iter_load, load

SUFFIX = ".smtp"
STREAM_ABOVE = 8 << 20
"""Transcripts bigger than this (8 MiB) are replayed as they are read, never held whole."""
BYTES_RUN = 1 << 20
"""Consecutive ``->>`` entries go out in one write, up to this many bytes (1 MiB) at a time."""
STREAM_BODY_LINES = 1024
"""A streamed message body goes to the session this many lines at a time."""
_LONE_SURROGATE_RE = re.compile("[\ud800-\udc7f\udd00-\udfff]")
"""Surrogates that stand for no byte (U+DC80-DCFF are raw bytes, kept by surrogateescape)."""


TRUST_ADVICE = ("ways forward: trust the server's CA with --cafile FILE (for the sandbox: the "
                "CA file `smtpshell sandbox` prints), or replay without checking the "
                "certificate with -k (--insecure)")
"""What ``smtpshell replay`` says after a refused certificate; the pytest plugin has its own."""


@dataclass(frozen=True)
class ReplayOptions:
    server: tuple[str, int] | None = None
    """Connect here instead of the transcript's ``target`` (every transcript, unless
    ``tls_server`` is given: then the plain and STARTTLS ones)."""
    tls_server: tuple[str, int] | None = None
    """Connect here for a ``tls: implicit`` transcript (a run can mix both kinds)."""
    tls: TlsOptions = field(default_factory=TlsOptions)
    timeout: float = 10.0
    env: Mapping[str, str] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)
    """Made from ``tls`` once for many replays (``with_shared_context``)."""
    trust_advice: str = TRUST_ADVICE
    """The ways forward after a refused certificate, in the front end's option names."""
    tls_server_option: str = "--tls-server"
    """The front end's name for ``tls_server`` (said when an implicit-TLS transcript met a
    server that does not speak TLS first)."""
    secret_env: frozenset[str] = frozenset()
    """Variables a secret may be read from besides the ``SMTPSHELL_*`` ones (a transcript
    naming another is an error before anything is sent: see ``model.SECRET_ENV_PREFIX``)."""
    secret_env_option: str = "--secret-env"
    """The front end's way to allow one more variable (said in that error)."""


def _as_received(reply: Reply) -> list[str]:
    """The reply's lines as the server sent them (what the recorder wrote), to match against
    the transcript: ``Reply.lines`` is the form escaped for the screen, and the report
    escapes ``got`` lines itself, in the transcript's syntax (never ``\\\\x1b``)."""
    if not reply.raw:
        return list(reply.lines)
    return [raw.decode("utf-8", "surrogateescape") for raw in reply.raw]


def with_shared_context(options: ReplayOptions) -> ReplayOptions:
    """``options`` with one SSL context for all its replays, when ``tls`` makes one.

    A context that cannot be made (a missing CA file) is left to each replay, which
    reports it as that transcript's error, as before.
    """
    if options.ssl_context is not None:
        return options
    try:
        context = make_client_context(options.tls)
    except TlsConfigError:
        return options
    return replace(options, ssl_context=context)


@dataclass(frozen=True)
class ReplayResult:
    source: str
    status: Literal["pass", "mismatch", "error"]
    message: str = ""
    mismatch: Mismatch | None = None
    steps: int = 0
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    lineno: int | None = None
    """The transcript line ``message`` is about (None: the whole file)."""

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def render(self) -> str:
        """``PASS FILE (…)``, ``FAIL FILE`` and a diff, or ``FAIL|ERROR FILE:LINE: message``
        (the file named once, as compilers do)."""
        if self.status == "pass":
            return f"PASS {self.source} ({self.steps} steps, {self.seconds:.2f}s)"
        if self.mismatch is not None:
            return f"FAIL {self.source}\n{self.mismatch.render()}"
        where = self.source if self.lineno is None else f"{self.source}:{self.lineno}"
        word = "FAIL" if self.status == "mismatch" else "ERROR"
        return f"{word} {where}: {self.message}"

    @classmethod
    def from_error(cls, source: str, exc: TranscriptError) -> ReplayResult:
        """An unusable transcript: its message and line, the file named once."""
        return cls(source, "error", exc.message, lineno=exc.lineno)


_NO_CONNECT = ("the transcript {what} before any connect event (a connection starts with a "
               "'== connect' line)")


class _Failed(Exception):
    def __init__(self, result: Mismatch | str, *, error: bool = False,
                 lineno: int | None = None) -> None:
        super().__init__(str(result))
        self.result = result
        self.error = error
        self.lineno = lineno

    @classmethod
    def of(cls, exc: TranscriptError) -> _Failed:
        return cls(exc.message, error=True, lineno=exc.lineno)


def split_target(target: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` (the transcript header's ``target``)."""
    host, sep, port = target.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not HOST:PORT (port 1-65535): {target!r}")
    return host.strip("[]"), int(port)


class _Player:
    def __init__(self, header: Header, source: str, steps: Iterable[Step],
                 options: ReplayOptions) -> None:
        self.header = header
        self.source = source
        self._steps = steps
        self.options = options
        self.session: Session | None = None
        self.queue: asyncio.Queue[tuple[Reply, bool] | Closed] = asyncio.Queue()
        self.tls_error: str | None = None
        self.tls_failure: TlsFailure | None = None
        self.challenge: str | None = None
        self.notes: list[str] = []
        self.steps = 0
        self.tls_settled = asyncio.Event()
        self.connections = 0
        self.first_address: str | None = None
        """The first ``connect`` event's ``address=``: later connections to it go where
        the first went (the header's ``target``, or the server replay was told)."""

    def _walk(self) -> Iterator[Step]:
        """The steps; a streamed transcript's parse error ends the replay as an error."""
        try:
            yield from self._steps
        except TranscriptError as exc:
            raise _Failed.of(exc) from None

    def _observer(self, session_holder: list[Session]) -> Callable[[SessionEvent], None]:
        """The observer of one connection: events of a connection that a later ``connect``
        replaced never reach the next connection's replies."""
        def observe(event: SessionEvent) -> None:
            if session_holder and session_holder[0] is self.session:
                self.observe(event)
        return observe

    def observe(self, event: SessionEvent) -> None:
        if isinstance(event, Reply):
            assert self.session is not None
            self.queue.put_nowait((event, self.session.is_tls))
        elif isinstance(event, Closed):
            self.queue.put_nowait(event)
            self.tls_settled.set()
        elif isinstance(event, TlsFailed):
            self.tls_error = event.message
            self.tls_failure = event.failure
            self.tls_settled.set()
        elif isinstance(event, TlsEstablished):
            self.tls_settled.set()

    async def run(self) -> None:
        try:
            for step in self._walk():
                self.steps += 1
                if isinstance(step, Event):
                    await self.event(step)
                elif isinstance(step, Send):
                    await self.send(step)
                else:
                    await self.expect(step)
        finally:
            if self.session is not None:
                await self.session.close()

    def _mismatch(self, reason: str, expected: Sequence[ServerLine | ClientEntry],
                  got: Sequence[str], got_tls: bool | None = None) -> _Failed:
        lines = tuple(expected)
        lineno = next((e.lineno for e in lines if e.lineno is not None), None)
        return _Failed(Mismatch(reason, lineno, lines, tuple(got), got_tls))

    async def event(self, event: Event) -> None:
        if event.kind == "connect":
            await self.connect(event)
        elif event.kind == "tls":
            if self.session is not None and not self.session.is_tls:
                # the handshake runs in the session's reader right after the 220
                try:
                    await asyncio.wait_for(self.tls_settled.wait(), self.options.timeout)
                except TimeoutError:
                    pass
                self.tls_settled.clear()
            if self.session is None or not self.session.is_tls:
                self._check_certificate(event.lineno)
                why = f": {self.tls_error}" if self.tls_error else ""
                raise _Failed(f"expected TLS here, the connection is "
                              f"not encrypted{why}", lineno=event.lineno)
        elif event.kind == "closed":
            if event.get("by") == "client":
                if self.session is not None:
                    await self.session.close()
                return
            await self.wait_closed(event)

    async def connect(self, event: Event) -> None:
        """Open a connection: the first, or a later one (the one before is closed by the
        client if it is still open). Its kind is the event's ``tls=`` (else the header's)."""
        if self.session is not None:
            session, self.session = self.session, None
            await session.close()
        self.queue = asyncio.Queue()
        self.tls_settled.clear()
        self.tls_error = self.tls_failure = self.challenge = None
        header = self.header
        mode = event.get("tls") or header.tls_mode
        implicit = mode == "implicit"
        address = event.get("address")
        self.connections += 1
        first = self.connections == 1
        if first:
            self.first_address = address
        if implicit and self.options.tls_server is not None:
            host, port = self.options.tls_server
        elif self.options.server is not None:
            host, port = self.options.server
        elif not first and address and address != self.first_address:
            try:
                host, port = split_target(address)
            except ValueError as exc:
                raise _Failed(f"the connection's address is {exc}",
                              error=True, lineno=event.lineno) from None
        elif header.target:
            try:
                host, port = split_target(header.target)
            except ValueError as exc:
                raise _Failed(f"the transcript's target is {exc}; give --server",
                              error=True) from None
        else:
            raise _Failed("the transcript names no target: give --server HOST:PORT", error=True)
        options = ConnectOptions(
            host=host,
            port=port,
            tls_mode="implicit" if implicit else "plain",
            tls=self.options.tls,
            connect_timeout=self.options.timeout,
            reply_timeout=self.options.timeout,
            send_timeout=self.options.timeout,
            ehlo_name="replay.smtpshell",
            ssl_context=self.options.ssl_context,
        )
        holder: list[Session] = []
        self.session = Session(options, [self._observer(holder)])
        holder.append(self.session)
        try:
            await self.session.connect()
        except SessionError as exc:
            self.tls_failure = exc.tls_failure
            self._check_certificate(None)
            hint = ""
            if implicit and exc.stage == "tls" and self.options.tls_server is None:
                hint = (f" (this connection is implicit TLS, `tls: implicit`: give the "
                        f"server's implicit-TLS port with {self.options.tls_server_option} "
                        "HOST:PORT; the other connections keep theirs)")
            raise _Failed(f"cannot connect: {exc.message}{hint}", error=True) from None

    def _check_certificate(self, lineno: int | None) -> None:
        """A refused certificate (or a CA file that cannot be read) is a setup problem
        (which CA to trust), not a difference from the transcript: an error, with the ways
        forward."""
        failure = self.tls_failure
        if self.tls_error is not None and self.options.ssl_context is None:
            try:  # TLS could not even start: the options name a CA file that is not there
                make_client_context(self.options.tls)
            except TlsConfigError as exc:
                raise _Failed(f"TLS cannot start (a setup problem, not a difference "
                              f"from the transcript): {exc}", error=True,
                              lineno=lineno) from None
        if failure is None or not failure.certificate_refused:
            return
        sha = f"\n  certificate SHA-256 {failure.sha256}" if failure.sha256 else ""
        raise _Failed(f"the server's certificate was refused, so TLS could not start "
                      f"(a setup problem, not a difference from the transcript): "
                      f"{failure.message}{sha}\n  {self.options.trust_advice}", error=True,
                      lineno=lineno)

    async def send(self, step: Send) -> None:
        session = self.session
        if session is None:
            first = step.lines[0].lineno if step.lines else None
            raise _Failed(_NO_CONNECT.format(what="sends"), error=True, lineno=first)
        # Message lines go out a block at a time (one write each), commands one by one.
        block: list[Outgoing | str] = []
        run: list[ClientBytes] = []
        for entry in step.lines:
            if isinstance(entry, ClientBytes):  # a run of ->> entries goes out in one write
                await self._write(block, entry)
                run.append(entry)
                if sum(len(e.data) for e in run) >= BYTES_RUN:
                    await self._send_run(run)
                continue
            await self._send_run(run)
            if isinstance(entry, ElidedBytes):
                await self._write(block, entry)
                await self._send_bytes(entry)
                continue
            if isinstance(entry, Elided):
                await self._write(block, entry)
                for text in self.elided_lines(entry):
                    block.append(text)
                    if len(block) >= STREAM_BODY_LINES:
                        await self._write(block, entry)
                await self._write(block, entry)
                continue
            if entry.tls != session.is_tls:
                raise self._mismatch(
                    "this line was sent inside TLS" if entry.tls else
                    "this line was sent in the clear, but the connection is now TLS",
                    [entry], [entry.text], session.is_tls)
            for name in secret_env_names(entry):  # a streamed transcript is checked here
                refused = secret_env_problem(name, self.options.secret_env,
                                             self.options.secret_env_option)
                if refused:
                    raise _Failed(refused, error=True, lineno=entry.lineno)
            try:
                text = entry.resolve(self.options.env, challenge=self.challenge)
            except TranscriptError as exc:
                raise _Failed.of(exc) from None
            lone = _LONE_SURROGATE_RE.search(text)
            if lone:
                raise _Failed(f"\\u{{{ord(lone[0]):x}}} is a lone surrogate, "
                              "not a character: it cannot be sent (write bytes as \\xHH)",
                              error=True, lineno=entry.lineno)
            if "\r" in text or "\n" in text:  # a bare CR or LF (a smuggling probe): exactly
                await self._write(block, entry)
                await self._send_exact(wire_bytes(text) + b"\r\n", entry)
                continue
            # a resolved secret is recorded and shown as the transcript's placeholder
            block.append(text if entry.secret is None else Outgoing(
                text, Redaction(text=entry.text, shown=entry.text, secret=True)))
            if not step.body or entry.secret is not None or len(block) >= STREAM_BODY_LINES:
                await self._write(block, entry)
        await self._send_run(run)
        if step.lines:
            await self._write(block, step.lines[-1])

    async def _send_run(self, run: list[ClientBytes]) -> None:
        """Consecutive ``->>`` entries, joined, in one write (and ``run`` emptied)."""
        if not run:
            return
        for entry in run:
            self._check_bytes_tls(entry)
        data = b"".join(e.data for e in run)
        first = run[0]
        run.clear()
        await self._send_exact(data, first)

    def _check_bytes_tls(self, entry: ClientBytes | ElidedBytes) -> None:
        session = self.session
        assert session is not None
        if entry.tls != session.is_tls:
            raise self._mismatch(
                "these bytes were sent inside TLS" if entry.tls else
                "these bytes were sent in the clear, but the connection is now TLS",
                [entry], [] if isinstance(entry, ElidedBytes) else [entry.text],
                session.is_tls)

    async def _send_bytes(self, entry: ClientBytes | ElidedBytes) -> None:
        """Exact bytes (``->>``), or the bytes a byte elision stands for: ``file=`` (checked
        against its size and sha256) or filler, a block at a time."""
        self._check_bytes_tls(entry)
        if isinstance(entry, ClientBytes):
            await self._send_exact(entry.data, entry)
            return
        if entry.file is None:
            if not any("filler" in n for n in self.notes):
                self.notes.append(f"line {entry.lineno}: elided bytes replayed as filler")
            for block in entry.filler():
                await self._send_exact(block, entry)
            return
        base = Path(self.source).parent if self.source != "<string>" else Path.cwd()
        try:
            data = read_elided_file(base, entry.file, entry.nbytes)
        except ValueError as exc:
            raise _Failed(str(exc), error=True, lineno=entry.lineno) from None
        if not entry.matches(data):
            raise _Failed(f"{entry.file} does not match the elided bytes", lineno=entry.lineno)
        await self._send_exact(data, entry)

    async def _send_exact(self, data: bytes, entry: ClientEntry) -> None:
        """``data`` as it is, no CRLF added, in one write; replies go to the queue."""
        session = self.session
        assert session is not None
        await session.send_raw(data, shown=escape_text(data.decode("utf-8", "surrogateescape")))
        if not session.connected:
            self._check_certificate(None)
            raise self._mismatch("the connection closed before these bytes could be sent",
                                 [entry], [])

    async def _write(self, block: list[Outgoing | str], entry: ClientEntry) -> None:
        """Send ``block`` in one write (no reply awaited) and empty it."""
        session = self.session
        if not block or session is None:
            return
        await session.send_lines(block, wait=False, dot_stuff=False)
        block.clear()
        if not session.connected:
            self._check_certificate(None)
            raise self._mismatch("the connection closed before this line could be sent",
                                 [entry], [])

    def elided_lines(self, entry: Elided) -> Iterable[str]:
        if entry.file is None:
            if not any("filler" in n for n in self.notes):
                self.notes.append(f"line {entry.lineno}: elided body replayed as filler")
            return entry.filler()
        base = Path(self.source).parent if self.source != "<string>" else Path.cwd()
        try:
            data = read_elided_file(base, entry.file, entry.nbytes)
        except ValueError as exc:
            raise _Failed(str(exc), error=True, lineno=entry.lineno) from None
        lines = data.decode("utf-8", "surrogateescape").replace("\r\n", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        lines = ["." + x if x.startswith(".") else x for x in lines]
        if not entry.matches(lines):
            raise _Failed(f"{entry.file} does not match the elided lines", lineno=entry.lineno)
        return lines

    async def next_reply(self, expected: Expect) -> tuple[Reply, bool]:
        try:
            item = await asyncio.wait_for(self.queue.get(), self.options.timeout)
        except TimeoutError:
            raise self._mismatch(f"no reply within {self.options.timeout:g}s",
                                 expected.lines, []) from None
        if isinstance(item, Closed):
            self._check_certificate(None)
            raise self._mismatch(f"the server closed the connection ({item.reason})",
                                 expected.lines, [])
        return item

    async def expect(self, step: Expect) -> None:
        if self.session is None:  # no reply can come: an error at once, not a timeout
            raise _Failed(_NO_CONNECT.format(what="expects a reply"), error=True,
                          lineno=step.lineno)
        reply, tls = await self.next_reply(step)
        got = _as_received(reply)
        mismatch = match_reply(step.lines, got)
        expected_tls = step.lines[0].tls if step.lines else tls
        if mismatch is None and expected_tls != tls:
            mismatch = Mismatch(
                "this reply was received inside TLS" if expected_tls
                else "this reply was received in the clear, now it came over TLS",
                step.lineno, step.lines, tuple(got), tls)
        if mismatch is not None:
            raise _Failed(replace(mismatch, got_tls=tls))
        if reply.code == 334:
            self.challenge = reply.texts[0].strip()

    async def wait_closed(self, event: Event) -> None:
        session = self.session
        if session is None or not session.connected:
            return
        try:
            item = await asyncio.wait_for(self.queue.get(), self.options.timeout)
        except TimeoutError:
            raise _Failed("expected the server to close the connection; "
                          "it stayed open", lineno=event.lineno) from None
        if not isinstance(item, Closed):
            raise _Failed(f"expected the server to close the connection; "
                          f"it sent: {item[0].lines[0]}", lineno=event.lineno)


def read_elided_file(base: Path, name: str, limit: int) -> bytes:
    """The body an ``== elided … file=NAME`` line stands for: NAME relative to ``base`` (the
    transcript's folder, never outside it), a regular file of at most ``limit`` bytes (the
    elided ``bytes=``: a bigger file cannot match). ValueError says why not, in words."""
    path = Path(name)
    inside = (base / path).resolve().is_relative_to(base.resolve())
    if path.is_absolute() or ".." in path.parts or not inside:
        raise ValueError(f"file={name}: must be a path inside the transcript's folder")
    try:
        fd = os.open(base / path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ValueError(f"cannot read {name}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"file={name}: not a regular file")
        if info.st_size > limit:
            raise ValueError(f"file={name}: {info.st_size} bytes, more than the {limit} "
                             "bytes it stands for")
        try:
            return f.read(limit + 1)
        except OSError as exc:
            raise ValueError(f"cannot read {name}: {exc.strerror}") from None


async def replay(transcript: Transcript, options: ReplayOptions) -> ReplayResult:
    """Replay one parsed transcript; never raises for anything the server does. A secret
    read from a variable ``options`` does not allow is an error before anything is sent."""
    try:
        check_secret_env(transcript.entries, options.secret_env, options.secret_env_option)
    except TranscriptError as exc:
        return ReplayResult.from_error(transcript.source, exc)
    return await _play(_Player(transcript.header, transcript.source, transcript.steps(),
                               options))


async def replay_stream(path: str | os.PathLike[str], options: ReplayOptions) -> ReplayResult:
    """Replay a transcript file as it is read, in bounded memory (a 100 MB message body
    is never held whole); a parse error ends it as an error, like :func:`replay_file`."""
    try:
        header, entries = iter_load(path)
    except TranscriptError as exc:
        return ReplayResult.from_error(str(path), exc)
    steps = iter_steps(entries, body_chunk=STREAM_BODY_LINES)
    return await _play(_Player(header, str(path), steps, options))


async def _play(player: _Player) -> ReplayResult:
    started = time.monotonic()
    source = player.source
    try:
        await player.run()
    except _Failed as failed:
        result = failed.result
        elapsed = time.monotonic() - started
        if isinstance(result, Mismatch):
            return ReplayResult(source, "mismatch", result.reason,
                                replace(result, source=source), player.steps, elapsed,
                                tuple(player.notes))
        status: Literal["mismatch", "error"] = (
            "error" if failed.error or player.session is None else "mismatch"
        )
        return ReplayResult(source, status, result, None, player.steps, elapsed,
                            tuple(player.notes), failed.lineno)
    return ReplayResult(source, "pass", "", None, player.steps, time.monotonic() - started,
                        tuple(player.notes))


async def replay_file(path: str | os.PathLike[str], options: ReplayOptions) -> ReplayResult:
    return await _replay_loaded(str(path), _load(path), options)


@dataclass(frozen=True)
class Scanned:
    """What the first pass over a run's files keeps of a transcript that parses: its file and
    the secret variables it reads (asked for before anything is sent), never the parsed
    model. It is parsed again when its turn comes (over ``STREAM_ABOVE`` bytes: replayed as
    it is read), so a run of thousands holds at most ``jobs`` models at a time."""

    path: Path
    secrets: tuple[tuple[str, int | None], ...]
    """(variable, line) of each secret's ``$NAME``."""


Loaded = Transcript | TranscriptError | Scanned


def _load(path: str | os.PathLike[str]) -> Transcript | TranscriptError:
    try:
        return load(path)
    except TranscriptError as exc:
        return exc


def _is_big(path: Path) -> bool:
    try:
        return path.stat().st_size > STREAM_ABOVE
    except OSError:
        return False


def _scan(path: Path) -> Scanned | TranscriptError:
    """The first pass: the file parsed (a big one as a stream) and dropped; what is kept is
    its error, or its secret variables."""
    try:
        if _is_big(path):
            _, entries = iter_load(path)
            return Scanned(path, tuple(_secret_uses(entries)))
        return Scanned(path, tuple(_secret_uses(load(path).entries)))
    except TranscriptError as exc:
        return exc


async def _replay_loaded(source: str, loaded: Loaded, options: ReplayOptions) -> ReplayResult:
    if isinstance(loaded, TranscriptError):
        return ReplayResult.from_error(source, loaded)
    if isinstance(loaded, Scanned):  # parsed now that its turn has come
        if _is_big(loaded.path):
            return await replay_stream(loaded.path, options)
        transcript = _load(loaded.path)
        if isinstance(transcript, TranscriptError):  # changed since the first pass
            return ReplayResult.from_error(source, transcript)
        return await replay(transcript, options)
    return await replay(loaded, options)


def collect(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Transcript files named or found (``*.smtp``, recursively) in directories."""
    files: list[Path] = []
    problems: list[str] = []
    for name in paths:
        p = Path(name)
        if p.is_dir():
            found = sorted(p.rglob(f"*{SUFFIX}"))
            if not found:
                problems.append(f"{name}: no *{SUFFIX} transcripts in this directory")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            problems.append(f"{name}: no such file or directory")
    return files, problems


def load_all(files: Sequence[Path]) -> list[tuple[Path, Loaded]]:
    """The first pass: each file parsed and its model dropped, keeping its error or its
    secret variables (``Scanned``); ``replay_many`` parses it again when its turn comes."""
    return [(path, _scan(path)) for path in files]


async def replay_many(loaded: Sequence[tuple[Path, Loaded]],
                      options: ReplayOptions, jobs: int,
                      report: Callable[[ReplayResult], None] | None = None
                      ) -> list[ReplayResult]:
    """Replay transcripts concurrently, at most ``jobs`` at a time, started in the order of
    ``loaded``; ``report`` is called with each result as it ends. The results come back in
    the order of ``loaded``; a ``Scanned`` transcript is parsed when its turn comes and
    only its result is kept (``jobs`` workers, not a task per file)."""
    options = with_shared_context(options)
    results: list[ReplayResult | None] = [None] * len(loaded)
    turns = iter(range(len(loaded)))

    async def worker() -> None:
        for i in turns:  # shared: each worker takes the next file when it is free
            path, transcript = loaded[i]
            result = await _replay_loaded(str(path), transcript, options)
            results[i] = result
            if report is not None:
                report(result)

    await asyncio.gather(*(worker() for _ in range(min(max(1, jobs), len(loaded)))))
    return [r for r in results if r is not None]


def secret_variables(transcripts: Iterable[Loaded]) -> list[str]:
    """The ``$VARS`` the secrets in these transcripts are built from, in order of use."""
    names: list[str] = []
    for transcript in transcripts:
        if isinstance(transcript, TranscriptError):
            continue  # replay reports it
        found = (transcript.secrets if isinstance(transcript, Scanned)
                 else _secret_uses(transcript.entries))
        for name, _ in found:
            if name not in names:
                names.append(name)
    return names


def _secret_uses(entries: Iterable[Entry]) -> Iterator[tuple[str, int | None]]:
    for entry in entries:
        if isinstance(entry, ClientLine):
            for name in secret_env_names(entry):
                yield name, entry.lineno


def refuse_secret_env(loaded: Sequence[tuple[Path, Loaded]], allowed: frozenset[str],
                      option: str = "--secret-env") -> list[tuple[Path, Loaded]]:
    """``loaded`` with each transcript whose secrets read a variable that is not allowed
    (not ``SMTPSHELL_*``, not in ``allowed``) turned into its error: it is never replayed,
    and its variables are never asked for."""
    out: list[tuple[Path, Loaded]] = []
    for path, transcript in loaded:
        if not isinstance(transcript, TranscriptError):
            uses = (transcript.secrets if isinstance(transcript, Scanned)
                    else _secret_uses(transcript.entries))
            for name, lineno in uses:
                problem = secret_env_problem(name, allowed, option)
                if problem:
                    transcript = TranscriptError(problem, lineno, str(path))
                    break
        out.append((path, transcript))
    return out


def ask_missing_secrets(transcripts: Iterable[Loaded],
                        env: Mapping[str, str],
                        ask: Callable[[str], str | None]) -> dict[str, str]:
    """Values for secret variables the environment lacks, from ``ask`` (a prompt)."""
    found: dict[str, str] = {}
    for name in secret_variables(transcripts):
        if name not in env:
            value = ask(name)
            if value:
                found[name] = value
    return found
