"""TLS options end to end through the command line against the sandbox."""

from __future__ import annotations

import io
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.sandbox import Sandbox
from smtpshell.status import ExitStatus
from smtpshell.tls import fingerprint
from smtpshell.tls.verify import cert_info
from tests.hostile.servers import implicit_tls, serve_in_thread


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
    sha = server_fingerprint(sandbox)
    lines = out.splitlines()
    assert lines[0].startswith("x unknown CA: 127.0.0.1's certificate is issued by OU=Testing CA")
    assert lines[0].endswith(", not in system CAs (the server sent no intermediate: if that"
                             " issuer is one, the server must send it)")
    assert lines[1:7] == [
        f"  certificate SHA-256 {sha}",
        "  ways forward: trust its issuer: --cafile FILE or --capath DIR with the CA certificate",
        f"                trust this very certificate: --pin {sha}",
        "                look without checking: -k (--insecure); nothing is then verified",
        f"  in this shell: /reconnect --pin {sha}",
        "             or: /reconnect --insecure",
    ]


def test_wrong_host_name_lists_the_names_the_certificate_has(sandbox: Sandbox) -> None:
    status, out = run(["--tls", "--cafile", str(sandbox.ca_file), "--sni", "mx.other.test",
                       "127.0.0.1", str(sandbox.tls_port)])
    assert status is ExitStatus.TLS
    first = out.splitlines()[0]
    assert first.startswith("x host name mismatch: the certificate is not valid for"
                            " 'mx.other.test'; it is for: ")
    assert "sandbox.smtpshell.test" in first.split("it is for: ")[1]
    assert "  ways forward: use a name it holds: --sni NAME (or that name as the host)" in out


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
    assert status is ExitStatus.USAGE
    assert out == "smtpshell: --min-version '1.7': unknown TLS version, use 1.0, 1.1, 1.2 or 1.3\n"


def test_insecure_connects_and_says_not_verified(sandbox: Sandbox) -> None:
    status, out = run(["--tls", "-k", "127.0.0.1", str(sandbox.tls_port)])
    assert status is ExitStatus.OK, out
    assert "NOT verified (--insecure): " in out


def test_show_certs_prints_the_chain(sandbox: Sandbox) -> None:
    """The sandbox sends its own certificate only: the CA comes from --cafile, and the
    report says so instead of listing it as sent."""
    status, out = run(["--tls", "--show-certs", "--cafile", str(sandbox.ca_file), "127.0.0.1",
                       str(sandbox.tls_port)])
    assert status is ExitStatus.OK, out
    lines = out.splitlines()
    at = lines.index("  sent     1 certificate, in the order the server sent them:")
    assert lines[at + 1].startswith("           [0] CN=sandbox.smtpshell.test")
    assert lines[at + 2] == ("  path     built by the verifier, from the server's certificate to"
                             f" a CA in CA file {sandbox.ca_file}:")
    assert lines[at + 3].startswith("           [0] CN=sandbox.smtpshell.test")
    assert lines[at + 3].endswith("[sent by the server]")
    assert lines[at + 4].startswith("           [1] OU=Testing CA")
    assert lines[at + 4].endswith(f"(self-signed)  [trusted CA from CA file {sandbox.ca_file},"
                                  " not sent]")


# ---- a chain with an intermediate: sent, omitted, found locally ---------------------------


@dataclass(frozen=True)
class ChainPki:
    root_file: str  # the root CA only
    root_and_inter_file: str  # the root and the intermediate
    full: ssl.SSLContext  # sends leaf and intermediate
    leaf_only: ssl.SSLContext  # omits its intermediate
    leaf_sha: str
    inter_subject: str
    root_subject: str


@pytest.fixture(scope="module")
def chain_pki(tmp_path_factory: pytest.TempPathFactory) -> ChainPki:
    d = tmp_path_factory.mktemp("chain")
    root = trustme.CA(organization_name="Root Org")
    inter = root.create_child_ca()
    leaf = inter.issue_cert("127.0.0.1", "localhost")
    root.cert_pem.write_to_path(str(d / "root.pem"))
    root.cert_pem.write_to_path(str(d / "both.pem"))
    inter.cert_pem.write_to_path(str(d / "both.pem"), append=True)
    full = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(full)
    leaf.cert_chain_pems[0].write_to_path(str(d / "leaf.pem"))
    leaf.private_key_pem.write_to_path(str(d / "leaf.key"))
    leaf_only = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf_only.load_cert_chain(str(d / "leaf.pem"), str(d / "leaf.key"))

    def der(pem: trustme.Blob) -> bytes:
        return ssl.PEM_cert_to_DER_cert(pem.bytes().decode())

    return ChainPki(
        root_file=str(d / "root.pem"),
        root_and_inter_file=str(d / "both.pem"),
        full=full,
        leaf_only=leaf_only,
        leaf_sha=fingerprint(der(leaf.cert_chain_pems[0])),
        inter_subject=cert_info(der(inter.cert_pem)).subject,
        root_subject=cert_info(der(root.cert_pem)).subject,
    )



def test_show_certs_lists_what_was_sent_apart_from_the_path(chain_pki: ChainPki) -> None:
    with serve_in_thread(implicit_tls(chain_pki.full, "chain.test")) as srv:
        status, out = run(["--tls", "--show-certs", "--cafile", chain_pki.root_file,
                           "127.0.0.1", str(srv.port)])
    assert status is ExitStatus.OK, out
    lines = out.splitlines()
    at = lines.index("  sent     2 certificates, in the order the server sent them:")
    inter, root = chain_pki.inter_subject, chain_pki.root_subject
    assert lines[at + 1].endswith(f"  (issued by {inter})")
    assert lines[at + 2] == f"           [1] {inter}  (issued by {root})"
    assert lines[at + 3].startswith("  path     built by the verifier")
    assert lines[at + 4].endswith(f"(issued by {inter})  [sent by the server]")
    assert lines[at + 5] == f"           [1] {inter}  (issued by {root})  [sent by the server]"
    assert lines[at + 6] == (f"           [2] {root}  (self-signed)  [trusted CA from CA file"
                             f" {chain_pki.root_file}, not sent]")
    assert "missing" not in out


def test_a_missing_intermediate_is_named_when_verification_fails(chain_pki: ChainPki) -> None:
    with serve_in_thread(implicit_tls(chain_pki.leaf_only, "chain.test")) as srv:
        status, out = run(["--tls", "--cafile", chain_pki.root_file, "127.0.0.1", str(srv.port)])
    assert status is ExitStatus.TLS
    lines = out.splitlines()
    assert lines[0] == (
        f"x unknown CA: 127.0.0.1's certificate is issued by {chain_pki.inter_subject}, not in"
        f" CA file {chain_pki.root_file} (the server sent no intermediate: if that issuer is"
        " one, the server must send it)"
    )
    assert lines[1] == f"  certificate SHA-256 {chain_pki.leaf_sha}"


def test_a_missing_intermediate_found_locally_is_named(chain_pki: ChainPki) -> None:
    """OpenSSL completes the chain from the local store: it verifies here, but the report
    says the server left its intermediate out (other clients will refuse it)."""
    with serve_in_thread(implicit_tls(chain_pki.leaf_only, "chain.test")) as srv:
        status, out = run(["--tls", "--show-certs", "--cafile", chain_pki.root_and_inter_file,
                           "127.0.0.1", str(srv.port)])
    assert status is ExitStatus.OK, out
    store = f"CA file {chain_pki.root_and_inter_file}"
    inter = chain_pki.inter_subject
    assert "  sent     1 certificate, in the order the server sent them:" in out
    assert (f"           [1] {inter}  (issued by {chain_pki.root_subject})  [NOT sent by the"
            f" server: found in {store}]") in out
    assert (f"  missing  intermediate {inter} was not sent by the server; clients without it"
            " in their store will refuse it") in out


def test_insecure_show_certs_says_no_path_was_built(chain_pki: ChainPki) -> None:
    with serve_in_thread(implicit_tls(chain_pki.leaf_only, "chain.test")) as srv:
        status, out = run(["--tls", "-k", "--show-certs", "127.0.0.1", str(srv.port)])
    assert status is ExitStatus.OK, out
    assert "  path     none built: the certificate was not verified against a CA" in out
    assert (f"           the issuer of [0], {chain_pki.inter_subject}, was not sent (fine for a"
            " root CA; an intermediate must be sent)") in out


# ---- option values that can never work: usage, exit 2, one line ---------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--tls", "--sni", "a..b"], "--sni 'a..b': not a host name (empty label: two dots in a row)"),
    (["--starttls", "--sni", "x" * 64 + ".test"],
     f"--sni '{'x' * 64}.test': not a host name (a label of 64 characters; at most 63)"),
    (["--tls", "--sni", "mx\x1b]0;pwned\x07.test"],
     "--sni 'mx\\x1b]0;pwned\\x07.test': not a host name (blank or control character)"),
    (["--tls", "--pin", "AA:BB"], "--pin 'AA:BB' is not a SHA-256 fingerprint (64 hex digits,"
                                  " colons allowed: the SHA-256 line of the TLS report)"),
    (["--tls", "--min-version", "1.3", "--max-version", "1.2"],
     "--min-version 1.3 is above --max-version 1.2"),
    (["--tls", "--ciphersuites", "TLS_AES_128_GCM_SHA256"],
     "--ciphersuites: Python's ssl module cannot choose TLS 1.3 cipher suites; use"
     " --max-version 1.2 with --ciphers instead"),
    (["--tls", "--ciphers", "NO-SUCH-CIPHER"], "--ciphers 'NO-SUCH-CIPHER': no cipher matches"),
    (["--tls", "--no-sni"], "--no-sni: Python checks the host name only through SNI; add"
                            " --insecure (or a pin) to connect without SNI"),
])
def test_tls_option_values_that_can_never_work_are_usage_errors(
    args: list[str], message: str
) -> None:
    """Refused before connecting (the port is closed: nothing would answer anyway)."""
    status, out = run([*args, "127.0.0.1", "1"])
    assert status is ExitStatus.USAGE
    assert out == f"smtpshell: {message}\n"


def test_replay_refuses_a_malformed_sni() -> None:
    status, out = run(["replay", "--sni", "a..b", "/nonexistent.smtp"])
    assert status is ExitStatus.USAGE
    assert out == ("smtpshell replay: --sni 'a..b': not a host name (empty label: two dots in a"
                   " row)\n")


def test_no_greeting_from_an_implicit_tls_port_suggests_tls(sandbox: Sandbox) -> None:
    """Plain text to a port that waits for a TLS ClientHello: nothing comes back."""
    status, out = run(["--reply-timeout", "0.5", "127.0.0.1", str(sandbox.tls_port)])
    assert status is ExitStatus.CONNECT
    assert out.splitlines()[-1] == (
        "* no greeting: if this port expects TLS from the first byte (implicit TLS, as on"
        " port 465), connect with --tls"
    )
