"""Batch mode's exit status never hides a failure, and bad input never loses data.

Each test pipes a script into ``python -m smtpshell`` (a real pipe, real batch mode) or
runs ``run_batch`` with a line-by-line stdin, against the real sandbox, and checks the
status, the one line that says what happened, and what the sandbox stored.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smtpshell.sandbox import Sandbox
from smtpshell.session import ConnectOptions
from smtpshell.status import ExitStatus
from smtpshell.ui.batch import run_batch
from smtpshell.ui.core import ShellCore
from smtpshell.ui.render import Renderer

ENVELOPE = b"EHLO me\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\n"
CMDS = ENVELOPE + b"DATA\n"
END = b"\n.\nQUIT\n"
NOT_SENT = "the message was not sent (no final '.')"


def shell(port: int, script: bytes, cwd: Path) -> tuple[int, str]:
    """``printf script | smtpshell 127.0.0.1 PORT`` run in ``cwd``: the status and what
    it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "smtpshell", "--timeout", "10", "127.0.0.1", str(port)],
        input=script, capture_output=True, timeout=60, cwd=cwd,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.stderr == b"", done.stderr.decode()
    return done.returncode, done.stdout.decode()


def batch(port: int, script: bytes) -> tuple[ExitStatus, str]:
    """``run_batch`` in this process with a stdin that has no file descriptor (the
    line-by-line path): the status and the screen."""
    out = io.StringIO()

    async def main() -> ExitStatus:
        options = ConnectOptions(host="127.0.0.1", port=port, ehlo_name="b.test",
                                 reply_timeout=10)
        core = ShellCore(options, Renderer(out, echo=True, arrows=True))
        return await run_batch(core, io.StringIO(script.decode(), newline="\n"))

    return asyncio.run(main()), out.getvalue()


def errors(screen: str) -> list[str]:
    return [line for line in screen.splitlines() if line.startswith("x ")]


# ---- 1. stdin ends inside DATA ------------------------------------------------------------

@pytest.mark.parametrize("tail", [b"Subject: eof\n\nbody\n", b"Subject: eof\n\nbody"])
def test_input_that_ends_inside_data_is_a_data_failure(
    sandbox: Sandbox, tmp_path: Path, tail: bytes
) -> None:
    status, screen = shell(sandbox.port, CMDS + tail, tmp_path)
    assert status == ExitStatus.DATA, screen
    assert errors(screen) == [f"x input ended inside DATA: {NOT_SENT}"]
    assert sandbox.messages() == []  # no "." went out: nothing cut short was delivered
    assert "> ." not in screen.splitlines()


# ---- 2. leaving while a message is unfinished; /! lines in a piped message ---------------

@pytest.mark.parametrize("leave", [b"/!quit", b"  /!exit"])
def test_quit_inside_a_piped_message_is_a_data_failure(
    sandbox: Sandbox, tmp_path: Path, leave: bytes
) -> None:
    message = b"Subject: q\n\n" + b"".join(b"line %d\n" % i for i in range(30)) + leave
    status, screen = shell(sandbox.port, CMDS + message + END, tmp_path)
    assert status == ExitStatus.DATA, screen
    assert errors(screen) == [f"x the shell was left inside DATA: {NOT_SENT}"]
    assert sandbox.messages() == []


def test_a_connection_closed_inside_data_says_the_message_was_not_sent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    script = CMDS + b"Subject: c\n\nbody\n/!close" + END
    status, screen = shell(sandbox.port, script, tmp_path)
    assert status == ExitStatus.PROTOCOL, screen  # the "." after it could not be sent
    assert f"x the connection closed inside DATA: {NOT_SENT}" in errors(screen)
    assert sandbox.messages() == []


def test_a_slash_bang_line_in_a_piped_message_is_a_shell_command(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The documented rule: in a message typed or piped after DATA, a line starting with
    "/!" is a shell command (run, not sent); any other line is text."""
    record = tmp_path / "t.smtp"
    message = (b"Subject: m\n\n/not a command\n/!record " + str(record).encode()
               + b"\nafter\n")
    status, screen = shell(sandbox.port, CMDS + message + b".\nQUIT\n", tmp_path)
    assert status == ExitStatus.OK, screen
    assert sandbox.messages() == [b"Subject: m\r\n\r\n/not a command\r\nafter\r\n"]
    assert record.exists()
    # the screen shows only the first lines of a piped message: a command in it is said
    assert f"* a shell command in the message (run, not sent): /!record {record}" in screen


# ---- 3. /send and /bdat that send nothing -------------------------------------------------

def test_send_of_a_missing_file_is_a_failure(sandbox: Sandbox, tmp_path: Path) -> None:
    missing = tmp_path / "nonexist.eml"
    status, screen = batch(sandbox.port, ENVELOPE + f"/send {missing}\nQUIT\n".encode())
    assert status is ExitStatus.ERROR, screen
    assert errors(screen) == [f"x {missing}: no such file"]
    assert "< 221" in screen  # the script went on


def test_send_of_a_binary_file_is_a_failure(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "bin.eml"
    path.write_bytes(b"Subject: b\r\n\r\n\0\0\0\r\n")
    status, screen = batch(sandbox.port, ENVELOPE + f"/send {path}\nQUIT\n".encode())
    assert status is ExitStatus.ERROR, screen
    assert [e.split(": ")[0] for e in errors(screen)] == [f"x {path}"]
    assert sandbox.messages() == []


def test_bdat_without_chunking_is_a_failure(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(b"Subject: b\r\n\r\nbody\r\n")
    status, screen = batch(sandbox.port, ENVELOPE + f"/bdat {path}\nQUIT\n".encode())
    assert status is ExitStatus.ERROR, screen
    assert errors(screen) == ["x the server does not advertise CHUNKING (RFC 3030), so BDAT "
                              "is not available"]
    assert sandbox.messages() == []


def test_a_later_success_does_not_hide_a_failed_send(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(b"Subject: ok\r\n\r\nbody\r\n")
    script = f"/send {tmp_path / 'nope.eml'}\n/send {path}\nQUIT\n".encode()
    status, screen = batch(sandbox.port, ENVELOPE + script)
    assert status is ExitStatus.ERROR, screen
    assert sandbox.messages() == [b"Subject: ok\r\n\r\nbody\r\n"]


# ---- 4. a bare CR inside a piped line: the bytes /send sends ------------------------------

CR_MESSAGE = (b"Subject: cr\n\n" + b"".join(b"line %d\n" % i for i in range(20))
              + b"secret\rpart\n.dot\r.after-cr\nlast\n")


def test_a_bare_cr_in_a_piped_line_sends_what_send_sends(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "cr.eml"
    path.write_bytes(CR_MESSAGE)
    status, screen = batch(sandbox.port, ENVELOPE + f"/send {path}\nQUIT\n".encode())
    assert status is ExitStatus.OK, screen
    status, screen = shell(sandbox.port, CMDS + CR_MESSAGE + b".\nQUIT\n", tmp_path)
    assert status == ExitStatus.OK, screen
    assert "cannot contain CR" not in screen
    status, screen = batch(sandbox.port, CMDS + CR_MESSAGE + b".\nQUIT\n")
    assert status is ExitStatus.OK, screen
    sent, piped, by_line = sandbox.messages()
    assert piped == sent
    assert by_line == sent
    assert b"\r\nsecret\r\npart\r\n.dot\r\n.after-cr\r\nlast\r\n" in sent


# ---- 5. QUIT inside a /raw payload --------------------------------------------------------

@pytest.mark.parametrize("raw", [rb"/raw QUIT\r\n", rb"/raw NOOP\r\nQUIT\r\n"])
def test_quit_inside_raw_ends_the_session_normally(sandbox: Sandbox, raw: bytes) -> None:
    status, screen = batch(sandbox.port, b"EHLO me\n" + raw + b"\n")
    assert status is ExitStatus.OK, screen
    assert "< 221" in screen
    assert errors(screen) == []


# ---- 6. a message line over 1000 octets: the text-line limit -------------------------------

def test_a_long_message_line_gets_the_text_line_hint(sandbox: Sandbox) -> None:
    status, screen = batch(sandbox.port, CMDS + b"Subject: l\n\n" + b"x" * 1200 + END)
    assert status is ExitStatus.DATA, screen
    hints = [line for line in screen.splitlines() if line.strip().startswith("hint:")]
    assert len(hints) == 1
    assert "1000 octets" in hints[0] and "§4.5.3.1.6" in hints[0]
    assert "512" not in hints[0]



def test_a_command_line_with_a_cr_inside_is_not_sent_and_fails(sandbox: Sandbox) -> None:
    status, screen = batch(sandbox.port, b"EHLO me\nNOOP\rRSET\nQUIT\n")
    assert status is ExitStatus.ERROR, screen
    assert "! a line cannot contain CR or LF (use raw mode to send such bytes)" in screen
    assert "< 221" in screen  # the script went on
