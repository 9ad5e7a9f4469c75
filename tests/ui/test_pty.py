"""The installed program in a real pseudo-terminal: prompt, STARTTLS, Ctrl-C, Ctrl-D."""

from __future__ import annotations

import re
from pathlib import Path

from smtpshell.sandbox import Sandbox
from tests.ptyshell import PtyShell


def test_demo_in_a_terminal(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "NO_COLOR": "1"}
    shell = PtyShell(["demo", "--dir", str(tmp_path / "sb")], env)
    try:
        shell.expect(r"220 sandbox\.smtpshell\.test")
        shell.expect(r"plain>")
        shell.sendline("EHLO pty.test")
        shell.expect(r"250 HELP")
        shell.sendline("STARTTLS")
        shell.expect(r"TLS established")
        shell.expect(r"TLS>")
        shell.send("half typed line")
        shell.expect("half typed line")
        shell.interrupt()  # Ctrl-C clears the line, the session stays
        shell.sendline("NOOP")
        shell.expect(r"250 OK[\s\S]*TLS>", timeout=20)
        assert "half typed line" not in shell.text.split("NOOP")[-1]
        shell.sendline("DATA")
        shell.expect(r"503 [\s\S]*TLS>")  # no MAIL yet: the server says so, the shell goes on
        shell.send("\x04")  # Ctrl-D: QUIT and leave
        assert shell.wait() == 0
        assert "221" in shell.text
    finally:
        shell.close()
    history = tmp_path / "data" / "smtpshell" / "history"
    assert "EHLO pty.test" in history.read_text()


def test_start_in_colour_greeting_then_prompt(sandbox: Sandbox, tmp_path: Path) -> None:
    """The real start: prompt_toolkit and pygments load in a thread while the connection
    opens; the greeting, highlighted, comes before the prompt and nothing goes wrong."""
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "NO_COLOR": None, "TERM": "xterm-256color"}
    shell = PtyShell([sandbox.host, str(sandbox.port)], env)
    try:
        shell.expect(r"plain>")
        text = shell.text
        assert text.index("220 sandbox.smtpshell.test") < text.index("plain>")
        assert re.search(rb"\x1b\[[0-9;]*m220\x1b\[", shell.buffer)  # the lexer's colours
        shell.sendline("EHLO pty.test")
        shell.expect(r"250 HELP[\s\S]*plain>")
        assert re.search(rb"\x1b\[[0-9;]*m250\x1b\[", shell.buffer)
        shell.send("\x04")
        assert shell.wait() == 0
        assert "221" in shell.text
        for trouble in ("internal error", "highlighting is off", "Traceback"):
            assert trouble not in shell.text
    finally:
        shell.close()


def test_password_asked_while_the_prompt_is_still_loading(sandbox: Sandbox, tmp_path: Path
                                                          ) -> None:
    """--auth at connect asks for the password before the prompt exists: the question's
    prompt_toolkit import meets the loading thread's, and the password is not echoed."""
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "NO_COLOR": "1"}
    shell = PtyShell(["--starttls", "--cafile", str(sandbox.ca_file), "--auth", "plain",
                      "--user", sandbox.user, sandbox.host, str(sandbox.port)], env)
    try:
        shell.expect(r"Password for demo:")
        shell.sendline(sandbox.password)
        shell.expect(r"authenticated as demo[\s\S]*TLS demo>")
        assert sandbox.password not in shell.text
        shell.send("\x04")
        assert shell.wait() == 0
    finally:
        shell.close()
    history = tmp_path / "data" / "smtpshell" / "history"
    assert sandbox.password not in (history.read_text() if history.exists() else "")
