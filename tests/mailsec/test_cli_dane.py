"""``smtpshell --mx DOMAIN --dane``: TLSA records computed from the sandbox's certificate,
served by the loopback DNS server with or without the AD bit (issue 17, RFC 7672).

Real runs of ``main`` against the sandbox; the MX host is mx.example.test, whose
certificate the sandbox's trustme CA issued. Without ``--cafile`` that CA is unknown, so a
connection that succeeds was authenticated by DANE, not by PKIX."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from smtpshell.sandbox import Sandbox, SandboxConfig, SandboxThread
from smtpshell.status import ExitStatus
from tests.mailsec.dnsserver import DnsServer
from tests.mailsec.test_cli_mx import MX_HOST, run

DOMAIN = "example.test"


def leaf(sb: Sandbox) -> x509.Certificate:
    """The sandbox's own certificate (the first in its PEM file)."""
    return x509.load_pem_x509_certificate((sb.workdir / "server.pem").read_bytes())


def tlsa_311(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return f"3 1 1 {hashlib.sha256(spki).hexdigest()}"


def tlsa_301(cert: x509.Certificate) -> str:
    return f"3 0 1 {hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()}"


def zone(dns: DnsServer, sb: Sandbox, tlsa: str, *, signed: bool = True) -> None:
    dns.add(f"""
        {DOMAIN}.                  MX   10 {MX_HOST}.
        {MX_HOST}.                 A    127.0.0.1
        _{sb.port}._tcp.{MX_HOST}. TLSA {tlsa}
    """)
    if signed:
        dns.signed.update({f"{DOMAIN}.", f"{MX_HOST}.", f"_{sb.port}._tcp.{MX_HOST}."})


@pytest.fixture
def mx_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    config = SandboxConfig(port=0, tls_port=None, hostname=MX_HOST, workdir=tmp_path / "sb")
    with SandboxThread(config) as sb:
        yield sb


def dane_run(dns: DnsServer, sb: Sandbox, tmp: Path, *extra: str
             ) -> tuple[ExitStatus, str, str, str]:
    record = tmp / "session.smtp"
    status, out, err = run(["--mx", DOMAIN, str(sb.port), "--resolver", dns.spec, "--dane",
                            "--ehlo", "client.test", "--record", str(record), *extra],
                           "MAIL FROM:<a@client.test>\nQUIT\n", tmp)
    return status, out, err, record.read_text() if record.exists() else ""


@pytest.mark.parametrize("form", [tlsa_311, tlsa_301])
def test_a_matching_dane_ee_record_authenticates_the_server(
        dns_server: DnsServer, mx_sandbox: Sandbox, tmp_path: Path, form: object) -> None:
    assert callable(form)
    zone(dns_server, mx_sandbox, form(leaf(mx_sandbox)))
    status, out, err, transcript = dane_run(dns_server, mx_sandbox, tmp_path)
    assert status is ExitStatus.OK, err + out
    assert "DANE applies: the certificate is checked against these records" in out
    assert "verify   verified by DANE: TLSA 3" in out
    assert "DANE     verified" in out
    assert "~> MAIL FROM:<a@client.test>" in out  # the connection is used
    assert f"== dane host={MX_HOST}" in transcript and "result=match" in transcript
    assert "== mx domain=example.test" in transcript


def test_a_wrong_hash_is_a_tls_failure_and_nothing_more_is_sent(
        dns_server: DnsServer, mx_sandbox: Sandbox, tmp_path: Path) -> None:
    zone(dns_server, mx_sandbox, "3 1 1 " + "00" * 32)
    status, out, err, transcript = dane_run(dns_server, mx_sandbox, tmp_path)
    assert status is ExitStatus.TLS, err + out
    assert "DANE: FAILED" in out and "(--dane: the connection is not used)" in out
    assert "x TLS failed: DANE: the server's certificate matches no usable TLSA record of" in out
    assert out.count("TLS failed") == 1
    assert "~>" not in out  # not a byte after the handshake: no EHLO, no MAIL, no QUIT
    assert "~>" not in transcript
    assert "result=fail" in transcript


def test_tlsa_not_validated_falls_back_to_pkix_and_says_why(
        dns_server: DnsServer, mx_sandbox: Sandbox, tmp_path: Path) -> None:
    zone(dns_server, mx_sandbox, "3 1 1 " + "00" * 32, signed=False)
    # not validated: the (wrong) record is not used; PKIX with the sandbox CA decides
    status, out, err, _ = dane_run(dns_server, mx_sandbox, tmp_path,
                                   "--cafile", str(mx_sandbox.ca_file))
    assert status is ExitStatus.OK, err + out
    assert "DANE     not used: not DNSSEC-validated (no AD bit)" in out
    assert f"verify   verified against CA file {mx_sandbox.ca_file} for host {MX_HOST}" in out
    # and without the CA, PKIX refuses: DANE did not take over (the same transcript file)
    status, out, err, _ = dane_run(dns_server, mx_sandbox, tmp_path, "--record-overwrite")
    assert status is ExitStatus.TLS
    assert "TLS failed" in out


def test_tlsa_of_a_host_whose_address_is_not_validated_is_not_used(
        dns_server: DnsServer, mx_sandbox: Sandbox, tmp_path: Path) -> None:
    zone(dns_server, mx_sandbox, "3 1 1 " + "00" * 32)
    dns_server.signed.discard(f"{MX_HOST}.")  # the A record is not validated (RFC 7672 §2.2)
    status, out, err, _ = dane_run(dns_server, mx_sandbox, tmp_path,
                                   "--cafile", str(mx_sandbox.ca_file))
    assert status is ExitStatus.OK, err + out
    assert ("DANE     not used: the host's address records were not DNSSEC-validated"
            " (RFC 7672 §2.2)") in out


def test_no_tlsa_records_means_pkix(dns_server: DnsServer, mx_sandbox: Sandbox,
                                    tmp_path: Path) -> None:
    dns_server.add(f"{DOMAIN}. MX 10 {MX_HOST}.\n{MX_HOST}. A 127.0.0.1")
    dns_server.signed.update({f"{DOMAIN}.", f"{MX_HOST}."})
    status, out, err, _ = dane_run(dns_server, mx_sandbox, tmp_path,
                                   "--cafile", str(mx_sandbox.ca_file))
    assert status is ExitStatus.OK, err + out
    assert "DANE     not used: no TLSA records" in out


def _expired_context(sandbox: Sandbox) -> object:
    def make(paths: object) -> ssl.SSLContext:
        ca = trustme.CA(organization_name="expired test")
        now = dt.datetime.now(dt.UTC)
        cert = ca.issue_cert(MX_HOST, common_name=MX_HOST,
                             not_before=now - dt.timedelta(days=60),
                             not_after=now - dt.timedelta(days=30))
        ca.cert_pem.write_to_path(str(paths.ca_file))  # type: ignore[attr-defined]
        cert.private_key_and_cert_chain_pem.write_to_path(
            str(paths.server_pem))  # type: ignore[attr-defined]
        os.chmod(paths.server_pem, 0o600)  # type: ignore[attr-defined]
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(paths.server_pem))  # type: ignore[attr-defined]
        return context
    return make


def _intermediate_context(sandbox: Sandbox) -> object:
    """The sandbox's certificate from an intermediate CA, which it sends with its own."""
    def make(paths: object) -> ssl.SSLContext:
        root = trustme.CA(organization_name="dane-ta root")
        intermediate = root.create_child_ca()
        cert = intermediate.issue_cert(MX_HOST, common_name=MX_HOST)
        root.cert_pem.write_to_path(str(paths.ca_file))  # type: ignore[attr-defined]
        cert.private_key_and_cert_chain_pem.write_to_path(
            str(paths.server_pem))  # type: ignore[attr-defined]
        os.chmod(paths.server_pem, 0o600)  # type: ignore[attr-defined]
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(paths.server_pem))  # type: ignore[attr-defined]
        return context
    return make


def test_dane_ta_names_the_intermediate_the_server_sends(
        dns_server: DnsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = SandboxConfig(port=0, tls_port=None, hostname=MX_HOST, workdir=tmp_path / "sb")
    thread = SandboxThread(config)
    monkeypatch.setattr(thread.sandbox, "_make_tls_context",
                        _intermediate_context(thread.sandbox))
    with thread as sb:
        pems = (sb.workdir / "server.pem").read_bytes()
        chain = x509.load_pem_x509_certificates(pems)
        assert len(chain) == 2  # the leaf, then the intermediate
        digest = hashlib.sha256(chain[1].public_bytes(Encoding.DER)).hexdigest()
        zone(dns_server, sb, f"2 0 1 {digest}")
        status, out, err, _ = dane_run(dns_server, sb, tmp_path)
        assert status is ExitStatus.OK, err + out
        assert "verify   verified by DANE: TLSA 2 0 1 (DANE-TA Cert SHA2-256)" in out
        assert "as trust anchor" in out and f"valid for {MX_HOST}" in out
        # the same anchor for another host name: the name check of DANE-TA refuses it
        dns_server.add(f"""
            other.test.                 MX   10 mail.other.test.
            mail.other.test.            A    127.0.0.1
            _{sb.port}._tcp.mail.other.test. TLSA 2 0 1 {digest}
        """)
        dns_server.signed.update({"other.test.", "mail.other.test.",
                                  f"_{sb.port}._tcp.mail.other.test."})
        status, out, err = run(["--mx", "other.test", str(sb.port), "--resolver",
                                dns_server.spec, "--dane"], "QUIT\n", tmp_path)
        assert status is ExitStatus.TLS, err + out
        assert "x TLS failed: DANE" in out


def test_an_expired_certificate_is_accepted_by_dane_ee(
        dns_server: DnsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = SandboxConfig(port=0, tls_port=None, hostname=MX_HOST, workdir=tmp_path / "sb")
    thread = SandboxThread(config)
    # the sandbox serves a certificate that expired 30 days ago (RFC 7672 §3.1.1)
    monkeypatch.setattr(thread.sandbox, "_make_tls_context", _expired_context(thread.sandbox))
    with thread as sb:
        zone(dns_server, sb, tlsa_311(leaf(sb)))
        status, out, err, _ = dane_run(dns_server, sb, tmp_path, "--cafile", str(sb.ca_file))
        assert status is ExitStatus.OK, err + out
        assert "EXPIRED 30 days ago" in out
        assert "verify   verified by DANE" in out
        # the same server without --dane: PKIX refuses the expired certificate
        status, out, err = run(["--mx", DOMAIN, str(sb.port), "--resolver", dns_server.spec,
                                "--cafile", str(sb.ca_file), "--starttls"])
        assert status is ExitStatus.TLS
        assert "expired" in out.lower()


def test_implicit_tls_checks_the_tlsa_of_its_own_port(dns_server: DnsServer,
                                                      tmp_path: Path) -> None:
    config = SandboxConfig(port=0, tls_port=0, hostname=MX_HOST, workdir=tmp_path / "sb")
    with SandboxThread(config) as sb:
        assert sb.tls_port is not None
        dns_server.add(f"""
            {DOMAIN}.                      MX   10 {MX_HOST}.
            {MX_HOST}.                     A    127.0.0.1
            _{sb.tls_port}._tcp.{MX_HOST}. TLSA 3 1 1 {"00" * 32}
        """)
        dns_server.signed.update({f"{DOMAIN}.", f"{MX_HOST}.", f"_{sb.tls_port}._tcp.{MX_HOST}."})
        status, out, err = run(["--mx", DOMAIN, str(sb.tls_port), "--tls", "--resolver",
                                dns_server.spec, "--dane"], "EHLO x\nQUIT\n", tmp_path)
        assert status is ExitStatus.TLS, err + out
        assert f"_{sb.tls_port}._tcp.{MX_HOST}." in out
        assert "x DANE: the server's certificate matches no usable TLSA record" in out
        assert "~>" not in out and "<~" not in out  # not even the greeting was read


def test_sni_given_by_hand_does_not_change_which_tlsa_records_apply(
        dns_server: DnsServer, mx_sandbox: Sandbox, tmp_path: Path) -> None:
    zone(dns_server, mx_sandbox, tlsa_311(leaf(mx_sandbox)))
    status, out, err, _ = dane_run(dns_server, mx_sandbox, tmp_path, "--sni", "other.test")
    assert status is ExitStatus.OK, err + out
    assert "SNI      other.test" in out
    assert "verify   verified by DANE" in out  # the records of mx.example.test, port and all
