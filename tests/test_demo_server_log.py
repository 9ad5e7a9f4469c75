"""``smtpshell demo``: the in-process sandbox's log never reaches the shell's screen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_demo(args: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smtpshell", "demo", *args], input=stdin, capture_output=True,
        text=True, timeout=120, check=False, env={**os.environ, "HOME": "/nonexistent"},
    )


def test_the_servers_log_lines_go_to_a_file_not_the_screen(tmp_path: Path) -> None:
    done = run_demo(["--dir", str(tmp_path)], "EHLO me\nFOO bar\nQUIT\n")
    shown = done.stdout + done.stderr
    assert "< 500 " in shown, shown  # the server did answer the unknown command
    assert "unrecognised" not in shown, shown
    assert f"sandbox log (not shown here): {tmp_path / 'server.log'}" in shown
    assert "unrecognised: FOO" in (tmp_path / "server.log").read_text(encoding="utf-8")


def test_a_temporary_sandbox_logs_nothing_to_the_screen() -> None:
    done = run_demo([], "EHLO me\nFOO bar\nQUIT\n")
    shown = done.stdout + done.stderr
    assert "< 500 " in shown and "< 221 " in shown, shown
    assert "unrecognised" not in shown and "sandbox log" not in shown, shown
