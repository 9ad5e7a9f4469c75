"""``smtpshell --mx DOMAIN --mta-sts``: the policy fetched over HTTPS from a loopback server
with a trustme certificate for mta-sts.example.test, applied to the connection to the
sandbox (issue 17, RFC 8461). ``--cafile`` holds both CAs: it applies to the policy fetch
as well as to the MX host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from smtpshell.sandbox import Sandbox, SandboxConfig, SandboxThread
from smtpshell.status import ExitStatus
from tests.mailsec.dnsserver import DnsServer
from tests.mailsec.https_server import PolicyServer, Reply
from tests.mailsec.test_cli_mx import MX_HOST, run

DOMAIN = "example.test"


def policy(mode: str, *patterns: str) -> bytes:
    mx = "".join(f"mx: {p}\r\n" for p in patterns)
    return f"version: STSv1\r\nmode: {mode}\r\n{mx}max_age: 86400\r\n".encode()


@pytest.fixture
def world(tmp_path: Path, dns_server: DnsServer) -> Iterator[tuple[Sandbox, PolicyServer, str]]:
    """The sandbox as mx.example.test, a policy server for mta-sts.example.test, DNS for
    both, and one CA file that trusts both."""
    ca = trustme.CA()
    config = SandboxConfig(port=0, tls_port=None, hostname=MX_HOST, workdir=tmp_path / "sb")
    with SandboxThread(config) as sb, PolicyServer(ca.issue_cert(f"mta-sts.{DOMAIN}")) as web:
        cafile = tmp_path / "both.pem"
        cafile.write_bytes(sb.ca_file.read_bytes() + ca.cert_pem.bytes())
        ca.cert_pem.write_to_path(str(tmp_path / "policy-ca.pem"))  # the policy server's only
        dns_server.add(f"""
            {DOMAIN}.          MX  10 {MX_HOST}.
            {MX_HOST}.         A   127.0.0.1
            _mta-sts.{DOMAIN}. TXT "v=STSv1; id=20261130"
        """)
        yield sb, web, str(cafile)


def sts_run(dns: DnsServer, sb: Sandbox, web: PolicyServer, cafile: str
            ) -> tuple[ExitStatus, str, str]:
    return run(["--mx", DOMAIN, str(sb.port), "--resolver", dns.spec, "--mta-sts-url",
                web.url(), "--cafile", cafile, "--ehlo", "client.test"],
               "MAIL FROM:<a@client.test>\nQUIT\n")


def test_enforce_with_a_matching_mx(dns_server: DnsServer,
                                    world: tuple[Sandbox, PolicyServer, str]) -> None:
    sb, web, cafile = world
    web.serve(Reply(body=policy("enforce", "*.example.test")))
    status, out, err = sts_run(dns_server, sb, web, cafile)
    assert status is ExitStatus.OK, err + out
    assert "v=STSv1; id=20261130" in out
    assert "MTA-STS  (enforce): satisfied" in out  # the TLS report's line
    assert f"{MX_HOST} matches policy pattern *.example.test" in out
    assert "~> MAIL FROM:<a@client.test>" in out
    assert web.requests[0].sni == f"mta-sts.{DOMAIN}"


def test_enforce_with_a_mx_the_policy_does_not_name(
        dns_server: DnsServer, world: tuple[Sandbox, PolicyServer, str]) -> None:
    sb, web, cafile = world
    web.serve(Reply(body=policy("enforce", "mail.other.test")))
    status, out, err = sts_run(dns_server, sb, web, cafile)
    assert status is ExitStatus.TLS, err + out
    assert "MTA-STS (enforce): VIOLATED (--mta-sts: the connection is not used)" in out
    assert "x TLS failed: MTA-STS: enforce mode" in out
    assert "~>" not in out  # nothing after the handshake


def test_testing_mode_reports_and_goes_on(dns_server: DnsServer,
                                          world: tuple[Sandbox, PolicyServer, str]) -> None:
    sb, web, cafile = world
    web.serve(Reply(body=policy("testing", "mail.other.test")))
    status, out, err = sts_run(dns_server, sb, web, cafile)
    assert status is ExitStatus.OK, err + out
    assert "(testing): would fail, reported only" in out
    assert "~> MAIL FROM:<a@client.test>" in out


def test_a_policy_that_cannot_be_used_is_said_and_nothing_is_enforced(
        dns_server: DnsServer, world: tuple[Sandbox, PolicyServer, str]) -> None:
    sb, web, cafile = world
    web.serve(Reply(body=policy("enforce", "mail.other.test"), content_type="text/html"))
    status, out, err = sts_run(dns_server, sb, web, cafile)
    assert status is ExitStatus.OK, err + out
    assert "text/html" in out
    assert "~> MAIL FROM:<a@client.test>" in out


def test_the_policy_fetch_uses_cafile(dns_server: DnsServer,
                                      world: tuple[Sandbox, PolicyServer, str]) -> None:
    sb, web, _ = world
    web.serve(Reply(body=policy("enforce", "*.example.test")))
    # only the sandbox CA: the MX verifies, the policy server's certificate does not
    status, out, err = sts_run(dns_server, sb, web, str(sb.ca_file))
    assert status is ExitStatus.OK, err + out
    assert web.handshake_failures >= 1 and not web.requests
    assert "no usable policy: certificate of the policy server mta-sts.example.test refused" in out
    assert "MTA-STS  nothing to enforce: no MTA-STS policy for example.test" in out


def test_dane_takes_precedence_over_mta_sts(dns_server: DnsServer, tmp_path: Path,
                                           world: tuple[Sandbox, PolicyServer, str]) -> None:
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    sb, web, _ = world
    web.serve(Reply(body=policy("enforce", MX_HOST)))
    leaf = x509.load_pem_x509_certificate((sb.workdir / "server.pem").read_bytes())
    spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    dns_server.add(f"_{sb.port}._tcp.{MX_HOST}. TLSA 3 1 1 {hashlib.sha256(spki).hexdigest()}")
    dns_server.signed.update({f"{DOMAIN}.", f"{MX_HOST}.", f"_{sb.port}._tcp.{MX_HOST}."})
    # the sandbox's CA is not trusted: PKIX fails, so MTA-STS alone would refuse the host
    status, out, err = run(["--mx", DOMAIN, str(sb.port), "--resolver", dns_server.spec,
                            "--dane", "--mta-sts-url", web.url(), "--cafile",
                            str(tmp_path / "policy-ca.pem")], "QUIT\n")
    assert status is ExitStatus.OK, err + out
    assert "verify   verified by DANE" in out
    assert f"MTA-STS  not applied: DANE authenticated {MX_HOST} and takes precedence" in out
