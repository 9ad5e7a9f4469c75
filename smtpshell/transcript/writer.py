"""A crash-safe transcript writer: every line reaches the file as it is written."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from smtpshell.transcript.model import (
    ClientBytes,
    ClientLine,
    Comment,
    Elided,
    ElidedBytes,
    Event,
    Header,
    SecretRef,
    ServerLine,
    _unwritable,
)
from smtpshell.transcript.syntax import escape_char, format_entry, format_header


class NotRegularFile(OSError):
    """The path is a symbolic link, FIFO, device or directory: never written to."""


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _open_new(path: Path, overwrite: bool) -> int:
    """A descriptor for a new transcript at ``path`` (see :class:`TranscriptWriter`)."""
    flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    if not overwrite:
        # O_EXCL also fails on a symbolic link, dangling or not: nothing is followed
        return os.open(path, flags | os.O_EXCL, 0o600)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return os.open(path, flags | os.O_EXCL, 0o600)
    if not stat.S_ISREG(info.st_mode):
        raise _not_regular(path, info.st_mode)
    # Replaced, not written through: the old name is removed and a new file made in its
    # place, so a hard link planted there (another name of someone's file) is never
    # emptied or re-permissioned; O_EXCL|O_NOFOLLOW then refuse whatever appears between
    # the two steps (a symbolic link, a FIFO, a file).
    os.unlink(path)
    return os.open(path, flags | os.O_EXCL, 0o600)


def _not_regular(path: Path, mode: int) -> NotRegularFile:
    what = ("a symbolic link" if stat.S_ISLNK(mode) else "a directory" if stat.S_ISDIR(mode)
            else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file")
    return NotRegularFile(errno.EEXIST, f"{what}, never written to", str(path))


_E = TypeVar("_E", ClientLine, ClientBytes, ServerLine, Event, Elided, ElidedBytes, Comment)


class TranscriptWriter:
    """Writes a transcript line by line, each line reaching the file as it is written.

    The file is created with mode 0600, never over an existing path (``FileExistsError``),
    never through a symbolic link. With ``overwrite`` an existing regular file is emptied
    and set to 0600; a symbolic link, a FIFO, a device or a directory is still refused
    (:class:`NotRegularFile`). Whatever was written when the process dies (even by
    SIGKILL) is a transcript that parses. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self, path: str | os.PathLike[str], header: Header, *, overwrite: bool = False
    ) -> None:
        self.path = Path(path)
        self._fd: int | None = _open_new(self.path, overwrite)
        self.lineno = 0  # lines written so far
        try:
            for line in format_header(header):
                self._write_line(line)
        except BaseException:
            self.close()
            raise

    def _write_line(self, line: str) -> int:
        if self._fd is None:
            raise ValueError("transcript writer is closed")
        data = (line + "\n").encode("utf-8")
        while data:
            data = data[os.write(self._fd, data) :]
        self.lineno += 1
        return self.lineno

    def write(self, entry: _E) -> _E:
        """Write any entry; returns it with its line number."""
        lineno = self._write_line(format_entry(entry))
        return replace(entry, lineno=lineno)

    def client(self, text: str, tls: bool, secret: SecretRef | None = None) -> ClientLine:
        """A client line; with ``secret``, ``text`` is what precedes it (``"AUTH PLAIN "``)."""
        return self.write(ClientLine.of(text, tls, secret))

    def server(self, text: str, tls: bool) -> ServerLine:
        return self.write(ServerLine.of(text, tls))

    def event(self, kind: str, **fields: str | int | bool | None) -> Event:
        """``== kind k=v …``; see :meth:`Event.make` for the keyword names."""
        return self.write(Event.make(kind, **fields))

    def elided(self, lines: Iterable[str], tls: bool, *, file: str | None = None) -> Elided:
        """Stand in for ``lines`` (never the final ``.``) with one ``== elided`` line."""
        return self.write(Elided.of(lines, tls=tls, file=file))

    def client_bytes(self, data: bytes, tls: bool) -> list[ClientBytes]:
        """Exact bytes without an added CRLF (``->>``), an entry per line of them."""
        return [self.write(entry) for entry in ClientBytes.split(data, tls)]

    def elided_bytes(self, nbytes: int, sha256: str, tls: bool) -> ElidedBytes:
        """Stand in for ``nbytes`` exact bytes (a big BDAT chunk) with their SHA-256."""
        return self.write(ElidedBytes(nbytes, sha256, tls))

    def comment(self, text: str) -> None:
        """``# text``; several lines become several comments, control characters escaped."""
        for piece in text.splitlines() or [""]:
            clean = "".join(c if c == "\t" or not _unwritable(c) else escape_char(c)
                            for c in piece)
            self.write(Comment(clean.rstrip(" \t")))

    @property
    def closed(self) -> bool:
        return self._fd is None

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> TranscriptWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and self._fd is not None:
            try:
                self.event("warning", message=f"recording interrupted ({exc_type.__name__})")
            except OSError:
                pass
        self.close()

