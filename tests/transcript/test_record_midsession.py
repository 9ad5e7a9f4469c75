"""`/record` typed after connecting writes the session so far first, and the file replays
(issue 15 §1): against the real sandbox, through the shell's batch mode, replayed with
`smtpshell replay`."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.protocol.events import Closed, Reply
from smtpshell.protocol.sasl.redact import Outgoing
from smtpshell.sandbox import Sandbox
from smtpshell.session import Connected, Sent, Session, SessionEvent
from smtpshell.status import ExitStatus
from smtpshell.transcript import backlog as backlog_module
from smtpshell.transcript.backlog import Backlog, write_backlog
from smtpshell.transcript.model import ClientLine, Comment, Elided, Event
from smtpshell.transcript.recorder import Recorder
from smtpshell.transcript.syntax import load
from smtpshell.ui.core import Settings as ShellSettings
from smtpshell.ui.core import ShellCore
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
                "--secret-env", "PW_VAR", str(path)], environ=ENV if environ is None else environ)


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
    assert text.index("# recording started in the middle") < text.index("~> AUTH PLAIN") \
        < text.index("# /record typed here") < text.index("~> MAIL FROM:")
    assert "~> ..dot line" in text and "~> QUIT" in text
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
    backlog = Backlog(limit=24 * 1024, head=6 * 1024, body_limit=8 * 1024)
    sizes: list[int] = []

    async def run() -> None:
        session = Session(sandbox_options(sandbox), [backlog, lambda _: sizes.append(
            backlog.size)])
        await session.connect()
        await session.ehlo()
        big = [f"line {i:06} " + "y" * 50 for i in range(5000)]  # 300 KiB
        for n in range(40):
            await session.send_lines(["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>"])
            await session.send("DATA")
            lines = big if n == 0 else [f"Subject: {n}", "", "small"]
            await session.send_lines([*lines, "."])
        await session.send("QUIT")
        await session.close()

    asyncio.run(run())
    # after every event: the bound, plus one body on its way: its limit, or as much as is
    # read looking for the end of its header (this body has no blank line)
    body_bound = max(8 * 1024, backlog_module.HEADER_LIMIT) + 100
    assert len(sizes) > 5000 and max(sizes) <= 24 * 1024 + body_bound
    assert sizes[-1] <= 24 * 1024
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
        core = ShellCore(sandbox_options(sandbox), Renderer(out), settings=ShellSettings())
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


# ---- the backlog's bodies, against the recorder itself ------------------------------------

_LINES = st.sampled_from(["", ".", "..", "a", "Subject: x", "x" * 30, "..dot", ".x."])


def _entries(path: Path) -> list[object]:
    return [e for e in load(path).entries if not isinstance(e, Comment)]


def _events(lines: list[str], cuts: list[int], raw: bool, tls: bool) -> list[SessionEvent]:
    """A body as the session publishes it: one event per line, or raw chunks cut anywhere
    (each in DATA if it starts before the first "." line ends); then the server's reply."""
    events: list[SessionEvent] = [Connected(target="127.0.0.1:25", tls_mode="plain")]
    wire = [line.encode() + b"\r\n" for line in lines]
    first_dot = lines.index(".")
    if raw:
        data = b"".join(wire)
        end = len(b"".join(wire[:first_dot + 1]))
        points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
        for a, b in itertools.pairwise(points):
            chunk = data[a:b]
            events.append(Sent(out=Outgoing("", None, "user", chunk), data=chunk, tls=tls,
                               in_data=a < end))
    else:
        for i, (line, data) in enumerate(zip(lines, wire, strict=True)):
            events.append(Sent(out=Outgoing(line), data=data, tls=tls, in_data=i <= first_dot))
    events.append(Reply(code=250, lines=("250 OK",), raw=(b"250 OK",), tls=tls))
    return events


@settings(max_examples=40)
@given(lines=st.lists(_LINES, max_size=30), cuts=st.lists(st.integers(0, 2000), max_size=8),
       raw=st.booleans(), tls=st.booleans(), limit=st.integers(0, 200),
       stop=st.integers(0, 40))
def test_a_body_from_the_backlog_is_written_as_the_recorder_writes_it(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], cuts: list[int], raw: bool,
    tls: bool, limit: int, stop: int
) -> None:
    """Whatever the body and however it was cut into writes, a recorder fed from the
    backlog (at any point: /record in the middle of the body too) writes the same entries
    as one that was there from the start, with the same elision limit."""
    tmp = tmp_path_factory.mktemp("body")
    events = _events([*lines, "."], cuts, raw, tls)
    stop = min(stop, len(events))
    live = Recorder(tmp / "live.smtp", Recorder.header("127.0.0.1:25", "plain"),
                    elide_above=limit)
    backlog = Backlog(body_limit=limit)
    for event in events[:stop]:
        live(event)
        backlog(event)
    late = Recorder(tmp / "late.smtp", Recorder.header("127.0.0.1:25", "plain"),
                    elide_above=limit)
    write_backlog(backlog, late)
    for event in events[stop:]:
        live(event)
        late(event)
    live.close()
    late.close()
    late_entries, live_entries = _entries(tmp / "late.smtp"), _entries(tmp / "live.smtp")
    if not backlog.in_body or not any(isinstance(e, Elided) for e in late_entries):
        assert late_entries == live_entries
    else:  # /record during a long body: its first part is one elision, the rest live;
        # the same lines go out in replay
        assert _client_side(late_entries) == _client_side(live_entries)


def _client_side(entries: list[object]) -> tuple[int, int]:
    """Client lines and bytes (with CRLF), elided ones included."""
    lines = size = 0
    for entry in entries:
        if isinstance(entry, ClientLine):
            lines, size = lines + 1, size + len(entry.text.encode()) + 2
        elif isinstance(entry, Elided):
            lines, size = lines + entry.lines, size + entry.nbytes
    return lines, size


def test_a_line_without_end_is_hashed_as_it_comes(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    """A body line that never ends is not held in memory; cut off by the server, the file
    says so and its elision is still exact."""
    monkeypatch.setattr(backlog_module, "HEADER_LIMIT", 64)
    backlog = Backlog(body_limit=32)
    backlog(Connected(target="127.0.0.1:25", tls_mode="plain"))
    head = b"Subject: s\r\n\r\n" + b"one line\r\n" * 5
    for chunk in (head, b"z" * 1000, b"z" * 1000):
        backlog(Sent(out=Outgoing("", None, "user", chunk), data=chunk, tls=False,
                     in_data=True))
        assert backlog.size < 600
    backlog(Closed(reason="connection closed by server"))
    path = tmp_path / "cut.smtp"
    recorder = Recorder(path, Recorder.header("127.0.0.1:25", "plain"))
    write_backlog(backlog, recorder)
    recorder.close()
    entries = load(path).entries
    elided = next(e for e in entries if isinstance(e, Elided))
    assert elided.matches(["one line"] * 5)
    warning = next(e for e in entries if isinstance(e, Event) and e.kind == "warning")
    assert "unfinished line of 2000 bytes" in (warning.get("message") or "")


def test_big_message_file_sent_before_record(sandbox: Sandbox, tmp_path: Path) -> None:
    """`/send FILE` streams the message in chunks: the backlog keeps its digest, and the
    elision it writes is the file's, so replay can send the file itself (file=)."""
    eml = tmp_path / "big.eml"
    eml.write_bytes(b"Subject: big\r\n\r\n" + b"".join(
        b"line %06d " % i + b"z" * 50 + b"\r\n" for i in range(5000)))
    path = tmp_path / "send.smtp"
    status, out = shell(sandbox, "EHLO rec.test\nMAIL FROM:<a@example.org>\n"
                        f"RCPT TO:<b@example.org>\n/send {eml}\n/record {path}\nQUIT\n")
    assert status == 0, out
    text = path.read_text()
    assert len(text) < 8 * 1024 and "-> Subject: big" in text
    elided = next(e for e in load(path).entries if isinstance(e, Elided))
    assert elided.lines == 5000
    assert elided.matches(eml.read_text().splitlines()[2:])
    status, report = replay(sandbox, path)
    assert status == 0, report
    # with a file of the elided lines named on it, replay sends them, checked by digest
    (tmp_path / "body.txt").write_bytes(eml.read_bytes().split(b"\r\n\r\n", 1)[1])
    path.write_text(text.replace(" tls=no\n", " tls=no file=body.txt\n", 1))
    status, report = replay(sandbox, path)
    assert status == 0, report
    assert "filler" not in report
