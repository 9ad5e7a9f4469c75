"""The README's demo block says what ``/auth`` does in ``smtpshell demo``: it asks for the
password (never sent for you), and ``demo-password`` logs in."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.ptyshell import PtyShell

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_auth_line() -> str:
    block = README.read_text(encoding="utf-8").split("```text\n", 1)[1].split("```", 1)[0]
    [line] = [line for line in block.splitlines() if line.startswith("/auth")]
    return line


def test_the_readme_names_the_prompt_and_the_password() -> None:
    line = readme_auth_line()
    assert '"Password for demo:"' in line and "demo-password" in line, line
    assert "done for you" not in line


@pytest.mark.skipif(sys.platform == "win32", reason="pty")
def test_the_demo_asks_what_the_readme_says(tmp_path: Path) -> None:
    prompt = re.search(r'"([^"]+)"', readme_auth_line())
    assert prompt is not None
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"), "NO_COLOR": "1"}
    shell = PtyShell(["demo", "--dir", str(tmp_path / "sb")], env)
    try:
        shell.expect(r"plain>")
        for line, answer in (("EHLO me", r"250 HELP"), ("STARTTLS", r"TLS established"),
                             ("EHLO me", r"250 HELP")):
            shell.sendline(line)
            shell.expect(answer)
        shell.sendline("/auth")
        shell.expect(re.escape(prompt[1]))
        shell.sendline("demo-password")
        shell.expect(r"authenticated as demo")
        shell.sendline("/quit")
        shell.wait()
    finally:
        shell.close()
    assert "demo-password" not in shell.text.rsplit("/auth", 1)[1]  # not echoed
