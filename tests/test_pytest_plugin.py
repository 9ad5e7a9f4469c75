"""The pytest plugin, run by pytester: transcripts become items, failures show the diff."""

from __future__ import annotations

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
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*cannot connect: connection refused by 127.0.0.1:{port}*"])
