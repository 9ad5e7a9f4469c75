"""Batch mode: stdin is not a terminal, so lines are read and sent without asking anything.

Each command waits for its reply; message lines after a 354 go out without waiting
until the final ".".  Nothing ever prompts.  Rules a script can rely on:

* The exit status is that of the FIRST failed step, by its stage code (``Outcome``), even
  when the script goes on and ends with a successful QUIT; 0 only if nothing failed.
* When DATA is refused, the message lines up to the lone "." are not sent (they would
  be taken for commands); the shell says so once.
* A protocol error (a reply cut in the middle, a line that is not a reply) or a connection
  the server ended is 9; a transcript that could not be written is 1 and never
  "transcript written".
* ``/expect CODE`` (``/!expect`` inside a message) says the next reply should have that
  code (550, 55x, 5xx; several allowed): then it is a success, anything else fails with 1.
* A message begun (354) and never ended with its "." (stdin ends, ``/!quit``, the
  connection closes) is not sent and fails with 8, in one line; no "." is sent for it
  (that would deliver a message cut short).  A QUIT inside a ``/raw`` payload is a QUIT.
* In a message, a line starting with ``/!`` is a shell command, as typed (``/!expect``,
  ``/!raw``); every other line is text.  A bare CR inside a line is a line ending, as
  ``/send`` makes it.

Two things save time without changing what is sent or shown:

* When the server offers PIPELINING (RFC 2920), consecutive MAIL/RCPT/RSET lines that
  are already waiting on stdin go out in one write with the command that ends the group
  (DATA, QUIT, NOOP, EHLO...); each reply is still printed beside its command.
* Message lines after a 354 that are already waiting go out in one write.  From a file
  or a pipe they are streamed (``BodyStream``): taken as bytes in chunks of about
  256 KiB, through the line endings and dot-stuffing ``/send`` uses, the same bytes on
  the wire; the screen shows the first lines and a count (``--show-data``: every line).

Lines are only grouped when they have already arrived: a script that waits for a reply
before writing its next line is served one line at a time, as before.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import enum
import io
import os
import re
import select
import stat
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from ..compose import DataStats, Marks, chunk_marks, data_normaliser
from ..protocol.events import Closed, Notice, ProtocolError, Reply, ReplyKind
from ..protocol.sasl.redact import Outgoing
from ..session import Sent, SessionEvent
from ..status import VERB_STATUS, ExitStatus
from . import pipeline
from .commands.registry import split_meta
from .core import ShellCore, is_lined_up_answer
from .render import Renderer

if TYPE_CHECKING:
    from ..transcript.recorder import Recorder

READ_SIZE = 64 * 1024
DATA_BATCH_BYTES = 256 * 1024
"""At most this much of a message typed on stdin goes out in one write."""
STREAM_READ = 256 * 1024
"""A message piped after DATA is read and sent in chunks of about this size."""
PREVIEW_LINES = 10
"""How many lines of a streamed message the screen shows (then a count; --show-data)."""
LONG_LINE = 998
"""A message line longer than this (without CRLF) gets a warning (RFC 5321 §4.5.3.1.6)."""


class LineReader:
    """Lines from stdin, without threads, with a look-ahead that never blocks.

    A regular file (``< file``) is read directly: reading it never waits for anyone.
    A pipe or terminal is waited on by the event loop, and ``ready_line`` returns a line
    only when one has already arrived.  A stream with no file descriptor (tests pass a
    ``StringIO``) is read with ``readline``.  Bytes are kept as they came and decoded
    one line at a time, so a message after DATA can be taken as bytes instead
    (``take_complete``: whole lines, for ``BodyStream``).
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines: deque[str] = deque()  # lines pushed back, or read from a stream
        self._buf = bytearray()  # bytes read and not yet taken
        self._eof = False
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._fd: int | None = None
        self._pollable = False
        self._terminal = False
        self._widened = False
        try:
            fd = stream.fileno()
            mode = os.fstat(fd).st_mode
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return
        self._fd = fd
        self._pollable = not stat.S_ISREG(mode)
        self._terminal = stat.S_ISCHR(mode) and os.isatty(fd)

    async def line(self) -> str | None:
        """The next line without its line ending, or None at the end of input."""
        while True:
            if self._lines:
                return self._lines.popleft()
            line = self._take_line()
            if line is not None or self._eof:
                return line
            if self._fd is None:
                self._from_stream()
                continue
            if self._pollable:
                await self._wait_readable()
            self._read()

    def ready_line(self) -> str | None:
        """The next line if it can be had without waiting, else None (it stays unread)."""
        if self._lines:
            return self._lines.popleft()
        line = self._take_line()
        if line is not None or self._eof:
            return line
        if self._fd is None:
            self._from_stream()
            return self._lines.popleft() if self._lines else None
        if not self._pollable or self._readable_now():
            self._read()
            return self._take_line()
        return None

    def push_back(self, line: str) -> None:
        """Return a line taken with ``ready_line`` that is to be handled on its own."""
        self._lines.appendleft(line)

    # ---- a message as bytes (BodyStream) -----------------------------------------------
    @property
    def streamable(self) -> bool:
        """Can the next lines be taken as bytes?  Only from a file or a pipe (a person
        typing at a terminal sees each line, as before), with nothing pushed back, and
        when decoding them (UTF-8 with surrogateescape) and encoding them again for the
        wire gives the same bytes."""
        return (self._fd is not None and not self._terminal and not self._lines
                and codecs.lookup(self._encoding).name == "utf-8")

    @property
    def at_eof(self) -> bool:
        """Nothing more to read (what is buffered may still be taken)."""
        return self._eof

    def take_complete(self, limit: int) -> bytes:
        """Whole lines already read, line endings included, about ``limit`` bytes at most
        (one longer line whole); b"" when no complete line is buffered."""
        buf = self._buf
        end = buf.rfind(b"\n", 0, limit)
        if end == -1:
            end = buf.find(b"\n")
            if end == -1:
                return b""
        data = bytes(buf[: end + 1])
        del buf[: end + 1]
        return data

    def unread(self, data: bytes) -> None:
        """Put bytes taken with ``take_complete`` back, in front of what is buffered."""
        self._buf[:0] = data

    async def fill(self) -> None:
        """Read more (waiting for it on a pipe): at least one read, then what else is
        there already, up to ``STREAM_READ`` bytes buffered."""
        if self._eof:
            return
        if self._pollable and not self._widened:
            self._widened = True
            _widen_pipe(self._fd)
        if self._pollable:
            await self._wait_readable()
        self._read(STREAM_READ)
        while (not self._eof and len(self._buf) < STREAM_READ
               and (not self._pollable or self._readable_now())):
            before = len(self._buf)
            self._read(STREAM_READ - len(self._buf))
            if len(self._buf) == before:
                break

    # ---- reading -----------------------------------------------------------------------
    def _decode(self, raw: bytes) -> str:
        return raw.removesuffix(b"\r").decode(self._encoding, "surrogateescape")

    def _take_line(self) -> str | None:
        """A complete line from the buffer (the unfinished last one at the end of input)."""
        buf = self._buf
        end = buf.find(b"\n")
        if end == -1:
            if self._eof and buf:
                raw = bytes(buf)
                buf.clear()
                return self._decode(raw)
            return None
        raw = bytes(buf[:end])
        del buf[: end + 1]
        return self._decode(raw)

    def _read(self, size: int = READ_SIZE) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, size)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._eof = True
            return
        self._buf += data

    def _from_stream(self) -> None:
        raw = self._stream.readline()
        if not raw:
            self._eof = True
            return
        self._lines.append(raw.removesuffix("\n").removesuffix("\r"))

    def _readable_now(self) -> bool:
        assert self._fd is not None
        try:
            readable, _, _ = select.select([self._fd], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(readable)

    async def _wait_readable(self) -> None:
        assert self._fd is not None
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        try:
            loop.add_reader(self._fd, ready.set_result, None)
        except (OSError, NotImplementedError, ValueError):
            # Not pollable after all (e.g. /dev/null with epoll): a read returns at once.
            self._pollable = False
            return
        try:
            await ready
        finally:
            with contextlib.suppress(OSError, ValueError):
                loop.remove_reader(self._fd)


async def run_batch(core: ShellCore, stdin: TextIO) -> ExitStatus:
    """Send stdin's lines; the status of the first failed step (module docstring)."""
    outcome = Outcome()
    core.observers.append(outcome)
    status = await core.connect()
    if status is not ExitStatus.OK:
        await core.close()
        return status
    reader = LineReader(stdin)
    quit_sent = False
    skipping = False  # DATA was refused: the message lines up to the lone "." are not sent
    recorders: list[Recorder] = []
    body: BodyStream | None = None  # the message being streamed after a 354
    body_open = False  # a message was begun (354) and not ended, as last seen connected
    eof = False
    while not core.quit_requested:
        if not core.session.in_data:
            body = None
        elif reader.streamable and core.session.connected:
            body = body or BodyStream(core)
            await body.stream(reader)
        if core.session.connected:
            body_open = core.session.in_data
        line = await reader.line()
        if line is None:
            if body is not None:
                body.summarise()
            eof = True
            break
        if skipping:
            skipping = line != "."
            continue
        session = core.session
        if not session.connected:
            # the line as the history would keep it; a lone word that is no command may be
            # a password lined up for an AUTH exchange: never shown
            shown = ("(a line that is not a command)" if is_lined_up_answer(line)
                     else core.redact_for_history(line))
            core.renderer.error(f"not sent (connection closed): {shown}")
            outcome.fail(ExitStatus.PROTOCOL)
            break
        meta = split_meta(line, in_data=session.in_data)
        if meta is not None and meta[0] == "expect":
            outcome.arm(meta[1], core.renderer)
            continue
        if meta is not None and body is not None:
            # the streamed lines are not all shown: say that this one is not message text
            shown = core.redact_for_history(line).strip()
            core.renderer.info(f"a shell command in the message (run, not sent): {shown}")
        was_in_data = session.in_data
        lines = [line] if body is not None else _group(core, reader, line)
        if len(lines) > 1:
            if session.in_data:
                await core.send_message_lines(lines)
            else:
                await core.send_pipelined(lines)
        elif session.in_data and "\r" in line and meta is None:
            await _send_cr_line(core, line)
        else:
            await core.handle_line(line)
        if core.session.connected:
            body_open = core.session.in_data
        outcome.report(core.renderer)
        if core.status is not ExitStatus.OK:
            outcome.fail(core.status)  # a shell command failed (/auth, /reconnect)
        if core.recorder is not None and core.recorder not in recorders:
            recorders.append(core.recorder)
        if any(r.error for r in recorders):
            outcome.fail(ExitStatus.ERROR)
        if not was_in_data and any(_verb(sent) == "QUIT" for sent in lines):
            quit_sent = True
        if not was_in_data and _verb(lines[-1]) == "DATA" and not core.session.in_data:
            core.renderer.error('DATA was refused: the message lines up to the lone "." '
                                "are not sent")
            skipping = True
    session = core.session
    quit_sent = quit_sent or session.conn.quit_sent  # QUIT inside a /raw payload too
    if body_open:
        # the message was begun and never ended: nothing sends its "." now (that would
        # deliver it cut short); the connection closes without it
        if session.connected and eof:
            why = "input ended inside DATA"
        elif core.quit_requested:
            why = "the shell was left inside DATA"
        else:
            why = "the connection closed inside DATA"
        core.renderer.error(f"{why}: the message was not sent (no final '.')")
        outcome.fail(ExitStatus.DATA)
    if not quit_sent and not session.connected and (
        session.closed_reason and session.closed_reason != "closed by the client"
    ):
        outcome.fail(ExitStatus.PROTOCOL)
    outcome.finish(core.renderer)
    if session.connected and not quit_sent and not session.in_data:
        await session.send("QUIT", origin="shell")
    await core.close()
    if any(r.error for r in recorders):
        outcome.fail(ExitStatus.ERROR)
    return outcome.status


def _verb(line: str) -> str:
    return line.split(" ", 1)[0].upper()


async def _send_cr_line(core: ShellCore, line: str) -> None:
    """A message line with a CR inside, sent as ``/send`` sends it (``compose``'s
    normaliser): each bare CR is a line ending (RFC 5321 §2.3.8), each piece dot-stuffed,
    so piped, streamed and ``/send`` put the same bytes on the wire.  Each piece goes
    through the redaction point like a typed line; none is taken for a command or the
    end of the message."""
    session = core.session
    wire = data_normaliser(DataStats()).feed(line.encode("utf-8", "surrogateescape") + b"\n")
    pieces = [p.decode("utf-8", "surrogateescape") for p in wire.split(b"\r\n")[:-1]]
    outs = [core.classifier().line(piece, in_data=True, in_auth=False) for piece in pieces]
    core.last_replies = await session.send_lines(outs, dot_stuff=False)


EXPECT_USAGE = "/expect CODE…  (CODE: 550, 55x or 5xx; several allowed)"


class Outcome:
    """A session observer that keeps the first failed step and checks ``/expect``.

    A reply of 4xx or 5xx fails its step with the stage code of the command it answers
    (``status.VERB_STATUS``: AUTH 5, MAIL 6, RCPT 7, DATA or the final "." 8, anything
    else 1); a protocol error, an unsolicited failure or a connection the server ended
    fails with 9; a line refused before it went out (a CR inside a command) with 1.
    ``/expect CODE`` makes the next reply a check instead: the code it names is a success,
    any other reply fails with 1. The first failure is the exit status.
    """

    def __init__(self) -> None:
        self.status = ExitStatus.OK
        self._expected: tuple[str, ...] | None = None
        self._notes: list[tuple[bool, str]] = []

    def fail(self, status: ExitStatus) -> None:
        if self.status is ExitStatus.OK and status is not ExitStatus.OK:
            self.status = status

    def arm(self, args: str, renderer: Renderer) -> None:
        """``/expect CODE…``: the next reply is to have one of these codes."""
        codes = tuple(args.lower().split())
        if not codes or not all(re.fullmatch(r"[2-5][0-9x][0-9x]", c) for c in codes):
            renderer.error(f"usage: {EXPECT_USAGE}")
            self.fail(ExitStatus.USAGE)
            return
        self._expected = codes

    def __call__(self, event: SessionEvent) -> None:
        if isinstance(event, Reply):
            self._reply(event)
        elif isinstance(event, ProtocolError):
            self.fail(ExitStatus.PROTOCOL)
        elif isinstance(event, Closed) and (event.unexpected or event.pending):
            self.fail(ExitStatus.PROTOCOL)
        elif isinstance(event, Notice) and event.kind == "bad-line":
            self.fail(ExitStatus.ERROR)  # a line refused before it went out: not sent

    def _reply(self, reply: Reply) -> None:
        if reply.kind is ReplyKind.GREETING:
            return  # connect() judges the greeting
        if reply.kind is ReplyKind.UNSOLICITED:
            if reply.code >= 400:
                self.fail(ExitStatus.PROTOCOL)
            return
        expected, self._expected = self._expected, None
        if expected is not None:
            wanted = " or ".join(expected)
            if any(_code_matches(pattern, reply.code) for pattern in expected):
                self._notes.append((True, f"{reply.code} as expected"))
            else:
                self._notes.append((False, f"expected {wanted}, got {reply.code}"))
                self.fail(ExitStatus.ERROR)
            return
        if reply.code >= 400:
            self.fail(VERB_STATUS.get(reply.command or "", ExitStatus.ERROR))

    def report(self, renderer: Renderer) -> None:
        """Print what ``/expect`` found (after the step, beside its replies)."""
        for ok, note in self._notes:
            (renderer.info if ok else renderer.error)(note)
        self._notes.clear()

    def finish(self, renderer: Renderer) -> None:
        self.report(renderer)
        if self._expected is not None:
            renderer.error(f"expected {' or '.join(self._expected)}, but no reply came")
            self._expected = None
            self.fail(ExitStatus.ERROR)


def _code_matches(pattern: str, code: int) -> bool:
    return all(p in ("x", c) for p, c in zip(pattern, str(code), strict=True))


def _group(core: ShellCore, reader: LineReader, first: str) -> list[str]:
    """``first`` and the lines already waiting that may go out with it in one write."""
    if core.session.in_data:
        if not core.message_line(first) or first == ".":
            return [first]
        lines, size = [first], len(first)
        while size < DATA_BATCH_BYTES:
            line = reader.ready_line()
            if line is None:
                break
            if not core.message_line(line):
                reader.push_back(line)
                break
            lines.append(line)
            size += len(line) + 2
            if line == ".":
                break
        return lines
    return pipeline.group(first, core.pipeline_policy(), reader.ready_line, reader.push_back)


def _widen_pipe(fd: int | None) -> None:
    """Ask Linux for a pipe buffer of ``STREAM_READ`` bytes (``F_SETPIPE_SZ``), so a message
    piped at wire speed arrives in fewer, larger reads (64 KiB by default); nothing
    happens on another system, for a non-pipe or when it is refused."""
    if fd is None:
        return
    import fcntl

    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setpipe is None:
        return
    with contextlib.suppress(OSError):
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, setpipe, STREAM_READ)


class BodyStream:
    """A message piped on stdin after a 354, sent in chunks (the telnet way, at wire speed).

    Whole lines go through the normaliser ``/send`` uses (``compose.data_normaliser``:
    CRLF line endings, dot-stuffing) and out in one write per chunk; what goes on the wire
    is what sending them one by one sent.  A line that needs the line-by-line path is left
    for it: the lone "." that ends the message, a meta-command (``/!expect``), a line
    with a known secret (redacted on the screen and in the transcript), one over 998
    octets (its warning).  A bare CR inside a line is a line ending, as for ``/send``.
    The screen shows the first ``PREVIEW_LINES`` lines and then a count (every line with
    ``--show-data``); the transcript records every line, as for ``/send``.
    """

    def __init__(self, core: ShellCore) -> None:
        self.core = core
        self.stats = DataStats()
        # the long lines are found by ``_specials`` (a warning each), not counted again
        self._normaliser = data_normaliser(self.stats, long_lines=False)
        self._shown = 0
        self._hidden = 0
        self._summarised = False
        self._long_hidden = 0
        literals = {s.encode("utf-8", "surrogateescape") for s in core.redactor.literals()}
        # a literal that contains another is found by searching for the other one
        self._secrets = tuple(s for s in literals
                              if not any(o != s and o in s for o in literals))

    async def stream(self, reader: LineReader) -> None:
        """Send whole lines from ``reader`` until one that needs the line-by-line path
        (left in the reader), the end of input, or the end of the connection."""
        session = self.core.session
        while session.in_data and session.connected and not session.conn.line_open:
            data = reader.take_complete(STREAM_READ)
            if not data:
                if reader.at_eof:
                    return  # an unfinished last line, or nothing: line by line
                await reader.fill()
                continue
            pos = 0  # what of ``data`` is sent or handled
            marks = chunk_marks(data)
            for at, kind in self._specials(data, marks):
                if at > pos:
                    await self._send(data[pos:at])
                end = data.index(b"\n", at)
                if kind is _Kind.LONG:  # streamed too, after its warning
                    self._long_line(end - at - (data[end - 1] == 0x0D))
                    pos = at
                    continue
                if kind is _Kind.BY_ITSELF and session.connected:
                    # a known secret (redacted): as a typed line
                    text = data[at:end].removesuffix(b"\r").decode("utf-8", "surrogateescape")
                    if "\r" in text:
                        await _send_cr_line(self.core, text)
                    else:
                        await self.core.handle_line(text)
                    pos = end + 1
                    if session.connected:
                        continue
                # the end of the message, a /! command, or a closed connection: the main
                # loop takes it from here
                reader.unread(data[at:])
                if kind is _Kind.END or not session.connected:
                    self.summarise()
                return
            if pos < len(data):
                await self._send(data[pos:], marks if pos == 0 else None)
        if not session.connected:
            self.summarise()

    def _long_line(self, length: int) -> None:
        """The warning a line over 998 octets gets when sent by itself: in the transcript
        always, on the screen while the lines are shown (else counted in the summary)."""
        notice = Notice(kind="long-line", warning=True, message=(
            f"this line is {length + 2} octets; RFC 5321 §4.5.3.1.6 allows 1000"))
        core = self.core
        shown = core.settings.show_data or self._shown < PREVIEW_LINES
        for observer in list(core.session.observers):
            if shown or observer is not core.renderer:
                observer(notice)
        if not shown:
            self._long_hidden += 1

    async def _send(self, chunk: bytes, marks: Marks | None = None) -> None:
        core = self.core
        session = core.session
        before = self.stats.lines
        wire = self._normaliser.feed(chunk, marks)
        count = self.stats.lines - before  # a line per LF, and per bare CR inside one
        await session.send_raw(wire, shown="")  # "": the screen shows the lines below
        if not session.connected:
            return
        show = count if core.settings.show_data else min(count, PREVIEW_LINES - self._shown)
        if show > 0:
            tls = session.is_tls
            view = chunk
            if b"\r" in view:
                # the lines as the normaliser cut them: CRLF is one line end, and a bare
                # CR is one too (it went out as CRLF), so the screen shows what was sent
                view = view.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            for raw in view.split(b"\n", show)[:show]:
                text = raw.decode("utf-8", "surrogateescape")
                # the line as typed, as one sent by itself is shown (the wire has it
                # dot-stuffed): the renderer alone, the transcript has the chunk
                core.renderer(Sent(out=Outgoing(text), data=b"", tls=tls, in_data=True))
            self._shown += show
        self._hidden += count - max(show, 0)

    def summarise(self) -> None:
        """One line for what the screen did not show (and the dot-stuffing), once."""
        if self._summarised:
            return
        self._summarised = True
        stats = self.stats
        if not (self._hidden or stats.dot_stuffed or self._long_hidden):
            return
        parts = [f"{stats.lines} line{'s' if stats.lines != 1 else ''}",
                 f"{stats.message_bytes} bytes"]
        if stats.dot_stuffed:
            parts.append(f"dot-stuffed {stats.dot_stuffed} line"
                         f"{'s' if stats.dot_stuffed != 1 else ''}")
        if self._long_hidden:
            parts.append(f"{self._long_hidden} more line{'s' if self._long_hidden != 1 else ''}"
                         " over 1000 octets (RFC 5321 §4.5.3.1.6; a warning each in the"
                         " transcript)")
        text = "message lines streamed from stdin: " + ", ".join(parts)
        if self._hidden:
            text += f"; {self._hidden} not shown (--show-data shows every line)"
        self.core.renderer.info(text)

    # ---- which line must go by itself ---------------------------------------------------
    def _specials(self, data: bytes, marks: Marks) -> Iterator[tuple[int, _Kind]]:
        """Where the lines that need more than streaming start, in order, and what they
        need.  ``data`` is whole lines.  One cheap search per kind of line finds the next
        candidate of that kind; each candidate is then judged by the line-by-line rules
        themselves (``_special``), and only the searches whose candidate was judged go
        on, from the line after it: one pass over ``data`` per kind, however many such
        lines there are."""
        n = len(data)
        order = marks[3]
        dot_lines = b"\n." in order  # else no line but the first starts with a dot
        secrets = self._secrets

        def next_end(pos: int) -> int:  # the lone "." (or dot-stuffing candidates)
            if data.startswith((b".\n", b".\r\n"), pos):
                return pos
            at = data.find(b"\n.", pos) if dot_lines else -1
            while at != -1:
                if data.startswith((b"\n", b"\r\n"), at + 2):
                    return at + 1
                at = data.find(b"\n.", at + 2)
            return n

        def next_meta(pos: int) -> int:  # "/!" after nothing but blanks
            at = _find_bang_slash(data, pos)
            while at != -1:
                line_start = data.rfind(b"\n", 0, at) + 1
                if not data[line_start:at].strip(b" \t"):
                    return line_start
                at = _find_bang_slash(data, at + 2)
            return n

        def next_secret(pos: int) -> int:
            found = [at for at in (data.find(s, pos) for s in secrets) if at != -1]
            return data.rfind(b"\n", 0, min(found)) + 1 if found else n

        def next_long(pos: int) -> int:
            at = _first_long_line(data, pos)
            return n if at is None else at

        finders = [next_end, next_meta, next_long]
        if secrets:
            finders.append(next_secret)
        pending = [find(0) for find in finders]
        while (at := min(pending)) < n:
            end = data.index(b"\n", at)
            kind = self._special(data[at:end])
            if kind is not None:
                yield at, kind
            pending = [find(end + 1) if p == at else p for p, find in zip(pending, finders,
                                                                           strict=True)]

    def _special(self, raw: bytes) -> _Kind | None:
        """The rules ``_group`` applies to a line typed after 354 (``message_line``), and
        the long-line warning ``send_line`` gives; None for a line that just streams."""
        text = raw.removesuffix(b"\r")
        if text == b".":
            return _Kind.END
        line = text.decode("utf-8", "surrogateescape")
        if split_meta(line, in_data=True) is not None:
            return _Kind.META
        # a CR inside streams: the normaliser makes it a line ending, as /send does
        if not self.core.message_line(line.replace("\r", "\n")):
            return _Kind.BY_ITSELF
        return _Kind.LONG if len(text) > LONG_LINE else None


class _Kind(enum.Enum):
    """What a line found by ``BodyStream._specials`` needs."""

    END = "the lone '.'"
    META = "a /! command"
    BY_ITSELF = "sent (or refused) by itself, as a typed line"
    LONG = "streamed after its warning"


_BANG_HITS = 64
"""How many "!" without a "/" before it ``_find_bang_slash`` checks one by one."""


def _find_bang_slash(data: bytes, start: int) -> int:
    """``data.find(b"/!", start)``, faster for most message text: "/" is common (every
    base64 line has a few, and ``find`` of a two-byte string steps over each) and "!"
    rare, so the "!"s are found with one-byte ``find`` (memchr) and each checked; a
    text with many "!"s falls back to the plain search after ``_BANG_HITS`` of them."""
    at = data.find(b"!", start + 1)
    for _ in range(_BANG_HITS):
        if at == -1 or data[at - 1] == 0x2F:  # "/"
            return at if at == -1 else at - 1
        at = data.find(b"!", at + 1)
    return data.find(b"/!", at - 1) if at != -1 else -1


def _first_long_line(data: bytes, start: int) -> int | None:
    """The start of a line that may be longer than ``LONG_LINE`` octets (the caller
    checks), or None when none is: hops from line end to line end with ``rfind``."""
    p = start - 1  # the line end before the line at ``start``
    last = len(data) - 1
    while p < last:
        q = data.rfind(b"\n", p + 1, p + LONG_LINE + 2)
        if q == -1:
            return p + 1
        p = q
    return None
