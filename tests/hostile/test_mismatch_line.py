"""The host-name mismatch line quotes a certificate's names escaped exactly as the TLS
report does: a CR in a name is ``\\x0d`` there, never a space (issue 13)."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.hostile.servers import serve_in_thread

HOSTILE_NAME = "x\x1b[2J\x08\r\t.example"
SHOWN = "x\\x1b[2J\\x08\\x0d\\x09.example"


def write_pki(tmp: Path) -> ssl.SSLContext:
    """A CA (in ca.pem) and a leaf for 'good.example' and HOSTILE_NAME, not 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          # Python 3.13's default context has VERIFY_X509_STRICT: key identifiers, key usage
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("good.example"), x509.DNSName(HOSTILE_NAME)]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (tmp / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp / "leaf.pem").write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp / "leaf.pem")
    return ctx


def test_the_mismatch_line_escapes_a_cr_like_the_report(tmp_path: Path) -> None:
    ctx = write_pki(tmp_path)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await writer.start_tls(ctx)
        await reader.read(1)

    with serve_in_thread(handler) as srv:
        done = subprocess.run(
            [sys.executable, "-m", "smtpshell", "--tls", "--cafile", str(tmp_path / "ca.pem"),
             "127.0.0.1", str(srv.port)],
            input=b"QUIT\n", capture_output=True, timeout=60, check=False,
        )
    out = (done.stdout + done.stderr).decode("utf-8", "replace")
    mismatch = [line for line in out.splitlines() if "host name mismatch" in line]
    assert len(mismatch) == 1, out
    assert SHOWN in mismatch[0], mismatch[0]
    assert "good.example" in mismatch[0]
    assert not any(b in done.stdout + done.stderr for b in (b"\x1b", b"\x08", b"\r", b"\t"))
