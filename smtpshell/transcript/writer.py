"""A crash-safe transcript writer: every line reaches the file as it is written."""

from __future__ import annotations

import os
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

_E = TypeVar("_E", ClientLine, ClientBytes, ServerLine, Event, Elided, ElidedBytes, Comment)


class TranscriptWriter:
    """Writes a transcript line by line, each line reaching the file as it is written.

    The file is created with mode 0600. Whatever was written when the process dies (even by
    SIGKILL) is a transcript that parses. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self, path: str | os.PathLike[str], header: Header, *, overwrite: bool = False
    ) -> None:
        self.path = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        flags |= os.O_TRUNC if overwrite else os.O_EXCL
        self._fd: int | None = os.open(self.path, flags, 0o600)
        self.lineno = 0  # lines written so far
        try:
            if overwrite and hasattr(os, "fchmod"):
                os.fchmod(self._fd, 0o600)
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

