"""The pytest plugin, run by pytester: transcripts become items, failures show the diff."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SAMPLES = Path(__file__).parents[1] / "transcripts"


def copy_samples(pytester: pytest.Pytester, *names: str) -> Path:
    directory = pytester.path / "transcripts"
    directory.mkdir(exist_ok=True)
    for name in names:
        (directory / name).write_text((SAMPLES / name).read_text())
    return directory


def test_samples_pass_against_the_sandbox_it_starts(pytester: pytest.Pytester) -> None:
    copy_samples(pytester, "starttls.smtp", "auth-login.smtp", "implicit-tls.smtp")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*transcripts/starttls.smtp::starttls PASSED*"])


def test_failure_shows_the_transcript_diff(pytester: pytest.Pytester) -> None:
    directory = copy_samples(pytester, "plain.smtp")
    text = (directory / "plain.smtp").read_text().replace("<- 250 2.1.5 OK", "<- 551 5.1.6 moved")
    (directory / "broken.smtp").write_text(text)
    lineno = text.splitlines().index("<- 551 5.1.6 moved") + 1
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        f"*broken.smtp:{lineno}: expected reply code 551, got 250*",
        f"- {lineno:>4} <- 551 5.1.6 moved",
    ])


def test_ini_directory_and_xdist(pytester: pytest.Pytester) -> None:
    directory = pytester.path / "mail-tests"
    directory.mkdir()
    for name in ("plain.smtp", "multi-recipient.smtp", "rejected-recipient.smtp"):
        (directory / name).write_text((SAMPLES / name).read_text())
    pytester.makeini("[pytest]\nsmtpshell_transcripts = mail-tests\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=3)


def test_server_option_pointing_nowhere_is_a_clear_failure(pytester: pytest.Pytester) -> None:
    copy_samples(pytester, "plain.smtp")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           f"--smtpshell-server=127.0.0.1:{port}")
    result.assert_outcomes(errors=1)  # a setup problem: an error, as replay's exit status 2
    result.stdout.fnmatch_lines([f"*cannot connect: connection refused by 127.0.0.1:{port}*"])


# --------------------------------------------------------------------------- smtp_mock

GUIDE = Path(__file__).parents[1] / "docs" / "transcripts.md"
_EXAMPLE_RE = re.compile(r"^`(?P<name>[\w.]+)`:\n\n```\w+\n(?P<body>.*?)^```$",
                         re.MULTILINE | re.DOTALL)


def guide_files() -> dict[str, str]:
    """The files of the guide's "Test your SMTP client" tutorial, as the reader copies them."""
    return {m["name"]: m["body"] for m in _EXAMPLE_RE.finditer(GUIDE.read_text())}


def write_tutorial(pytester: pytest.Pytester, *names: str) -> dict[str, str]:
    files = guide_files()
    tests = pytester.path / "tests"
    tests.mkdir(exist_ok=True)
    for name in names:
        (tests / name).write_text(files[name])
    return files


def test_the_guides_smtplib_example_passes(pytester: pytest.Pytester) -> None:
    write_tutorial(pytester, "welcome.smtp", "test_welcome.py")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", "tests")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*tests/test_welcome.py::test_welcome_mail PASSED*"])


def test_the_guides_curl_example_passes_or_says_why_not(pytester: pytest.Pytester) -> None:
    write_tutorial(pytester, "welcome.smtp", "test_welcome_curl.py")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", "tests")
    if shutil.which("curl") is None:
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["*curl is not installed*"])
    else:
        result.assert_outcomes(passed=1)


def test_the_guides_swaks_example_passes_or_says_why_not(pytester: pytest.Pytester) -> None:
    write_tutorial(pytester, "welcome.smtp", "test_welcome_swaks.py")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", "tests")
    if shutil.which("swaks") is None:
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["*swaks is not installed*"])
    else:
        result.assert_outcomes(passed=1)


def test_a_wrong_password_gets_535_and_fails_the_test_without_showing_it(
    pytester: pytest.Pytester,
) -> None:
    files = write_tutorial(pytester, "welcome.smtp")
    (pytester.path / "tests" / "test_welcome.py").write_text(files["test_welcome.py"].replace(
        'send_welcome(server.host, server.port, server.cafile, "s3cret")',
        'with pytest.raises(smtplib.SMTPAuthenticationError) as refused:\n'
        '        send_welcome(server.host, server.port, server.cafile, "wrong-pw")\n'
        '    assert refused.value.smtp_code == 535').replace("import ssl\n",
                                                           "import ssl\n\nimport pytest\n"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(failed=1)
    lineno = files["welcome.smtp"].splitlines().index(
        "~> AUTH PLAIN {{secret:plain user=app password=$SMTPSHELL_APP_PASSWORD}}") + 1
    result.stdout.fnmatch_lines([
        "*smtp_mock: the client did not follow *welcome.smtp",
        "connection 1 from 127.0.0.1:*: MISMATCH",
        f"  *welcome.smtp:{lineno}: the password differs from $SMTPSHELL_APP_PASSWORD "
        "(answered 535)",
        "  +      ~> AUTH PLAIN <credential redacted>",
    ])
    out = result.stdout.str() + result.stderr.str()
    assert base64.b64encode(b"\0app\0wrong-pw").decode() not in out
    assert "wrong-pw" not in out.replace('"wrong-pw")', "")  # only the test's own source line


def test_every_difference_of_the_body_is_listed_in_one_run(pytester: pytest.Pytester) -> None:
    files = write_tutorial(pytester, "welcome.smtp", "test_welcome.py")
    test = pytester.path / "tests" / "test_welcome.py"
    test.write_text(files["test_welcome.py"].replace(
        'msg["Subject"] = "Welcome, Alice"', 'msg["Subject"] = "Welcome, Bob"').replace(
        "your account is ready.", "your account is ready!"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(failed=1)
    lines = files["welcome.smtp"].splitlines()
    subject, body = lines.index("~> Subject: Welcome, Alice") + 1, lines.index(
        "~> Hello Alice, your account is ready.") + 1
    result.stdout.fnmatch_lines([
        "connection 1 from 127.0.0.1:*: MISMATCH (2 differences)",
        f"  *welcome.smtp:{subject}: the client did not send this line (it sent these "
        "instead)",
        f"  - {subject:>4} ~> Subject: Welcome, Alice",
        "  +      ~> Subject: Welcome, Bob",
        f"  *welcome.smtp:{body}: the client did not send this line (it sent these instead)",
        f"  - {body:>4} ~> Hello Alice, your account is ready.",
        "  +      ~> Hello Alice, your account is ready!",
    ])
    guide = GUIDE.read_text()  # the guide shows this very report
    assert f"tests/welcome.smtp:{subject}: the client did not send this line" in guide
    assert f"tests/welcome.smtp:{body}: the client did not send this line" in guide


def test_no_client_at_all_fails_the_test(pytester: pytest.Pytester) -> None:
    write_tutorial(pytester, "welcome.smtp")
    (pytester.path / "tests" / "test_nothing.py").write_text(
        "def test_forgot_to_send(smtp_mock):\n"
        "    smtp_mock('welcome.smtp')\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*the client made 0 connection(s) to the mock, the test expects 1*"])


def test_another_recipient_is_answered_as_recorded_and_fails_the_test_with_the_report(
    pytester: pytest.Pytester,
) -> None:
    """The client's RCPT differs only in its address: the mock answers it as recorded (the
    client goes on and sends its message) and the test fails at its end with the diff."""
    files = write_tutorial(pytester, "welcome.smtp", "test_welcome.py")
    test = pytester.path / "tests" / "test_welcome.py"
    test.write_text(files["test_welcome.py"].replace('msg["To"] = "alice@example.org"',
                                                     'msg["To"] = "bob@example.org"'))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(failed=1)
    rcpt = files["welcome.smtp"].splitlines().index("~> RCPT TO:<alice@example.org>") + 1
    assert "SMTPRecipientsRefused" not in result.stdout.str()
    result.stdout.fnmatch_lines([
        "smtp_mock: the client did not follow *welcome.smtp",
        f"*welcome.smtp:{rcpt}: text differs",
        f"*- {rcpt:>4} ~> RCPT TO:<alice@example.org>",
        # the line as smtplib sent it: "rcpt TO:" before Python 3.13, "rcpt to:" from 3.13
        "*+      ~> rcpt [Tt][Oo]:<bob@example.org>",
    ])


def test_a_plain_transcript_has_no_cafile_and_a_bad_one_is_one_line(
    pytester: pytest.Pytester,
) -> None:
    copy_samples(pytester, "plain.smtp")
    (pytester.path / "bad.smtp").write_text("# smtpshell transcript v1\n\n-> EHLO x  ~nope\n")
    pytester.makepyfile(test_it="""
        import smtplib

        def test_plain(smtp_mock):
            server = smtp_mock("transcripts/plain.smtp")
            assert server.cafile is None and server.host == "127.0.0.1" and server.port > 0
            server.connections = 0  # nothing connects: nothing to fail

        def test_bad(smtp_mock):
            smtp_mock("bad.smtp")
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_it.py")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*smtp_mock: *bad.smtp:3: unknown annotation ~nope*"])
    assert "Traceback" not in result.stdout.str()


# --------------------------------------------------------------------------- collection


def test_a_transcript_named_on_the_command_line_outside_the_folder_is_collected(
    pytester: pytest.Pytester,
) -> None:
    other = pytester.path / "other"
    other.mkdir()
    (other / "x.smtp").write_text((SAMPLES / "plain.smtp").read_text())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", "other/x.smtp")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*other/x.smtp::x PASSED*"])


def test_pytest_transcripts_folder_without_an_ini_file_runs_them(
    pytester: pytest.Pytester,
) -> None:
    copy_samples(pytester, "plain.smtp", "starttls.smtp")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "transcripts/")
    result.assert_outcomes(passed=2)


def test_a_named_folder_whose_transcripts_are_not_collected_says_why(
    pytester: pytest.Pytester,
) -> None:
    folder = pytester.path / "mail-tests"
    folder.mkdir()
    (folder / "a.smtp").write_text((SAMPLES / "plain.smtp").read_text())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "mail-tests")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines([
        "smtpshell: 1 *.smtp file(s) found but not collected as transcript tests "
        "(e.g. *mail-tests/a.smtp): transcripts are collected under *transcripts (ini option "
        "smtpshell_transcripts) or when the file itself is named on the command line"])


def test_implicit_tls_with_the_fixtures_client_context(pytester: pytest.Pytester) -> None:
    (pytester.path / "implicit.smtp").write_text(
        "# smtpshell transcript v1\ntls: implicit\n\n"
        "== connect address=127.0.0.1:465 tls=implicit\n== tls via=implicit\n"
        "<~ 220 mock.smtpshell.test ESMTP\n~> EHLO {{host:client.test}}\n"
        "<~ 250 mock.smtpshell.test\n~> QUIT\n<~ 221 Bye\n== closed by=server\n")
    pytester.makepyfile(test_it="""
        import smtplib, ssl

        def test_smtp_ssl(smtp_mock):
            server = smtp_mock("implicit.smtp")
            with smtplib.SMTP_SSL(server.host, server.port, context=server.client_context(),
                                  local_hostname="client.test", timeout=30) as s:
                s.ehlo()
                assert isinstance(s.sock, ssl.SSLSocket)
            assert server.cafile.endswith("ca.pem")
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_it.py")
    result.assert_outcomes(passed=1)


MSMTP_TEST = '''
import subprocess

MESSAGE = ("To: alice@example.org\\nSubject: Welcome, Alice\\n\\n"
           "Hello Alice, your account is ready.\\n")


def test_welcome_mail_with_msmtp(smtp_mock, monkeypatch):
    monkeypatch.setenv("SMTPSHELL_APP_PASSWORD", "s3cret")
    server = smtp_mock("welcome.smtp")
    subprocess.run(
        ["msmtp", "--host=127.0.0.1", f"--port={server.port}", "--tls=on",
         "--tls-starttls=on", f"--tls-trust-file={server.cafile}", "--auth=plain",
         "--user=app", "--passwordeval=echo s3cret", "--from=app@example.org",
         "alice@example.org"],
        input=MESSAGE.encode(), check=True, timeout=60,
    )
'''


@pytest.mark.skipif(shutil.which("msmtp") is None, reason="msmtp is not installed")
def test_the_guides_transcript_serves_msmtp_unchanged(pytester: pytest.Pytester) -> None:
    """The guide says one transcript serves smtplib, curl, swaks and msmtp: msmtp too."""
    write_tutorial(pytester, "welcome.smtp")
    (pytester.path / "tests" / "test_msmtp.py").write_text(MSMTP_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(passed=1)


def test_smtp_mock_serves_a_transcript_with_two_connections_of_two_kinds(
    pytester: pytest.Pytester,
) -> None:
    """The recorded two-connection sample (STARTTLS, then implicit TLS): ``port`` for the
    first, ``tls_port`` for the second; a client that stops after the first fails the test
    with the count."""
    copy_samples(pytester, "two-connections.smtp")
    pytester.makepyfile(test_two="""
        import smtplib

        def first(server):
            with smtplib.SMTP(server.host, server.port,
                              local_hostname="client.smtpshell.test") as s:
                s.starttls(context=server.client_context())
                s.ehlo()
                s.mail("alice@example.org")
                s.rcpt("bob@example.org")
                s.rset()

        def test_both(smtp_mock):
            server = smtp_mock("transcripts/two-connections.smtp")
            assert server.tls_port not in (None, server.port)
            first(server)
            with smtplib.SMTP_SSL(server.host, server.tls_port,
                                  local_hostname="client.smtpshell.test",
                                  context=server.client_context()) as s:
                s.sendmail("alice@example.org", ["bob@example.org"],
                           "Subject: second connection\\r\\n\\r\\nHello again.\\r\\n")

        def test_only_the_first(smtp_mock):
            server = smtp_mock("transcripts/two-connections.smtp", timeout=2)
            first(server)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_two.py")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*the client made 1 connection(s) to the mock, the test expects 2*"])
