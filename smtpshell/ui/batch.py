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

Two things save time without changing what is sent or shown:

* When the server offers PIPELINING (RFC 2920), consecutive MAIL/RCPT/RSET lines that
  are already waiting on stdin go out in one write with the command that ends the group
  (DATA, QUIT, NOOP, EHLO...); each reply is still printed beside its command.
* Message lines after a 354 that are already waiting go out in one write.

Lines are only grouped when they have already arrived: a script that waits for a reply
before writing its next line is served one line at a time, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import select
import stat
from collections import deque
from typing import TYPE_CHECKING, TextIO

from ..protocol.events import Closed, ProtocolError, Reply, ReplyKind
from ..session import SessionEvent
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


class LineReader:
    """Lines from stdin, without threads, with a look-ahead that never blocks.

    A regular file (``< file``) is read directly: reading it never waits for anyone.
    A pipe or terminal is waited on by the event loop, and ``ready_line`` returns a line
    only when one has already arrived.  A stream with no file descriptor (tests pass a
    ``StringIO``) is read with ``readline``.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines: deque[str] = deque()
        self._partial: list[bytes] = []  # an unfinished line, in the pieces it came in
        self._eof = False
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._fd: int | None = None
        self._pollable = False
        try:
            fd = stream.fileno()
            mode = os.fstat(fd).st_mode
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return
        self._fd = fd
        self._pollable = not stat.S_ISREG(mode)

    async def line(self) -> str | None:
        """The next line without its line ending, or None at the end of input."""
        while not self._lines:
            if self._eof:
                return None
            if self._fd is None:
                self._from_stream()
            elif self._pollable:
                await self._wait_readable()
                self._read()
            else:
                self._read()
        return self._lines.popleft()

    def ready_line(self) -> str | None:
        """The next line if it can be had without waiting, else None (it stays unread)."""
        if not self._lines and not self._eof:
            if self._fd is None:
                self._from_stream()
            elif not self._pollable or self._readable_now():
                self._read()
        return self._lines.popleft() if self._lines else None

    def push_back(self, line: str) -> None:
        """Return a line taken with ``ready_line`` that is to be handled on its own."""
        self._lines.appendleft(line)

    # ---- reading -----------------------------------------------------------------------
    def _decode(self, raw: bytes) -> str:
        return raw.removesuffix(b"\r").decode(self._encoding, "surrogateescape")

    def _read(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._eof = True
            if self._partial:
                self._lines.append(self._decode(b"".join(self._partial)))
                self._partial = []
            return
        if b"\n" not in data:
            self._partial.append(data)  # a long line: joined once, when it is complete
            return
        first, *complete, rest = data.split(b"\n")
        self._lines.append(self._decode(b"".join([*self._partial, first])))
        self._lines.extend(self._decode(raw) for raw in complete)
        self._partial = [rest] if rest else []

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
    while not core.quit_requested:
        line = await reader.line()
        if line is None:
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
        was_in_data = session.in_data
        lines = _group(core, reader, line)
        if len(lines) > 1:
            if session.in_data:
                await core.send_message_lines(lines)
            else:
                await core.send_pipelined(lines)
        else:
            await core.handle_line(line)
        outcome.report(core.renderer)
        if core.status is not ExitStatus.OK:
            outcome.fail(core.status)  # a shell command failed (/auth, /reconnect)
        if core.recorder is not None and core.recorder not in recorders:
            recorders.append(core.recorder)
        if any(r.error for r in recorders):
            outcome.fail(ExitStatus.ERROR)
        if any(_verb(sent) == "QUIT" for sent in lines):
            quit_sent = True
        if not was_in_data and _verb(lines[-1]) == "DATA" and not core.session.in_data:
            core.renderer.error('DATA was refused: the message lines up to the lone "." '
                                "are not sent")
            skipping = True
    session = core.session
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


EXPECT_USAGE = "/expect CODE…  (CODE: 550, 55x or 5xx; several allowed)"


class Outcome:
    """A session observer that keeps the first failed step and checks ``/expect``.

    A reply of 4xx or 5xx fails its step with the stage code of the command it answers
    (``status.VERB_STATUS``: AUTH 5, MAIL 6, RCPT 7, DATA or the final "." 8, anything
    else 1); a protocol error, an unsolicited failure or a connection the server ended
    fails with 9. ``/expect CODE`` makes the next reply a check instead: the code it names
    is a success, any other reply fails with 1. The first failure is the exit status.
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
