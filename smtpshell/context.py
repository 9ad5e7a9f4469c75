"""Environment: standard streams, terminal facts, colour, config and data directories.

``main(argv, env)`` takes one, so tests can inject streams and directories.

Small files a user names (the config file, a password file) are read with
``read_small_file(path, limit)``: it never waits on a named pipe, refuses anything that is
not a regular file (``/dev/zero``, a FIFO, a directory) and reads at most ``limit`` bytes,
so a hostile path costs neither time nor memory. Its error is one line for the user.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO


def _xdg(var: str, default: str, environ: Mapping[str, str]) -> Path:
    base = environ.get(var) or str(Path.home() / default)
    return Path(base) / "smtpshell"


@dataclass
class Environment:
    """The process's streams, environment variables and terminal facts, replaceable in tests."""

    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    stdin_isatty: bool | None = None
    stdout_isatty: bool | None = None
    config_dir: Path | None = None
    data_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.stdin_isatty is None:
            self.stdin_isatty = _isatty(self.stdin)
        if self.stdout_isatty is None:
            self.stdout_isatty = _isatty(self.stdout)
        if self.config_dir is None:
            self.config_dir = _xdg("XDG_CONFIG_HOME", ".config", self.environ)
        if self.data_dir is None:
            self.data_dir = _xdg("XDG_DATA_HOME", ".local/share", self.environ)

    @property
    def interactive(self) -> bool:
        return bool(self.stdin_isatty and self.stdout_isatty)

    def colour(self, no_color_flag: bool = False) -> bool:
        """Colour unless NO_COLOR is set (https://no-color.org), --no-color, or not a TTY."""
        if no_color_flag or "NO_COLOR" in self.environ:
            return False
        return bool(self.stdout_isatty) and self.environ.get("TERM") != "dumb"

    @property
    def background(self) -> str:
        """"dark" or "light": SMTPSHELL_BACKGROUND, else COLORFGBG's background, else dark."""
        chosen = self.environ.get("SMTPSHELL_BACKGROUND", "").lower()
        if chosen in ("dark", "light"):
            return chosen
        bg = self.environ.get("COLORFGBG", "").rpartition(";")[2]
        return "light" if bg in ("7", "15") else "dark"

    @property
    def history_file(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "history"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class SmallFileError(Exception):
    """Why a small file could not be read, in words for one error line."""


class SmallFileMissing(SmallFileError):
    """The file does not exist."""


def check_regular_file(path: str | os.PathLike[str]) -> None:
    """Raise ``SmallFileError`` unless ``path`` names a regular file (symlinks followed),
    without opening it: for files another library opens later (``--cafile``)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise SmallFileMissing(f"{os.fsdecode(path)}: no such file") from None
    except OSError as exc:
        raise SmallFileError(f"cannot read {os.fsdecode(path)}: {exc.strerror or exc}"
                             ) from None
    if not stat.S_ISREG(mode):
        raise SmallFileError(f"{os.fsdecode(path)} is not a regular file")


def read_small_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them, else
    ``SmallFileError``: missing, unreadable, not a regular file, or larger than ``limit``."""
    name = os.fsdecode(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SmallFileMissing(f"{name}: no such file") from None
    except OSError as exc:
        raise SmallFileError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SmallFileError(f"{name} is not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise SmallFileError(f"cannot read {name}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise SmallFileError(f"{name} is larger than {limit} bytes")
    return b"".join(chunks)
