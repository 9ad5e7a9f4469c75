"""Batch mode: stdin is not a terminal, so lines are read and sent without asking anything.

Each command waits for its reply; message lines after a 354 go out without waiting
until the final ".".  Nothing ever prompts.  The exit status says whether the last
reply was a success (or which connect-time stage failed).

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
import select
import stat
from collections import deque
from typing import TextIO

from ..status import ExitStatus
from . import pipeline
from .core import ShellCore

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
    status = await core.connect()
    if status is not ExitStatus.OK:
        await core.close()
        return status
    reader = LineReader(stdin)
    quit_sent = False
    while not core.quit_requested:
        line = await reader.line()
        if line is None:
            break
        if not core.session.connected:
            core.renderer.error(f"not sent (connection closed): {line}")
            core.status = ExitStatus.PROTOCOL
            break
        lines = _group(core, reader, line)
        if len(lines) > 1:
            if core.session.in_data:
                await core.send_message_lines(lines)
            else:
                await core.send_pipelined(lines)
        else:
            await core.handle_line(line)
        if any(sent.strip().upper() == "QUIT" for sent in lines):
            quit_sent = True
    status = core.exit_status()
    session = core.session
    if status is ExitStatus.OK and not quit_sent and not session.connected and (
        session.closed_reason and session.closed_reason != "closed by the client"
    ):
        status = ExitStatus.PROTOCOL
    if core.session.connected and not quit_sent and not core.session.in_data:
        await core.session.send("QUIT", origin="shell")
    await core.close()
    return status


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
