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
