"""Issue 13 §1 in a real terminal: whatever is typed, the history file keeps no credential.

The installed program runs in a pseudo-terminal with a fresh XDG_DATA_HOME against the
sandbox; each test types what a person would and then reads the history file and the
transcript the session recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from pathlib import Path

from smtpshell.sandbox import Sandbox
from tests.hostile.servers import serve_in_thread
from tests.ptyshell import PtyShell

SECRET = "s3cret!"
PLAIN = base64.b64encode(b"\0alice\0" + SECRET.encode()).decode()  # AGFsaWNlAHMzY3JldCE=


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def forms(user: str, password: str) -> list[str]:
    """Every way the password can be written down."""
    return [password, b64(password.encode()), b64(f"\0{user}\0{password}".encode())]


def start(sandbox: Sandbox, tmp_path: Path, *args: str) -> PtyShell:
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path / "home"),
           "NO_COLOR": "1", "SMTPSHELL_PASSWORD": None}
    shell = PtyShell([*args, sandbox.host, str(sandbox.port)], env)
    shell.expect(r"220 sandbox")
    return shell


def history(tmp_path: Path) -> str:
    return (tmp_path / "data" / "smtpshell" / "history").read_text()


def leave(shell: PtyShell) -> None:
    """Ctrl-D: the shell sends QUIT, shows the server's goodbye and exits with 0.  Waits
    for the goodbye on screen first (generously: a loaded machine is slow to shut down),
    then for the exit."""
    shell.send("\x04")
    shell.expect(r"221 Bye", timeout=60)  # the sandbox (aiosmtpd) says goodbye so
    assert shell.wait(timeout=60) == 0


def test_b64_and_unb64_reach_the_history_without_their_argument(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    shell = start(sandbox, tmp_path)
    try:
        shell.expect(r"plain>")
        shell.sendline(r"/b64 \0alice\0" + SECRET)  # what the README suggests
        shell.expect(re.escape(PLAIN))  # the command works: the screen shows its result
        shell.sendline("/b64 " + SECRET)
        shell.expect(re.escape(b64(SECRET.encode())))
        shell.sendline("/unb64 " + PLAIN)
        shell.expect(r"\\0alice\\0s3cret!")
        shell.sendline("  /b64  " + SECRET)  # sloppy spacing is still /b64: run, not sent
        # its result (the second base64 of the password on screen), then the next prompt
        shell.expect(r"czNjcmV0IQ==[\s\S]*czNjcmV0IQ==[\s\S]*plain>")
        leave(shell)
    finally:
        shell.close()
    kept = history(tmp_path)
    assert "/b64 {{secret:redacted}}" in kept and "/unb64 {{secret:redacted}}" in kept
    for form in forms("alice", SECRET):
        assert form not in kept, kept


def test_typed_auth_in_any_spelling_and_raw_auth_stay_out_of_history_and_transcript(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    record = tmp_path / "session.smtp"
    shell = start(sandbox, tmp_path, "--record", str(record))
    lines = [
        "EHLO pty.test",
        f" AUTH PLAIN {PLAIN}",  # a leading space
        f"auth plain {PLAIN}",  # lower case
        f"AUTH  PLAIN  {PLAIN}",  # two spaces
        rf"/raw AUTH PLAIN {PLAIN}\r\n",
    ]
    try:
        shell.expect(r"plain>")
        for line in [*lines, "NOOP"]:
            shell.sendline(line)
        shell.expect(r"250 OK[\s\S]*plain>")  # NOOP's reply: every line before it is done
        leave(shell)
    finally:
        shell.close()
    kept = history(tmp_path)
    transcript = record.read_text()
    for form in forms("alice", SECRET):
        assert form not in kept, kept
        assert form not in transcript, transcript
    # what was typed shows as typed; the decoded view under it is masked
    assert shell.text.count("<credential redacted: \\0alice\\0 + password>") >= 4
    assert "****" not in shell.text
    assert "{{secret:plain user=alice password=$SMTPSHELL_PASSWORD}}" in kept
    assert transcript.count("{{secret:plain user=alice password=$SMTPSHELL_PASSWORD}}") == 4


def test_hand_typed_cram_md5_leaves_no_dictionary_attack_behind(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    record = tmp_path / "cram.smtp"
    shell = start(sandbox, tmp_path, "--starttls", "--cafile", str(sandbox.ca_file),
                  "--record", str(record))
    try:
        shell.expect(r"TLS>")
        shell.sendline("AUTH CRAM-MD5")
        challenge = shell.expect(r"334 (\S+)")
        text = re.findall(r"334 (\S+)", challenge)[-1]
        digest = hmac.new(sandbox.password.encode(), base64.b64decode(text),
                          hashlib.md5).hexdigest()
        answer = b64(f"{sandbox.user} {digest}".encode())
        shell.sendline(answer)
        shell.expect(r"235 [\s\S]*TLS demo>")
        leave(shell)
    finally:
        shell.close()
    kept, transcript = history(tmp_path), record.read_text()
    for where in (kept, transcript):
        assert answer not in where and digest not in where
    assert "{{secret:cram-md5 user=demo password=$SMTPSHELL_PASSWORD}}" in transcript
    assert "{{secret:cram-md5 user=demo password=$SMTPSHELL_PASSWORD}}" in kept
    assert "<credential redacted: demo + HMAC-MD5 digest>" in shell.text  # the teaching line


def test_a_password_typed_after_a_refused_user_name_goes_nowhere(tmp_path: Path) -> None:
    """The REPL: ``AUTH LOGIN <user>`` answered 535, then the password typed as its answer:
    not sent, not on screen as sent, not in the transcript, not in the history."""
    from tests.test_credential_flow import PASS64, USER64, server

    handler, box = server(login_ir=b"535 5.7.8 no such user")
    record = tmp_path / "session.smtp"
    with serve_in_thread(handler) as srv:
        env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path / "home"),
               "NO_COLOR": "1", "SMTPSHELL_PASSWORD": None}
        shell = PtyShell(["--record", str(record), srv.host, str(srv.port)], env)
        try:
            shell.expect(r"plain>")
            shell.sendline("EHLO c")
            shell.expect(r"250 AUTH PLAIN LOGIN")
            shell.sendline(f"AUTH LOGIN {USER64}")
            shell.expect(r"535 5\.7\.8")
            shell.sendline(PASS64)
            shell.expect(r"not sent: it answers an AUTH exchange the server ended")
            shell.sendline("QUIT")
            shell.expect(r"221 bye[\s\S]*closed>")  # the next prompt
            shell.send("\x04")
            assert shell.wait(timeout=60) in (0, 2), shell.text
        finally:
            shell.close()
    assert PASS64.encode() not in bytes(box.received)
    # the prompt shows what was typed; no line shows it going to the server
    assert not re.search(r"(^|\n)\s*~?> " + re.escape(PASS64), shell.text), shell.text
    for kept in (history(tmp_path), record.read_text()):
        for form in forms("alice", SECRET):
            assert form not in kept, kept
