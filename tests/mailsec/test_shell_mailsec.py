"""The shell's /mx, /dane, /mta-sts and /explain DANE|TLSA|MTA-STS (issue 17): batch runs of
``main`` against the sandbox with the loopback DNS server, completion from the command
registry, a recorded ``--mx`` session that replays without DNS, and hostile DNS and policy
text reaching the screen escaped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from smtpshell.sandbox import Sandbox, SandboxConfig, SandboxThread
from smtpshell.status import ExitStatus
from smtpshell.ui.commands import unique_commands
from smtpshell.ui.completion_engine import CompletionState, complete
from tests.mailsec.dnsserver import DnsServer
from tests.mailsec.https_server import PolicyServer, Reply
from tests.mailsec.test_cli_mx import MX_HOST, run

DOMAIN = "example.test"


@pytest.fixture
def mx_sandbox(tmp_path: Path, dns_server: DnsServer) -> Iterator[Sandbox]:
    config = SandboxConfig(port=0, tls_port=None, hostname=MX_HOST, workdir=tmp_path / "sb")
    with SandboxThread(config) as sb:
        dns_server.add(f"""
            {DOMAIN}.                  MX   10 {MX_HOST}.
            {MX_HOST}.                 A    127.0.0.1
            _{sb.port}._tcp.{MX_HOST}. TLSA 3 1 1 {"ab" * 32}
        """)
        dns_server.signed.add(f"_{sb.port}._tcp.{MX_HOST}.")  # the TLSA only, not the MX
        yield sb


def test_mx_in_the_shell_looks_without_connecting_there(
        dns_server: DnsServer, mx_sandbox: Sandbox, tmp_path: Path) -> None:
    record = tmp_path / "s.smtp"
    status, out, err = run(
        ["127.0.0.1", str(mx_sandbox.port), "--resolver", dns_server.spec,
         "--record", str(record)],
        "/mx example.test\n/dane\n/mta-sts\nQUIT\n", tmp_path)
    assert status is ExitStatus.OK, err + out
    assert "MX for example.test: 1 host" in out
    assert f"TLSA _{mx_sandbox.port}._tcp.{MX_HOST}.: 1 record; DNSSEC-validated (AD)" in out
    # the MX answer was not signed: DANE cannot be used, and /mx says why
    assert "DANE cannot be used: the MX answer was not DNSSEC-validated (RFC 7672 §2.2)" in out
    # /dane repeats the results and gives the rules with their RFC sections
    assert out.count("1 record; DNSSEC-validated (AD)") == 2
    assert "the rules DANE for SMTP (RFC 7672) follows:" in out
    assert "(RFC 7672 §3.1.3)" in out
    assert "no MTA-STS results yet" in out and "(RFC 8461 §3.3)" in out
    # one connection only: to the address given, not to the MX host
    assert out.count("* connected to") == 1
    transcript = record.read_text()
    assert "== mx domain=example.test" in transcript
    assert f"== dane host={MX_HOST}" in transcript and "usable=no" in transcript


def test_mta_sts_in_the_shell_fetches_a_policy(dns_server: DnsServer, mx_sandbox: Sandbox,
                                               tmp_path: Path) -> None:
    ca = trustme.CA()
    dns_server.add(f'_mta-sts.{DOMAIN}. TXT "v=STSv1; id=1"\nmta-sts.{DOMAIN}. A 127.0.0.1')
    with PolicyServer(ca.issue_cert(f"mta-sts.{DOMAIN}")) as web:
        web.serve(Reply(body=b"version: STSv1\r\nmode: testing\r\nmx: *.example.test\r\n"
                             b"max_age: 600\r\n"))
        cafile = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(cafile))
        # no --mta-sts-url here: the policy host's address comes from the DNS server, and
        # the policy is fetched from port 443 of it: nothing listens there
        status, out, err = run(
            ["127.0.0.1", str(mx_sandbox.port), "--resolver", dns_server.spec,
             "--cafile", str(cafile)], "/mta-sts example.test\nQUIT\n", tmp_path)
    assert status is ExitStatus.OK, err + out
    assert "TXT _mta-sts.example.test: v=STSv1; id=1" in out
    assert "no usable policy" in out


@pytest.mark.parametrize("topic", ["TLSA", "DANE", "MTA-STS", "mta-sts"])
def test_explain_topics(topic: str, mx_sandbox: Sandbox, tmp_path: Path) -> None:
    status, out, err = run(["127.0.0.1", str(mx_sandbox.port)], f"/explain {topic}\nQUIT\n")
    assert status is ExitStatus.OK, err + out
    assert "RFC 7672" in out or "RFC 8461" in out
    assert "nothing known" not in out


def test_usage_of_the_commands(mx_sandbox: Sandbox) -> None:
    _, out, err = run(["127.0.0.1", str(mx_sandbox.port)],
                      "/mx\n/mx a b\n/mta-sts a b\nQUIT\n")
    assert "x usage: /mx DOMAIN" in out and "x usage: /mta-sts [DOMAIN]" in out
    assert "Traceback" not in out + err


def test_completion_knows_the_new_commands_and_topics() -> None:
    state = CompletionState(meta_commands=tuple(unique_commands()))
    assert {s.text for s in complete("/m", state)} >= {"/mx", "/mta-sts"}
    assert "/dane" in {s.text for s in complete("/da", state)}
    assert {s.text for s in complete("/explain ", state)} >= {"DANE", "MTA-STS", "TLSA"}
    assert {s.text for s in complete("/explain TL", state)} == {"TLSA"}


def test_a_recorded_mx_session_replays_without_dns(
        dns_server: DnsServer, mx_sandbox: Sandbox, tmp_path: Path) -> None:
    record = tmp_path / "mx.smtp"
    status, out, err = run(["--mx", DOMAIN, str(mx_sandbox.port), "--resolver", dns_server.spec,
                            "--ehlo", "client.test", "--record", str(record)],
                           "EHLO client.test\nQUIT\n", tmp_path)
    assert status is ExitStatus.OK, err + out
    text = record.read_text()
    assert text.index("== mx ") < text.index("== dane ") < text.index("== connect ")
    asked = len(dns_server.queries)
    status, out, err = run(["replay", "--server", f"127.0.0.1:{mx_sandbox.port}", str(record)])
    assert status is ExitStatus.OK, err + out
    assert len(dns_server.queries) == asked  # replay asked no DNS


def test_hostile_dns_and_policy_text_is_escaped(dns_server: DnsServer, mx_sandbox: Sandbox,
                                               tmp_path: Path) -> None:
    # an MX name with an ESC byte (DNS labels are bytes), a TXT id and policy text with
    # terminal controls and a bidi override
    dns_server.add(f"""
        evil.test.            MX  10 mx\\027]2\\007\\226\\128\\174.evil.test.
        evil.test.            MX  20 {MX_HOST}.
        _mta-sts.evil.test.   TXT "v=STSv1; id=1"
    """)
    ca = trustme.CA()
    with PolicyServer(ca.issue_cert("mta-sts.evil.test")) as web:
        # the policy parser refuses controls, and says so: the value reaches the screen
        web.serve(Reply(body="version: STSv1\r\nmode: enforce\r\nmx: mail.other.test\r\n"
                             "x-note: \u202e\x1b]52;c;Zm9v\x07\x9b2J\r\nmax_age: 600\r\n"
                        .encode()))
        cafile = tmp_path / "ca.pem"
        cafile.write_bytes(mx_sandbox.ca_file.read_bytes() + ca.cert_pem.bytes())
        status, out, err = run(["--mx", "evil.test", str(mx_sandbox.port), "--resolver",
                                dns_server.spec, "--mta-sts-url", web.url(), "--cafile",
                                str(cafile)], "QUIT\n", tmp_path)
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "\u202e" not in out + err and "\x9b" not in out + err
    assert "mx\\027]2\\007\\226\\128\\174.evil.test" in out  # as dig shows it
    assert "control character in the value of x-note ('\\u202e\\x1b]52;c;Zm9v\\x07\\x9b2J'" in out
    assert "MX for evil.test: 2 hosts" in out
    assert "Traceback" not in out + err
    assert status is ExitStatus.OK  # a policy that cannot be used enforces nothing (§5)


def test_the_repl_in_a_terminal_with_mx_and_dane(dns_server: DnsServer, tmp_path: Path) -> None:
    """The interactive shell (a pty): --mx --dane connects, the report shows the DANE line,
    /dane repeats it with the rules; the prompt names the domain asked for."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from tests.ptyshell import PtyShell

    config = SandboxConfig(port=0, tls_port=None, hostname=MX_HOST, workdir=tmp_path / "sb")
    with SandboxThread(config) as sb:
        leaf = x509.load_pem_x509_certificate((sb.workdir / "server.pem").read_bytes())
        spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        dns_server.add(f"""
            {DOMAIN}.                  MX   10 {MX_HOST}.
            {MX_HOST}.                 A    127.0.0.1
            _{sb.port}._tcp.{MX_HOST}. TLSA 3 1 1 {hashlib.sha256(spki).hexdigest()}
        """)
        dns_server.signed.update({f"{DOMAIN}.", f"{MX_HOST}.", f"_{sb.port}._tcp.{MX_HOST}."})
        env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path), "NO_COLOR": "1"}
        shell = PtyShell(["--mx", DOMAIN, str(sb.port), "--resolver", dns_server.spec,
                          "--dane", "--ehlo", "pty.test"], env)
        try:
            shell.expect(r"verified by DANE")
            shell.expect(r"tls>|TLS.*>")
            shell.sendline("/dane")
            shell.expect(r"the rules DANE for SMTP \(RFC 7672\) follows")
            shell.sendline("/mta-sts")
            shell.expect(r"no MTA-STS results yet")
            shell.sendline("/quit")
            assert shell.wait() == 0
        finally:
            shell.close()
    text = shell.text
    assert "DANE     verified" in text
    assert f"example.test:{sb.port} TLS>" in text
