"""Environment: standard streams, terminal facts, colour, config and data directories.

``main(argv, env)`` takes one, so tests can inject streams and directories.
"""

from __future__ import annotations

import os
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
