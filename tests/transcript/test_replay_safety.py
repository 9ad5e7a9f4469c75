"""A transcript is a file from someone else: replaying it must not send any environment
variable it names anywhere, must fail fast and clearly when it is malformed, and its
numbers are plain decimal numbers (issue 15)."""

from __future__ import annotations

import io
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.transcript.mock import MockServer, serve_problem
from smtpshell.transcript.model import TranscriptError, parse_count, parse_decimal
from smtpshell.transcript.syntax import load, parse

pytest_plugins = ["pytester"]

SECRET = "s3cr3t-value-from-the-environment"


def cli(argv: list[str], environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=err, environ=environ or {},
                      stdin_isatty=False, stdout_isatty=False)
    return int(main(argv, env)), out.getvalue(), err.getvalue()


class _Recorder(socketserver.StreamRequestHandler):
    """A tiny SMTP server that answers 220, then 250 to every line, and keeps the lines."""

    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Listener)
        server.connections += 1
        self.wfile.write(b"220 hi\r\n")
        for line in self.rfile:
            server.received.append(line)
            self.wfile.write(b"221 bye\r\n" if line.upper().startswith(b"QUIT") else b"250 ok\r\n")
            if line.upper().startswith(b"QUIT"):
                return


class _Listener(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.connections = 0
        self.received: list[bytes] = []


@pytest.fixture
def listener() -> Iterator[_Listener]:
    server = _Listener()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def transcript(port: int, secret: str, *, connect: bool = True) -> str:
    head = ("# smtpshell transcript v2\n"
            f"target: 127.0.0.1:{port}\n"
            "recorded: 2026-11-30T05:31:34Z\n"
            "tool: smtpshell 0.1.0\n"
            "tls: plain\n\n")
    body = ("<- 220 hi\n"
            f"-> AUTH PLAIN {secret}\n"
            "<- 250 ok\n"
            "-> QUIT\n"
            "<- 221 bye\n")
    return head + (f"== connect address=127.0.0.1:{port} tls=plain\n" if connect else "") + body


@pytest.mark.parametrize(("secret", "variable"), [
    ("{{secret:raw value=$LEAKME}}", "LEAKME"),
    ("{{secret:plain user=x password=$AWS_SECRET_ACCESS_KEY}}", "AWS_SECRET_ACCESS_KEY"),
    ("{{secret:plain user=$LEAKME password=$SMTPSHELL_PASSWORD}}", "LEAKME"),
    ("{{secret:xoauth2 user=x token=$GITHUB_TOKEN}}", "GITHUB_TOKEN"),
])
def test_a_secret_from_another_variable_is_an_error_before_anything_is_sent(
    listener: _Listener, tmp_path: Path, secret: str, variable: str
) -> None:
    path = tmp_path / "evil.smtp"
    path.write_text(transcript(listener.server_address[1], secret))
    environ = {variable: SECRET, "SMTPSHELL_PASSWORD": "pw"}
    status, out, err = cli(["replay", str(path)], environ)
    assert status == 2, out + err
    assert listener.connections == 0 and listener.received == []
    errors = [line for line in out.splitlines() if line.startswith("ERROR")]
    assert errors == [f"ERROR {path}:9: the transcript reads a secret from the environment "
                      f"variable {variable}, which is not a SMTPSHELL_* variable; nothing was "
                      f"sent (allow it by name if you trust this transcript: --secret-env "
                      f"{variable})"], out
    assert SECRET not in out + err


def test_an_allowed_variable_is_used(listener: _Listener, tmp_path: Path) -> None:
    path = tmp_path / "ok.smtp"
    path.write_text(transcript(listener.server_address[1], "{{secret:raw value=$LEAKME}}"))
    status, out, err = cli(["replay", "--secret-env", "LEAKME", str(path)], {"LEAKME": SECRET})
    assert status == 0, out + err
    assert f"AUTH PLAIN {SECRET}\r\n".encode() in listener.received


def test_smtpshell_variables_are_allowed_without_asking(listener: _Listener,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "ok.smtp"
    path.write_text(transcript(listener.server_address[1],
                               "{{secret:raw value=$SMTPSHELL_OTHER}}"))
    status, out, err = cli(["replay", str(path)], {"SMTPSHELL_OTHER": SECRET})
    assert status == 0, out + err
    assert f"AUTH PLAIN {SECRET}\r\n".encode() in listener.received


def test_a_refused_transcript_does_not_stop_the_others(listener: _Listener,
                                                       tmp_path: Path) -> None:
    port = listener.server_address[1]
    (tmp_path / "a-evil.smtp").write_text(transcript(port, "{{secret:raw value=$HOME}}"))
    (tmp_path / "b-ok.smtp").write_text(transcript(port, "x"))
    status, out, err = cli(["replay", "-j", "1", str(tmp_path)], {"HOME": SECRET})
    assert status == 2, out + err
    assert "1 passed, 0 failed, 1 errors" in out
    assert listener.received == [b"AUTH PLAIN x\r\n", b"QUIT\r\n"]


def test_the_library_refuses_too(tmp_path: Path) -> None:
    """``replay()`` itself (the pytest plugin's path) checks before connecting."""
    import asyncio

    from smtpshell.transcript.replay import ReplayOptions, replay

    parsed = parse(transcript(1, "{{secret:raw value=$LEAKME}}"))
    result = asyncio.run(replay(parsed, ReplayOptions(env={"LEAKME": SECRET})))
    assert result.status == "error" and result.steps == 0
    assert "LEAKME" in result.message and result.lineno == 9


def test_the_mock_refuses_another_variable() -> None:
    parsed = parse(transcript(1, "{{secret:raw value=$LEAKME}}"))
    problem = serve_problem(parsed)
    assert problem is not None and "LEAKME" in problem
    with pytest.raises(ValueError, match="LEAKME"):
        MockServer(parsed, env={"LEAKME": SECRET})
    MockServer(parsed, env={"LEAKME": SECRET}, secret_env=["LEAKME"])  # allowed by name
    assert serve_problem(parsed, secret_env=["LEAKME"]) is None


def test_the_recorder_writes_only_the_variable_names_it_was_given() -> None:
    """The references the recorder writes name only its password/token variables; a user
    name or authzid that starts with ``$`` (replay would read it as a variable) is never
    written as a reference."""
    from smtpshell.protocol.sasl.mechanisms import Credential
    from smtpshell.transcript.recorder import secret_ref

    for kind in ("plain", "login:user", "login:password", "cram-md5", "xoauth2"):
        ref = secret_ref(Credential(kind, "alice", "bob"), "MY_PW", "MY_TOKEN")  # type: ignore[arg-type]
        assert ref is not None, kind
        names = {v for _, v in ref.params if v.startswith("$")}
        assert names <= {"$MY_PW", "$MY_TOKEN"}, (kind, ref)
        for user, authzid in (("$HOME", ""), ("alice", "$AWS_SECRET_ACCESS_KEY")):
            ref = secret_ref(Credential(kind, user, authzid), "MY_PW", "MY_TOKEN")  # type: ignore[arg-type]
            names = {v for _, v in ref.params if v.startswith("$")} if ref else set()
            assert names <= {"$MY_PW", "$MY_TOKEN"}, (kind, user, authzid, ref)


# --------------------------------------------------------------------------- no connect


def test_a_transcript_without_connect_is_an_error_at_once(listener: _Listener,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "noconnect.smtp"
    path.write_text(transcript(listener.server_address[1], "x", connect=False))
    status, out, err = cli(["replay", "--timeout", "30", str(path)])
    assert status == 2, out + err
    assert out.splitlines()[0] == (
        f"ERROR {path}:7: the transcript expects a reply before any connect event "
        "(a connection starts with a '== connect' line)"), out
    assert listener.connections == 0


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("text", ["1_0", " 12", "12 ", "+3", "-1", "\u0661\u0662", "1e3",
                                  "inf", "nan", "", "1.2.3", "0x10", "²"])
def test_numbers_are_plain_decimal(text: str) -> None:
    assert parse_count(text) is None
    if text not in ("1.2.3",):
        assert parse_decimal(text) is None


def test_plain_numbers_parse() -> None:
    assert parse_count("12") == 12 and parse_decimal("0.25") == 0.25
    assert parse_decimal("3") == 3.0 and parse_decimal(".5") == 0.5
    assert parse_decimal("1.2.3") is None


MOCK = ("# smtpshell transcript v2\ntarget: 127.0.0.1:25\ntls: plain\n\n"
        "== connect address=127.0.0.1:25 tls=plain\n{event}\n<- 220 hi\n-> QUIT\n<- 221 bye\n")


@pytest.mark.parametrize("event", [
    '== pause seconds=1_0', '== pause seconds=" 1"', '== pause seconds=\u0661',
    '== pause seconds=1e1', '== split after-bytes=1_0', '== drop after-bytes=" 3"',
    '== drop after-bytes=\u0663',
])
def test_script_event_numbers_must_be_plain(event: str) -> None:
    problem = serve_problem(parse(MOCK.format(event=event)))
    assert problem is not None and "is not a number" in problem, problem


@pytest.mark.parametrize("fields", ["lines=1_0 bytes=20", "lines=1 bytes=2_0",
                                    "lines=\u0661 bytes=20", 'lines=" 1" bytes=20'])
def test_elided_numbers_must_be_plain(fields: str) -> None:
    text = MOCK.format(event="-> DATA") + (
        f"== elided {fields} sha256={'0' * 64} tls=no\n")
    with pytest.raises(TranscriptError, match="elided"):
        parse(text)


@pytest.mark.parametrize("value", ["1_0", "\u0661\u0662", '" 12"'])
def test_elided_bytes_numbers_must_be_plain(value: str) -> None:
    text = MOCK.format(event="") + f"== elided bytes={value} sha256={'0' * 64} tls=no\n"
    with pytest.raises(TranscriptError, match="elided"):
        parse(text)


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize("jobs", ["0", "-3"])
def test_jobs_must_be_positive(tmp_path: Path, jobs: str) -> None:
    path = tmp_path / "t.smtp"
    path.write_text(transcript(1, "x"))
    status, out, err = cli(["replay", "-j", jobs, str(path)])
    assert status == 2
    assert out == ""
    assert err.strip().count("\n") == 0 and "-j" in err, err


def test_an_unreadable_transcript_names_its_file_once(tmp_path: Path) -> None:
    path = tmp_path / "x.smtp"
    path.write_text(transcript(1, "x").replace("tls: plain", "tls: none"))
    status, out, _ = cli(["replay", str(path)])
    assert status == 2
    first = out.splitlines()[0]
    assert first == f"ERROR {path}:5: tls: must be plain, starttls or implicit, not 'none'"
    assert load  # the same parser


def test_show_warns_once(tmp_path: Path) -> None:
    path = tmp_path / "ctl.smtp"
    path.write_text(transcript(1, "x").replace("<- 250 ok", "<- 250 ok\x01"))
    status, out, err = cli(["show", "--no-color", str(path)])
    assert status == 0
    assert err.count("raw control character") == 1, err
    assert "\x01" not in out


# --------------------------------------------------------------------------- pytest plugin


def test_the_plugin_refuses_another_variable_unless_the_ini_allows_it(
    pytester: pytest.Pytester, listener: _Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = pytester.path / "transcripts"
    directory.mkdir()
    (directory / "evil.smtp").write_text(transcript(listener.server_address[1],
                                                    "{{secret:raw value=$LEAKME}}"))
    monkeypatch.setenv("LEAKME", SECRET)
    server = f"127.0.0.1:{listener.server_address[1]}"
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--smtpshell-server",
                                           server)
    result.assert_outcomes(errors=1)  # a setup problem, as an unreadable transcript is
    result.stdout.fnmatch_lines(["*evil.smtp:9: the transcript reads a secret from the "
                                 "environment variable LEAKME*--smtpshell-secret-env*"])
    assert listener.connections == 0 and listener.received == []
    pytester.makeini("[pytest]\nsmtpshell_secret_env = LEAKME\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--smtpshell-server",
                                           server)
    result.assert_outcomes(passed=1)
    assert f"AUTH PLAIN {SECRET}\r\n".encode() in listener.received
