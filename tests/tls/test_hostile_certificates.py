"""Certificates whose names are attacks on the terminal: nothing of them reaches it raw.

A server controls every string of its certificate: subject and issuer (CN, O), the
subjectAltName values.  These tests put terminal-control sequences there (OSC 0/2 title,
OSC 52 clipboard, CSI 2J, the alternate screen, the one-byte C1 CSI U+009B, the bidi
override U+202E) and drive the real front ends against a TLS server on 127.0.0.1: batch
mode through ``main()`` (the report, --show-certs, a refused certificate, a host-name
mismatch) and the REPL in a pty (``/tls`` and ``/tls chain``).
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.escapes import is_terminal_safe
from smtpshell.status import ExitStatus
from smtpshell.tls import TlsOptions, build_report, make_client_context, render_report
from tests.hostile.servers import implicit_tls, serve_in_thread
from tests.ptyshell import PtyShell

TITLE = "\x1b]0;owned title\x07"
TITLE2 = "\x1b]2;owned title\x1b\\"
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"
CLEAR = "\x1b[2J"
ALT_SCREEN = "\x1b[?1049h"
C1_CSI = "\x9b31m"
RLO = "\u202e"

RAW = [TITLE, TITLE2, CLIPBOARD, CLEAR, ALT_SCREEN, "\x9b", RLO, "\x07"]
"""What must never reach the terminal (the BEL too: it ends an OSC)."""


@dataclass(frozen=True)
class Hostile:
    root_file: str  # the evil CA, trusted by the client in the "verified" cases
    other_ca_file: str  # a CA that signed none of it
    server: ssl.SSLContext  # sends the leaf and the evil intermediate


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
    ])


def _cert(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
          signer: ec.EllipticCurvePrivateKey, *, ca: bool,
          sans: list[x509.GeneralName] | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        # Python 3.13's default context is strict (VERIFY_X509_STRICT): key identifiers
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                       critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Hostile:
    d = tmp_path_factory.mktemp("hostile-certs")
    root_key, inter_key, leaf_key, other_key = (ec.generate_private_key(ec.SECP256R1())
                                                for _ in range(4))
    root_name = _name(f"Root {TITLE}CA", f"Org{CLIPBOARD}{RLO}gro")
    inter_name = _name(f"Inter {ALT_SCREEN}mediate", f"Org {C1_CSI} {TITLE2}")
    root = _cert(root_name, root_name, root_key, root_key, ca=True)
    inter = _cert(inter_name, root_name, inter_key, root_key, ca=True)
    leaf = _cert(
        _name(f"mx{CLEAR}{TITLE}.test", f"Leaf{RLO}Org{C1_CSI}"), inter_name, leaf_key,
        inter_key, ca=False,
        sans=[
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName(f"a{CLEAR}b.test"),
            x509.DNSName(f"x{TITLE}y.test"),
            x509.DNSName(f"c{CLIPBOARD}d.test"),
        ],
    )
    other_name = _name("Other CA", "Other")
    other = _cert(other_name, other_name, other_key, other_key, ca=True)
    (d / "root.pem").write_bytes(_pem(root))
    (d / "other.pem").write_bytes(_pem(other))
    (d / "chain.pem").write_bytes(_pem(leaf, inter))
    (d / "leaf.key").write_bytes(leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(str(d / "chain.pem"), str(d / "leaf.key"))
    return Hostile(str(d / "root.pem"), str(d / "other.pem"), server)



@pytest.fixture
def port(hostile: Hostile) -> Iterator[int]:
    with serve_in_thread(implicit_tls(hostile.server)) as srv:
        yield srv.port


def run(argv: list[str], stdin: str = "NOOP\n/tls chain\n") -> tuple[ExitStatus, str]:
    out = io.StringIO()
    env = Environment(stdin=io.StringIO(stdin), stdout=out, stderr=out, environ={},
                      stdin_isatty=False, stdout_isatty=False, config_dir=Path("/nonexistent"),
                      data_dir=Path("/nonexistent"))
    return main(argv, env), out.getvalue()


def assert_safe(out: str) -> None:
    for raw in RAW:
        assert raw not in out, (raw, out)
    assert "\x1b" not in out and "\x9b" not in out  # no colour here: no ESC at all


def test_verified_report_chain_and_tls_chain(hostile: Hostile, port: int) -> None:
    """Verified: summaries come from what ssl decoded (no cryptography)."""
    status, out = run(["--tls", "--show-certs", "--cafile", hostile.root_file,
                       "127.0.0.1", str(port)])
    assert status is ExitStatus.OK, out
    assert_safe(out)
    # RFC 4514 escapes the ';' (and the '\\' of ESC \\); for_terminal the controls
    assert "subject  O=Leaf\\u202eOrg\\x9b31m,CN=mx\\x1b[2J\\x1b]0\\;owned title\\x07.test" in out
    assert "names    127.0.0.1, a\\x1b[2Jb.test, x\\x1b]0;owned title\\x07y.test," in out
    assert "[1] O=Org \\x9b31m \\x1b]2\\;owned title\\x1b\\\\,CN=Inter \\x1b[?1049hmediate" in out
    assert "CN=Root \\x1b]0\\;owned title\\x07CA" in out  # the trusted CA, on the path
    assert out.count("[trusted CA from CA file") == 2  # --show-certs, then /tls chain


def test_insecure_report_read_with_cryptography(hostile: Hostile, port: int) -> None:
    status, out = run(["--tls", "-k", "--show-certs", "127.0.0.1", str(port)])
    assert status is ExitStatus.OK, out
    assert_safe(out)
    assert "verify   NOT verified (--insecure): " in out
    assert "Org\\x1b]52\\;c\\;cm0gLXJmIH4=\\x07\\u202egro" in out  # the root, as issuer


def test_refused_certificate_error_line(hostile: Hostile, port: int) -> None:
    status, out = run(["--tls", "--cafile", hostile.other_ca_file, "127.0.0.1", str(port)])
    assert status is ExitStatus.TLS
    assert_safe(out)
    first = out.splitlines()[0]
    assert first.startswith("x unknown CA: the last of the 2 certificates 127.0.0.1 sent is"
                            " issued by O=Org\\x1b]52\\;c\\;cm0gLXJmIH4=\\x07\\u202egro,CN=Root")


def test_host_name_mismatch_lists_the_names_safely(hostile: Hostile, port: int) -> None:
    status, out = run(["--tls", "--cafile", hostile.root_file, "--sni", "wrong.test",
                       "127.0.0.1", str(port)])
    assert status is ExitStatus.TLS
    assert_safe(out)
    assert out.splitlines()[0] == (
        "x host name mismatch: the certificate is not valid for 'wrong.test'; it is for:"
        " 127.0.0.1, a\\x1b[2Jb.test, x\\x1b]0;owned title\\x07y.test,"
        " c\\x1b]52;c;cm0gLXJmIH4=\\x07d.test"
    )


def test_repl_tls_and_tls_chain_in_a_pty(hostile: Hostile, port: int, tmp_path: Path) -> None:
    """The REPL, colours on: only the program's own sequences reach the terminal."""
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path),
           "NO_COLOR": None, "TERM": "xterm-256color"}
    shell = PtyShell(["--tls", "--cafile", hostile.root_file, "127.0.0.1", str(port)], env)
    try:
        shell.expect(r"TLS>")
        shell.sendline("/tls chain")
        shell.expect(r"trusted CA from CA file[\s\S]*TLS>")  # the output, then the prompt
        shell.sendline("/quit")
        assert shell.wait() == 0
        raw = shell.buffer
        for bad in RAW:
            assert bad.encode() not in raw, bad
        assert "\x9b".encode() not in raw  # C1 CSI as UTF-8
        text = shell.text
        assert "mx\\x1b[2J\\x1b]0\\;owned title\\x07.test" in text
        assert "Inter \\x1b[?1049hmediate" in text
    finally:
        shell.close()


def test_the_report_itself_is_terminal_safe(hostile: Hostile, port: int) -> None:
    """tls.render_report escapes on its own (whoever prints it), and describe_failure too."""
    opts = TlsOptions(insecure=True)
    ctx = make_client_context(opts)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=20) as raw,
        ctx.wrap_socket(raw, server_hostname="wrong.test") as conn,
    ):
        report = build_report(conn, opts, "wrong.test")
        conn.sendall(b"QUIT\r\n")
    lines = render_report(report, show_chain=True)
    assert len(lines) > 12
    assert all(is_terminal_safe(line) for line in lines), lines
    assert any("x\\x1b]0;owned title\\x07y.test" in line for line in lines)
