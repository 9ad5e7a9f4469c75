"""Output and transcripts that cannot be written: one line on stderr and a status that is
not 0, never a traceback and never a silent success (real subprocesses, /dev/full)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smtpshell.sandbox import Sandbox

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"),
                                reason="needs /dev/full (Linux)")

SESSION = b"EHLO me\nNOOP\nQUIT\n"


def smtpshell(args: list[str], stdin: bytes = b"", full_stdout: bool = False
              ) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "NO_COLOR": "1"}
    with open("/dev/full", "wb") as full:
        return subprocess.run(
            [sys.executable, "-m", "smtpshell", *args], input=stdin,
            stdout=full if full_stdout else subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, timeout=60, check=False,
        )


def test_batch_output_to_a_full_disk_is_one_line_and_status_1(sandbox: Sandbox) -> None:
    done = smtpshell(["127.0.0.1", str(sandbox.port)], SESSION, full_stdout=True)
    assert done.returncode == 1
    assert done.stderr == b"smtpshell: cannot write to standard output: "\
                          b"No space left on device\n"


def test_a_record_command_that_cannot_write_makes_batch_fail(sandbox: Sandbox) -> None:
    done = smtpshell(["127.0.0.1", str(sandbox.port)],
                     b"EHLO me\n/record /dev/full\nNOOP\nQUIT\n")
    assert b"x cannot record to /dev/full: not a regular file (a symbolic link, FIFO, "\
           b"device or directory is never written to)" in done.stdout
    assert b"< 221" in done.stdout
    assert done.returncode == 1


def test_record_option_that_cannot_write_is_status_1_not_usage(sandbox: Sandbox) -> None:
    done = smtpshell(["--record", "/dev/full", "127.0.0.1", str(sandbox.port)], SESSION)
    assert done.stdout.splitlines()[-1] == b"x cannot record to /dev/full: not a regular "\
        b"file (a symbolic link, FIFO, device or directory is never written to)"
    assert done.returncode == 1
    assert sandbox.messages() == []


@pytest.fixture
def transcript(sandbox: Sandbox, tmp_path: Path) -> Path:
    path = tmp_path / "t.smtp"
    done = smtpshell(["--record", str(path), "127.0.0.1", str(sandbox.port)], SESSION)
    assert done.returncode == 0, done.stdout
    return path


@pytest.mark.parametrize("command", ["show", "show-html", "replay"])
def test_show_and_replay_to_a_full_disk_are_one_line_not_a_traceback(
        command: str, transcript: Path, sandbox: Sandbox) -> None:
    args = {
        "show": ["show", str(transcript)],
        "show-html": ["show", "--html", "-", str(transcript)],
        "replay": ["replay", "--server", f"127.0.0.1:{sandbox.port}", str(transcript)],
    }[command]
    done = smtpshell(args, full_stdout=True)
    assert done.stderr == b"smtpshell: cannot write to standard output: "\
                          b"No space left on device\n"
    assert done.returncode == 1


def test_help_to_a_full_disk_is_not_a_success() -> None:
    done = smtpshell(["--help"], full_stdout=True)
    assert done.returncode == 1
    assert b"cannot write to standard output" in done.stderr


def test_a_record_command_that_cannot_write_makes_the_repl_exit_1(sandbox: Sandbox,
                                                                   tmp_path: Path) -> None:
    """In a terminal: `/record /dev/full`, then /quit: the shell ends with status 1."""
    from tests.ptyshell import PtyShell

    shell = PtyShell([sandbox.host, str(sandbox.port)],
                     {"XDG_DATA_HOME": str(tmp_path / "data"), "NO_COLOR": "1"})
    try:
        shell.expect(r"plain>")
        shell.sendline("/record /dev/full")
        shell.expect(r"cannot record to /dev/full: not a regular file")
        shell.sendline("/quit")
        shell.expect(r"221")
        assert shell.wait() == 1
    finally:
        shell.close()
