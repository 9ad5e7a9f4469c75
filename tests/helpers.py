"""Small helpers shared by the tests: session options for the sandbox, a self-signed cert,
the command line run in-process."""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smtpshell.sandbox import Sandbox
from smtpshell.session import ConnectOptions
from smtpshell.tls import TlsOptions


def sandbox_options(sb: Sandbox, **kw: object) -> ConnectOptions:
    """Options for a session with the sandbox on 127.0.0.1, trusting its CA."""
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": sb.port,
        "tls": TlsOptions(cafile=str(sb.ca_file)),
        "ehlo_name": "test.client",
        "reply_timeout": 10.0,
    }
    base.update(kw)
    return ConnectOptions(**base)  # type: ignore[arg-type]


def write_self_signed(directory: Path, name: str) -> tuple[Path, Path, bytes]:
    """A self-signed certificate for ``name`` (a host name or an IP address), valid for 30
    days from yesterday: (certificate PEM path, key PEM path, certificate DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        san = x509.DNSName(name)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "self.crt", directory / "self.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile, cert.public_bytes(serialization.Encoding.DER)


def run_cli(argv: list[str], *, stdin: str = "", environ: dict[str, str] | None = None,
            tmp: Path = Path("/nonexistent")) -> tuple[int, str, str]:
    """``smtpshell ARGV`` run in-process (``cli.main``) with ``stdin`` piped in, no terminal
    and a config/data folder under ``tmp``: (exit status, stdout, stderr)."""
    from smtpshell.cli import main
    from smtpshell.context import Environment

    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(stdin), stdout=out, stderr=err,
                      environ=environ or {}, stdin_isatty=False, stdout_isatty=False,
                      config_dir=tmp / "config", data_dir=tmp / "data")
    return int(main(argv, env)), out.getvalue(), err.getvalue()
