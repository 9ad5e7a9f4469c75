"""Record sessions against the sandbox, replay them, break them, and read them back."""

from __future__ import annotations

import base64
import html.parser
import io
import os
import stat
from pathlib import Path

import pytest

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.sandbox import Sandbox, SandboxConfig, SandboxThread
from smtpshell.transcript.syntax import load

PASSWORD = "demo-password"
MESSAGE = "DATA\nSubject: t\n\nbody\n.dot line\n.\n"


def cli(argv: list[str], stdin: str = "", environ: dict[str, str] | None = None,
        tmp: Path = Path("/nonexistent")) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(stdin), stdout=out, stderr=err,
                      environ=environ or {}, stdin_isatty=False, stdout_isatty=False,
                      config_dir=tmp / "config", data_dir=tmp / "data")
    return int(main(argv, env)), out.getvalue(), err.getvalue()


def record(sb: Sandbox, path: Path, *extra: str, stdin: str) -> str:
    status, out, err = cli(
        ["--cafile", str(sb.ca_file), "--ehlo", "rec.test", "--record", str(path), *extra,
         "127.0.0.1", str(sb.port)],
        stdin, {"PW": PASSWORD},
    )
    assert status == 0, out + err
    return out


def replay(sb: Sandbox, *paths: Path, environ: dict[str, str] | None = None) -> tuple[int, str]:
    status, out, err = cli(["replay", "--server", f"127.0.0.1:{sb.port}", "--cafile",
                            str(sb.ca_file), "--secret-env", "PW", *map(str, paths)],
                           environ=environ)  # PW: the name these tests record with
    return status, out + err


def forms(password: str) -> list[str]:
    b = base64.b64encode
    return [password, b(password.encode()).decode(), b(f"\0demo\0{password}".encode()).decode()]


@pytest.mark.parametrize("mech", ["plain", "login", "cram-md5"])
def test_auth_session_records_no_secret_and_replays_from_env(
    sandbox: Sandbox, tmp_path: Path, mech: str
) -> None:
    path = tmp_path / f"{mech}.smtp"
    record(sandbox, path, "--starttls", "--auth", mech, "--user", "demo", "--password-env",
           "PW", stdin="MAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\n" + MESSAGE)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text()
    for form in forms(PASSWORD):
        assert form not in text
    assert "$PW" in text
    transcript = load(path)
    assert transcript.header.tls_mode == "starttls"
    assert any(getattr(e, "kind", None) == "tls" for e in transcript.entries)
    status, out = replay(sandbox, path, environ={"PW": PASSWORD})
    assert status == 0, out
    assert "1 passed, 0 failed" in out
    status, out = replay(sandbox, path, environ={"PW": "wrong"})
    assert status == 1 and "535" in out
    status, out = replay(sandbox, path, environ={})
    assert status == 2 and "PW is not set" in out


def test_changed_reply_fails_with_the_line_number(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "s.smtp"
    record(sandbox, path, stdin="EHLO x\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\n")
    lines = path.read_text().splitlines()
    lineno = next(i for i, line in enumerate(lines, 1) if line.startswith("<- 250 2.1.5"))
    lines[lineno - 1] = "<- 550 5.1.1 recorded as rejected"
    path.write_text("\n".join(lines) + "\n")
    status, out = replay(sandbox, path)
    assert status == 1
    assert f"s.smtp:{lineno}: expected reply code 550, got 250" in out
    assert f"- {lineno:>4} <- 550 5.1.1" in out


def test_downgrade_is_a_mismatch(tmp_path: Path) -> None:
    """A session recorded with STARTTLS, replayed against a server that does not offer it."""
    with SandboxThread(SandboxConfig(port=0, tls_port=None, workdir=tmp_path / "a")) as sb:
        path = tmp_path / "tls.smtp"
        record(sb, path, "--starttls", stdin="NOOP\n")
    with SandboxThread(SandboxConfig(port=0, tls_port=None, lmtp=True,
                                     workdir=tmp_path / "b")) as other:
        status, out = replay(other, path)
    assert status == 1, out


def test_implicit_tls_and_multiple_files_summary(sandbox: Sandbox, tmp_path: Path) -> None:
    assert sandbox.tls_port is not None
    one = tmp_path / "one.smtp"
    status, out, _ = cli(["--tls", "--cafile", str(sandbox.ca_file), "--record", str(one),
                          "127.0.0.1", str(sandbox.tls_port)], "EHLO x\nQUIT\n")
    assert status == 0, out
    assert load(one).header.tls_mode == "implicit"
    two = tmp_path / "two.smtp"
    record(sandbox, two, stdin="EHLO x\nQUIT\n")
    status, out, _ = cli(["replay", "--server", f"127.0.0.1:{sandbox.tls_port}", "--cafile",
                          str(sandbox.ca_file), str(one)])
    assert status == 0, out
    status, out, _ = cli(["replay", "--server", f"127.0.0.1:{sandbox.port}", "--cafile",
                          str(sandbox.ca_file), str(tmp_path)])
    # one.smtp needs the implicit-TLS port: TLS to a plain port cannot even connect
    assert "1 passed, 0 failed, 1 errors" in out
    assert "one.smtp: cannot connect" in out
    assert status == 2


def test_bad_transcripts_are_errors_with_line_numbers(tmp_path: Path) -> None:
    bad = tmp_path / "bad.smtp"
    bad.write_text("# smtpshell transcript v1\ntarget: 127.0.0.1:1\n\n-> EHLO x\n<~ 25\n")
    future = tmp_path / "future.smtp"
    future.write_text("# smtpshell transcript v9\n")
    nothing = tmp_path / "nothing.smtp"
    nothing.write_text("hello\n")
    late_flag = tmp_path / "late.smtp"
    late_flag.write_text("# smtpshell transcript v1\ntarget: 127.0.0.1:1\n\n-> EHLO x\n"
                         "<- 250-X  ~glob 250-X* ~optional\n<- 250 ok\n")
    for path in (bad, future, nothing, late_flag):
        status, out, err = cli(["replay", str(path)])
        assert status == 2, out
        assert "ERROR" in out
    assert "late.smtp:5: ~optional after the ~glob pattern" in out
    status, out, err = cli(["replay", str(tmp_path / "missing.smtp")])
    assert status == 2 and "no such file" in err


def test_record_meta_command_and_elided_body(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "mid.smtp"
    body = "".join(f"line {i} of a long body\n" for i in range(200))
    status, out, _ = cli(
        ["--cafile", str(sandbox.ca_file), "--elide-data", "1000", "127.0.0.1",
         str(sandbox.port)],
        f"EHLO x\n/record {path}\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\n"
        f"DATA\nSubject: big\n\n{body}.\n/record off\nQUIT\n",
    )
    assert status == 0, out
    text = path.read_text()
    # the session before /record comes first, from its connect (issue 15)
    assert "recording started in the middle" in text
    assert text.index("== connect") < text.index("-> EHLO x") < text.index(
        "# /record typed here")
    assert "-> Subject: big" in text and "== elided lines=200" in text
    assert "QUIT" not in text
    status, out = replay(sandbox, path)
    assert status == 0, out


def test_show_html_is_valid_and_contains_the_session(tmp_path: Path) -> None:
    sample = Path(__file__).parents[2] / "transcripts" / "auth-plain.smtp"
    out_file = tmp_path / "page.html"
    status, _, err = cli(["show", str(sample), "--html", str(out_file)])
    assert status == 0, err
    page = out_file.read_text()

    class Checker(html.parser.HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []
            self.text: list[str] = []

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag not in ("meta", "link", "br", "input"):
                self.stack.append(tag)

        def handle_endtag(self, tag: str) -> None:
            assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
            self.stack.pop()

        def handle_data(self, data: str) -> None:
            self.text.append(data)

    checker = Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    text = "".join(checker.text)
    assert "AUTH PLAIN" in text and "235 2.7.0" in text and "STARTTLS" in text
    status, out, _ = cli(["show", str(sample)])
    assert status == 0 and "AUTH PLAIN {{secret:plain" in out


def test_missing_secret_is_asked_for(sandbox: Sandbox, tmp_path: Path) -> None:
    from smtpshell.cli import replay as replay_command

    path = tmp_path / "ask.smtp"
    record(sandbox, path, "--starttls", "--auth", "plain", "--user", "demo", "--password-env",
           "PW", stdin="NOOP\n")
    asked: list[str] = []

    def ask(name: str) -> str:
        asked.append(name)
        return PASSWORD

    out, err = io.StringIO(), io.StringIO()
    args = replay_command.build_parser().parse_args(
        ["--server", f"127.0.0.1:{sandbox.port}", "--cafile", str(sandbox.ca_file),
         "--secret-env", "PW", str(path)])
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=err, environ={},
                      stdin_isatty=False, stdout_isatty=False)
    status = replay_command.run(args, env, ask)
    assert status == 0, out.getvalue()
    assert asked == ["PW"]


def test_unusable_ca_file_is_each_transcripts_error(sandbox: Sandbox, tmp_path: Path) -> None:
    """The replays share one SSL context; when it cannot be made, every TLS transcript
    says why (as it did when each made its own) and nothing crashes."""
    for name in ("a.smtp", "b.smtp"):
        record(sandbox, tmp_path / name, "--starttls", stdin="EHLO x\nQUIT\n")
    missing = tmp_path / "missing-ca.pem"
    status, out, err = cli(["replay", "--server", f"127.0.0.1:{sandbox.port}", "--cafile",
                            str(missing), str(tmp_path)])
    assert status == 2, out + err  # a setup problem, not a mismatch
    assert "0 passed, 0 failed, 2 errors" in out
    assert out.count(f"--cafile {missing}: no such file") == 2, out
    status, out = replay(sandbox, tmp_path)
    assert status == 0 and "2 passed, 0 failed, 0 errors" in out, out


def test_cram_md5_challenge_is_recorded_as_a_b64_placeholder_that_matches_any(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "cram.smtp"
    record(sandbox, path, "--starttls", "--auth", "cram-md5", "--user", "demo",
           "--password-env", "PW", stdin="NOOP\n")
    lines = path.read_text().splitlines()
    at = lines.index("~> AUTH CRAM-MD5")
    challenge = lines[at + 1]
    assert challenge.startswith("<~ 334 {{b64:") and challenge.endswith("}}"), challenge
    recorded = challenge.removeprefix("<~ 334 {{b64:").removesuffix("}}")
    assert base64.b64decode(recorded, validate=True).startswith(b"<")
    assert lines[at + 2].startswith("~> {{secret:cram-md5 user=demo password=$PW}}")
    # the live challenge is new on every run; even compared exactly, the placeholder matches it
    lines[at + 1] = challenge + "  ~exact"
    path.write_text("\n".join(lines) + "\n")
    status, out = replay(sandbox, path, environ={"PW": PASSWORD})
    assert status == 0, out
    assert "1 passed, 0 failed" in out
