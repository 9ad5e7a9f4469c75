"""Issue 15 §1 in a real terminal: `/record` after STARTTLS and a prompted `/auth` writes the
session so far (never the password) and the file replays against the sandbox."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.sandbox import Sandbox
from tests.ptyshell import PtyShell


def test_record_after_prompted_auth_in_the_repl(sandbox: Sandbox, tmp_path: Path) -> None:
    password = sandbox.password
    record = tmp_path / "mid.smtp"
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path / "home"),
           "NO_COLOR": "1", "SMTPSHELL_PASSWORD": None}
    shell = PtyShell(["--starttls", "--cafile", str(sandbox.ca_file), "--ehlo", "pty.test",
                      sandbox.host, str(sandbox.port)], env)
    try:
        shell.expect(r"TLS>")
        shell.sendline("/auth plain demo")
        shell.expect(r"Password for demo:")
        shell.sendline(password)  # typed at a prompt that does not echo
        shell.expect(r"235 [\s\S]*>")
        shell.sendline(f"/record {record}")
        shell.expect(r"recording to [\s\S]*>")
        for line in ("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA",
                     "Subject: mid", "", "hello", "."):
            shell.sendline(line)
        shell.expect(r"250 2\.0\.0 [\s\S]*>")
        shell.sendline("QUIT")
        shell.expect(r"221 Bye")
        shell.sendline("/quit")
        assert shell.wait(timeout=60) == 0
    finally:
        shell.close()
    text = record.read_text()
    history = (tmp_path / "data" / "smtpshell" / "history").read_text()
    b64 = base64.b64encode
    for form in (password, b64(password.encode()).decode(),
                 b64(f"\0demo\0{password}".encode()).decode()):
        assert form not in text
        assert form not in history
    assert text.index("== connect") < text.index("== tls via=starttls") \
        < text.index("~> AUTH PLAIN {{secret:plain user=demo") < text.index("# /record typed")
    out, err = io.StringIO(), io.StringIO()
    status = main(["replay", "--server", f"127.0.0.1:{sandbox.port}", "--cafile",
                   str(sandbox.ca_file), str(record)],
                  Environment(stdin=io.StringIO(), stdout=out, stderr=err,
                              environ={"SMTPSHELL_PASSWORD": password}, stdin_isatty=False,
                              stdout_isatty=False, config_dir=tmp_path / "c",
                              data_dir=tmp_path / "d"))
    assert int(status) == 0, out.getvalue() + err.getvalue()
