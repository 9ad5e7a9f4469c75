"""TLS options end to end through the command line against the sandbox."""

from __future__ import annotations

import io
import ssl
from pathlib import Path

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.sandbox import Sandbox
from smtpshell.status import ExitStatus
from smtpshell.tls import fingerprint


def run(argv: list[str], stdin: str = "NOOP\n") -> tuple[ExitStatus, str]:
    out = io.StringIO()
    env = Environment(stdin=io.StringIO(stdin), stdout=out, stderr=out, environ={},
                      stdin_isatty=False, stdout_isatty=False, config_dir=Path("/nonexistent"),
                      data_dir=Path("/nonexistent"))
    return main(argv, env), out.getvalue()


def server_fingerprint(sb: Sandbox) -> str:
    assert sb.tls_port is not None
    pem = ssl.get_server_certificate(("127.0.0.1", sb.tls_port))
    return fingerprint(ssl.PEM_cert_to_DER_cert(pem))


def test_pin_accepts_the_right_certificate_without_a_ca(sandbox: Sandbox) -> None:
    pin = server_fingerprint(sandbox).replace(":", "").lower()
    status, out = run(["--tls", "--pin", pin, "127.0.0.1", str(sandbox.tls_port)])
    assert status is ExitStatus.OK, out
    assert "pinned" in out.lower()


def test_pin_mismatch_is_refused(sandbox: Sandbox) -> None:
    status, out = run(["--tls", "--pin", "00" * 32, "127.0.0.1", str(sandbox.tls_port)])
    assert status is ExitStatus.TLS, out
    assert out.count("matches no pin") == 1


def test_untrusted_by_default_then_named(sandbox: Sandbox) -> None:
    status, out = run(["--tls", "127.0.0.1", str(sandbox.tls_port)])
    assert status is ExitStatus.TLS
    assert "CA" in out or "issuer" in out


def test_wrong_host_name_is_named(sandbox: Sandbox) -> None:
    status, out = run(["--tls", "--cafile", str(sandbox.ca_file), "--sni", "mx.other.test",
                       "127.0.0.1", str(sandbox.tls_port)])
    assert status is ExitStatus.TLS
    assert "mx.other.test" in out


def test_version_bounds(sandbox: Sandbox) -> None:
    ca = ["--cafile", str(sandbox.ca_file)]
    status, out = run(["--starttls", *ca, "--max-version", "1.2", "127.0.0.1",
                       str(sandbox.port)])
    assert status is ExitStatus.OK, out
    assert "TLSv1.2" in out
    status, out = run(["--starttls", *ca, "--min-version", "1.3", "127.0.0.1",
                       str(sandbox.port)])
    assert status is ExitStatus.OK and "TLSv1.3" in out
    status, out = run(["--starttls", *ca, "--min-version", "1.7", "127.0.0.1",
                       str(sandbox.port)])
    assert status is ExitStatus.TLS and "1.7" in out


def test_insecure_connects_and_says_not_verified(sandbox: Sandbox) -> None:
    status, out = run(["--tls", "-k", "127.0.0.1", str(sandbox.tls_port)])
    assert status is ExitStatus.OK, out
    assert "NOT verified" in out or "not verified" in out


def test_show_certs_prints_the_chain(sandbox: Sandbox) -> None:
    status, out = run(["--tls", "--show-certs", "--cafile", str(sandbox.ca_file), "127.0.0.1",
                       str(sandbox.tls_port)])
    assert status is ExitStatus.OK, out
    assert "[0] CN=sandbox.smtpshell.test" in out
    assert "[1] OU=Testing CA" in out and "(self-signed)" in out
