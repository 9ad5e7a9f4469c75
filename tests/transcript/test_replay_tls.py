"""Replay and TLS setup: a certificate the replay does not trust is an error with the way
forward (not a mismatch), and each transcript goes to the server for its kind of
connection (``--server`` for plain and STARTTLS, ``--tls-server`` for implicit TLS)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import trustme

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.sandbox import Sandbox

pytest_plugins = ["pytester"]

SAMPLES = Path(__file__).parents[2] / "transcripts"


def cli(argv: list[str], environ: dict[str, str] | None = None) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=err, environ=environ or {},
                      stdin_isatty=False, stdout_isatty=False)
    return int(main(argv, env)), out.getvalue() + err.getvalue()


@pytest.fixture
def other_ca(tmp_path: Path) -> Path:
    """A CA file of a CA that did not sign the sandbox's certificate."""
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


@pytest.mark.parametrize(("sample", "port"), [("starttls.smtp", "port"),
                                               ("implicit-tls.smtp", "tls_port")])
def test_an_untrusted_certificate_is_an_error_with_the_way_forward(
    sandbox: Sandbox, other_ca: Path, sample: str, port: str
) -> None:
    status, out = cli(["replay", "--server", f"127.0.0.1:{getattr(sandbox, port)}",
                       "--cafile", str(other_ca), str(SAMPLES / sample)])
    assert status == 2, out
    assert f"ERROR {SAMPLES / sample}" in out
    assert "0 passed, 0 failed, 1 errors" in out
    assert "certificate was refused" in out and "unknown CA" in out
    assert "--cafile FILE" in out and "--insecure" in out and "smtpshell sandbox" in out
    assert "not encrypted" not in out
    assert "certificate SHA-256 " in out
    # the ways forward work: the sandbox's CA, or no check at all
    status, out = cli(["replay", "--server", f"127.0.0.1:{getattr(sandbox, port)}",
                       "--cafile", str(sandbox.ca_file), str(SAMPLES / sample)])
    assert status == 0, out
    status, out = cli(["replay", "--server", f"127.0.0.1:{getattr(sandbox, port)}",
                       "--insecure", str(SAMPLES / sample)])
    # the recorded verified=yes is not checked by replay; the session itself passes
    assert status == 0, out


def test_untrusted_certificate_in_pytest_is_an_error_not_a_failure(
    pytester: pytest.Pytester, sandbox: Sandbox, other_ca: Path
) -> None:
    directory = pytester.path / "transcripts"
    directory.mkdir()
    shutil.copy(SAMPLES / "starttls.smtp", directory)
    shutil.copy(SAMPLES / "plain.smtp", directory)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--smtpshell-server=127.0.0.1:{sandbox.port}",
        f"--smtpshell-cafile={other_ca}")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*certificate was refused*unknown CA*",
        "*ways forward: trust the server's CA with --smtpshell-cafile FILE*",
    ])
    assert "not encrypted" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


MIXED = ("plain.smtp", "starttls.smtp", "implicit-tls.smtp")


def mixed_folder(base: Path) -> Path:
    base.mkdir(exist_ok=True)
    for name in MIXED:
        shutil.copy(SAMPLES / name, base)
    return base


def test_one_run_mixes_plain_starttls_and_implicit_tls(sandbox: Sandbox, tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path / "mixed")
    status, out = cli(["replay", "--server", f"127.0.0.1:{sandbox.port}", "--tls-server",
                       f"127.0.0.1:{sandbox.tls_port}", "--cafile", str(sandbox.ca_file),
                       str(folder)])
    assert status == 0, out
    assert "3 passed, 0 failed, 0 errors" in out
    # --tls-server alone: the others go to their recorded target (here: nothing listens)
    status, out = cli(["replay", "--tls-server", f"127.0.0.1:{sandbox.tls_port}", "--cafile",
                       str(sandbox.ca_file), str(folder / "implicit-tls.smtp")])
    assert status == 0, out
    # without --tls-server the implicit-TLS transcript meets a plain port: an error that
    # says which option is missing (it used to end at "wrong version number")
    status, out = cli(["replay", "--server", f"127.0.0.1:{sandbox.port}", "--cafile",
                       str(sandbox.ca_file), str(folder)])
    assert status == 2, out
    assert "2 passed, 0 failed, 1 errors" in out
    assert "implicit-tls.smtp: cannot connect" in out
    assert "give the server's implicit-TLS port with --tls-server HOST:PORT" in out


def test_a_malformed_tls_server_is_a_usage_error(tmp_path: Path) -> None:
    status, out = cli(["replay", "--tls-server", "nowhere", str(SAMPLES / "plain.smtp")])
    assert status == 2
    assert "--tls-server: not HOST:PORT" in out and "Traceback" not in out


def test_pytest_mixes_kinds_with_both_server_options(
    pytester: pytest.Pytester, sandbox: Sandbox
) -> None:
    mixed_folder(pytester.path / "transcripts")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--smtpshell-server=127.0.0.1:{sandbox.port}",
        f"--smtpshell-tls-server=127.0.0.1:{sandbox.tls_port}",
        f"--smtpshell-cafile={sandbox.ca_file}")
    result.assert_outcomes(passed=3)
    # the same from the ini file
    pytester.makeini(f"[pytest]\nsmtpshell_server = 127.0.0.1:{sandbox.port}\n"
                     f"smtpshell_tls_server = 127.0.0.1:{sandbox.tls_port}\n"
                     f"smtpshell_cafile = {sandbox.ca_file}\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_pytest_without_a_tls_server_says_which_option(
    pytester: pytest.Pytester, sandbox: Sandbox
) -> None:
    mixed_folder(pytester.path / "transcripts")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--smtpshell-server=127.0.0.1:{sandbox.port}",
        f"--smtpshell-cafile={sandbox.ca_file}")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*implicit-TLS port with --smtpshell-tls-server HOST:PORT*"])


def test_pytest_malformed_tls_server_is_one_usage_line(pytester: pytest.Pytester) -> None:
    mixed_folder(pytester.path / "transcripts")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--smtpshell-tls-server=nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--smtpshell-tls-server (or its ini option): not HOST:PORT*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
