"""Drive the real ``smtpshell`` program in a pseudo-terminal (as a person would)."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

ANSI = re.compile(rb"\x1b\[[0-9;?]*[a-zA-Z]|\x1b\][^\x07]*\x07|\r")


# Make the pty the controlling terminal, then run the shell (for typed Ctrl-C -> SIGINT).
_CTTY = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'smtpshell', *sys.argv[1:]])"
)


class PtyShell:
    def __init__(
        self,
        args: list[str],
        env: Mapping[str, str | None] | None = None,
        *,
        controlling_tty: bool = False,
    ) -> None:
        """``env`` adds to the environment; a value of None removes that variable."""
        self.master, slave = pty.openpty()
        full_env = dict(os.environ)
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        full_env.setdefault("TERM", "xterm")
        full_env.setdefault("PROMPT_TOOLKIT_NO_CPR", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CTTY, *args]
            if controlling_tty
            else [sys.executable, "-m", "smtpshell", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=full_env,
            start_new_session=True,
        )
        os.close(slave)
        self.buffer = b""

    @property
    def text(self) -> str:
        return ANSI.sub(b"", self.buffer).decode("utf-8", "replace")

    def expect(self, pattern: str, timeout: float = 20.0) -> str:
        """Read until ``pattern`` (a regex) appears in the screen text; return the text."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {pattern!r}; got:\n{self.text}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    if re.search(pattern, self.text):
                        break
                    raise AssertionError(f"program ended before {pattern!r}; got:\n{self.text}")
                self.buffer += chunk
        return self.text

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def sendline(self, line: str) -> None:
        self.send(line + "\r")

    def interrupt(self) -> None:
        self.send("\x03")

    def wait(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.buffer += os.read(self.master, 65536)
                except OSError:
                    break
        return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)
