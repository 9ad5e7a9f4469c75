"""`/record` typed after connecting writes the session so far first, and the file replays
(issue 15 §1): against the real sandbox, through the shell's batch mode, replayed with
`smtpshell replay`."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.sandbox import Sandbox
from smtpshell.session import Session
from smtpshell.status import ExitStatus
from smtpshell.transcript.backlog import Backlog, write_backlog
from smtpshell.transcript.model import Elided, Event
from smtpshell.transcript.recorder import Recorder
from smtpshell.transcript.syntax import load
from smtpshell.ui.core import Settings, ShellCore
from smtpshell.ui.render import Renderer
from tests.helpers import sandbox_options

PASSWORD = "demo-password"
ENV = {"SMTPSHELL_PASSWORD": PASSWORD}
MESSAGE = ("MAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\nDATA\nSubject: t\n\n"
           "body\n.dot line\n.\n")


def cli(argv: list[str], stdin: str = "",
        environ: dict[str, str] | None = None) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(stdin), stdout=out, stderr=err,
                      environ=environ or {}, stdin_isatty=False, stdout_isatty=False,
                      config_dir=Path("/nonexistent/config"),
                      data_dir=Path("/nonexistent/data"))
    return int(main(argv, env)), out.getvalue() + err.getvalue()


def shell(sb: Sandbox, stdin: str, *extra: str) -> tuple[int, str]:
    return cli(["--cafile", str(sb.ca_file), "--ehlo", "rec.test", *extra, "127.0.0.1",
                str(sb.port)], stdin, {**ENV, "PW_VAR": PASSWORD})


def replay(sb: Sandbox, path: Path, environ: dict[str, str] | None = None) -> tuple[int, str]:
    return cli(["replay", "--server", f"127.0.0.1:{sb.port}", "--cafile", str(sb.ca_file),
                str(path)], environ=ENV if environ is None else environ)


def secret_forms(user: str = "demo") -> list[str]:
    b = base64.b64encode
    return [PASSWORD, b(PASSWORD.encode()).decode(),
            b(f"\0{user}\0{PASSWORD}".encode()).decode()]


def plain_blob() -> str:
    return base64.b64encode(f"\0demo\0{PASSWORD}".encode()).decode()


def test_record_after_starttls_and_auth_replays(sandbox: Sandbox, tmp_path: Path) -> None:
    """EHLO, STARTTLS, AUTH typed by hand, then /record: the file starts at the connect
    and replays green (the old file started mid-session and replay refused it)."""
    path = tmp_path / "f.smtp"
    status, out = shell(sandbox, f"EHLO rec.test\nSTARTTLS\nEHLO rec.test\n"
                        f"AUTH PLAIN {plain_blob()}\n/record {path}\n{MESSAGE}QUIT\n")
    assert status == 0, out
    text = path.read_text()
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(("->", "<-", "==")))
    assert lines[first].startswith("== connect ")
    assert "== tls via=starttls" in text
    assert "~> AUTH PLAIN {{secret:plain user=demo password=$SMTPSHELL_PASSWORD}}" in text
    assert text.index("~> AUTH PLAIN") < text.index("# recording started in the middle") \
        < text.index("~> MAIL FROM:")
    assert "~> ..dot line" in text and "== closed by=server" in text
    for form in secret_forms():
        assert form not in text
    status, report = replay(sandbox, path)
    assert status == 0, report
    assert "1 passed, 0 failed" in report
    status, report = replay(sandbox, path, environ={"SMTPSHELL_PASSWORD": "wrong"})
    assert status == 1 and "535" in report  # the placeholder is really used


@pytest.mark.parametrize("mech", ["plain", "login", "cram-md5"])
def test_auth_command_before_record_never_reaches_the_file(
    sandbox: Sandbox, tmp_path: Path, mech: str
) -> None:
    path = tmp_path / f"{mech}.smtp"
    status, out = shell(sandbox, f"/auth {mech} demo\n/record {path}\n{MESSAGE}QUIT\n",
                        "--starttls", "--password-env", "PW_VAR")
    assert status == 0, out
    text = path.read_text()
    for form in secret_forms():
        assert form not in text
    assert "password=$PW_VAR" in text
    if mech == "cram-md5":
        assert re.search(r"<~ 334 \{\{b64:[A-Za-z0-9+/=]+\}\}", text)
    status, report = replay(sandbox, path, environ={"PW_VAR": PASSWORD})
    assert status == 0, report


def test_hand_typed_login_exchange_before_record(sandbox: Sandbox, tmp_path: Path) -> None:
    """AUTH LOGIN typed line by line: the user name and the password are answers that
    only the exchange tells apart; neither goes in clear to the file."""
    path = tmp_path / "login.smtp"
    b = base64.b64encode
    status, out = shell(sandbox, f"AUTH LOGIN\n{b(b'demo').decode()}\n"
                        f"{b(PASSWORD.encode()).decode()}\n/record {path}\nNOOP\nQUIT\n",
                        "--starttls")
    assert status == 0, out
    text = path.read_text()
    for form in secret_forms():
        assert form not in text
    assert "~> {{secret:login user=demo}}" in text
    assert "~> {{secret:login password=$SMTPSHELL_PASSWORD}}" in text
    status, report = replay(sandbox, path)
    assert status == 0, report


def test_big_message_before_record_is_elided_and_replays(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A 300 KiB message before /record: the file holds its header and one elision, and
    replay sends filler of the same size."""
    path = tmp_path / "big.smtp"
    body = "".join(f"line {i:06} " + "x" * 50 + "\n" for i in range(5000))  # ~305 KiB
    status, out = shell(sandbox, f"EHLO rec.test\nMAIL FROM:<a@example.org>\n"
                        f"RCPT TO:<b@example.org>\nDATA\nSubject: big\n\n{body}.\n"
                        f"/record {path}\nNOOP\nQUIT\n")
    assert status == 0, out
    text = path.read_text()
    assert len(text) < 8 * 1024
    assert "-> Subject: big" in text and "line 000001" not in text
    elided = [e for e in load(path).entries if isinstance(e, Elided)]
    assert len(elided) == 1 and elided[0].lines == 5000 and not elided[0].tls
    assert elided[0].nbytes == len(body.replace("\n", "\r\n").encode())
    assert "kept only the digest of this body" in text
    status, report = replay(sandbox, path)
    assert status == 0, report


def test_backlog_memory_is_bounded_and_the_file_says_what_was_dropped(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A real session: one 300 KiB message, then many small ones; the backlog stays under
    its bound (the body as a digest, the middle dropped), and the file says where."""
    backlog = Backlog(limit=24 * 1024, head=6 * 1024)

    async def run() -> int:
        session = Session(sandbox_options(sandbox), [backlog])
        await session.connect()
        await session.ehlo()
        peak = 0
        big = [f"line {i:06} " + "y" * 50 for i in range(5000)]
        for n in range(40):
            await session.send_lines(["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>"])
            await session.send("DATA")
            lines = big if n == 0 else [f"Subject: {n}", "", "small"]
            await session.send_lines([*lines, "."])
            peak = max(peak, backlog.size)
        await session.send("QUIT")
        await session.close()
        return peak

    peak = asyncio.run(run())
    assert peak <= 24 * 1024 + 4 * 1024  # the bound, and the unfinished line being read
    path = tmp_path / "long.smtp"
    recorder = Recorder(path, Recorder.header(f"127.0.0.1:{sandbox.port}", "plain"))
    assert write_backlog(backlog, recorder)
    recorder.close()
    transcript = load(path)
    events = [e for e in transcript.entries if isinstance(e, Event)]
    assert events[0].kind == "connect"
    warnings = [e for e in events if e.kind == "warning"]
    assert len(warnings) == 1 and "were dropped here" in (warnings[0].get("message") or "")
    assert next(e for e in transcript.entries if isinstance(e, Elided)).lines == 5000
    # whole transactions were dropped: what is left still replays
    status, report = replay(sandbox, path)
    assert status == 0, report


def test_reconnect_while_recording_writes_two_connections(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "two.smtp"
    status, out = shell(sandbox, f"EHLO rec.test\n/record {path}\nMAIL FROM:<a@example.org>\n"
                        "/reconnect\nEHLO again.test\nNOOP\nQUIT\n")
    assert status == 0, out
    text = path.read_text()
    assert text.count("== connect ") == 2
    assert text.index("-> EHLO rec.test") < text.index("-> MAIL FROM:") \
        < text.rindex("== connect ") < text.index("-> EHLO again.test")
    status, report = replay(sandbox, path)
    assert status == 0, report


def test_record_after_reconnect_starts_at_the_latest_connect(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "latest.smtp"
    status, out = shell(sandbox, "EHLO first.test\nMAIL FROM:<a@example.org>\n/reconnect\n"
                        f"EHLO second.test\n/record {path}\nNOOP\nQUIT\n")
    assert status == 0, out
    text = path.read_text()
    assert text.count("== connect ") == 1
    assert "first.test" not in text and "-> EHLO second.test" in text
    assert "# 1 earlier connection of this shell is not in this transcript" in text
    status, report = replay(sandbox, path)
    assert status == 0, report


def test_record_inside_a_message_body(sandbox: Sandbox, tmp_path: Path) -> None:
    """`/!record` halfway through a message: the first half is the backlog, the rest
    goes on live, and the body is whole in the file."""
    path = tmp_path / "half.smtp"
    status, out = shell(sandbox, "EHLO rec.test\nMAIL FROM:<a@example.org>\n"
                        "RCPT TO:<b@example.org>\nDATA\nSubject: half\n\none\n"
                        f"/!record {path}\ntwo\n.\nQUIT\n")
    assert status == 0, out
    lines = path.read_text().splitlines()
    body = lines[lines.index("-> Subject: half"):]
    assert [line for line in body if line.startswith("->")][:5] == [
        "-> Subject: half", "->", "-> one", "-> two", "-> ."]
    status, report = replay(sandbox, path)
    assert status == 0, report


def test_record_after_the_connection_ended_keeps_that_connection(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """In the shell (batch mode stops at a closed connection): /close, then /record
    writes the connection that ended, and a /reconnect after it is a second one."""
    path = tmp_path / "after.smtp"

    async def run() -> str:
        out = io.StringIO()
        core = ShellCore(sandbox_options(sandbox), Renderer(out), settings=Settings())
        assert await core.connect() is ExitStatus.OK
        for line in ("EHLO rec.test", "NOOP", "/close", f"/record {path}", "/reconnect",
                     "EHLO again.test", "QUIT"):
            await core.handle_line(line)
        await core.close()
        return out.getvalue()

    out = asyncio.run(run())
    assert "transcript written" in out, out
    transcript = load(path)
    kinds = [e.kind for e in transcript.entries if isinstance(e, Event)]
    # the client's own close is no event (the next connect closes it in replay)
    assert kinds == ["connect", "connect", "closed"]
    status, report = replay(sandbox, path)
    assert status == 0, report


def test_backlog_that_cannot_be_written_is_a_failed_exit(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The header fits, the backlog does not (a file size limit): the shell says so,
    does not say "transcript written", and exits 1 although every reply was good."""
    path = tmp_path / "small.smtp"
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (400, 400))\n"
        "from smtpshell.cli import main\n"
        "sys.exit(int(main(sys.argv[1:])))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "--cafile", str(sandbox.ca_file), "--ehlo", "rec.test",
         "127.0.0.1", str(sandbox.port)],
        input=f"EHLO rec.test\nNOOP\n/record {path}\nNOOP\nQUIT\n".encode(),
        capture_output=True, timeout=60, env={**os.environ, "NO_COLOR": "1"},
    )
    out = (done.stdout + done.stderr).decode()
    assert done.returncode == 1, out
    assert f"recording to {path} stopped" in out
    assert "transcript written" not in out
    assert "Traceback" not in out
    assert path.stat().st_size <= 400


def test_unwritable_path_is_a_failed_exit(sandbox: Sandbox, tmp_path: Path) -> None:
    status, out = shell(sandbox, f"EHLO rec.test\n/record {tmp_path}/no/such/dir.smtp\n"
                        "NOOP\nQUIT\n")
    assert status == 1, out
    assert "cannot record to" in out and "transcript written" not in out
