"""The second round of MX / DANE fixes (issue 17): a host whose TLSA lookup failed is not
connected to under ``--dane``; ``--mx`` with ``--unix``; thousands of MX hosts in a few
lines; TC over TCP; a reply for another question; hostile names shown as ``dig`` shows them.

Real runs of ``main`` against the sandbox and a listening socket that records what connects
to it; DNS only from the loopback server of ``conftest.py``."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtpshell.mailsec.dnsclient import DnsError, Resolver
from smtpshell.mailsec.mx import MAX_HOSTS, lookup_mx
from smtpshell.sandbox import Sandbox, SandboxConfig, SandboxThread
from smtpshell.status import ExitStatus
from tests.mailsec.dnsserver import DnsServer
from tests.mailsec.test_cli_dane import leaf, tlsa_311
from tests.mailsec.test_cli_mx import MX_HOST, run

DOMAIN = "d2.test"
SKIPPED = "mx1.d2.test"


class Recorder:
    """A listening TCP socket that counts the connections it accepts (and closes them)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)


@pytest.fixture
def recorder_factory() -> Iterator[list[Recorder]]:
    made: list[Recorder] = []
    yield made
    for recorder in made:
        recorder.close()


@pytest.fixture
def mx_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    config = SandboxConfig(port=0, tls_port=None, hostname=MX_HOST, workdir=tmp_path / "sb")
    with SandboxThread(config) as sb:
        yield sb


def _listen(made: list[Recorder], host: str, port: int = 0) -> Recorder:
    recorder = Recorder(host, port)
    made.append(recorder)
    return recorder


# ---- 1. --dane: a host whose TLSA lookup failed is not connected to -----------------------


@pytest.mark.parametrize("failure", ["servfail", "garbage"])
def test_dane_skips_the_host_whose_tlsa_lookup_failed_and_uses_the_next(
        dns_server: DnsServer, mx_sandbox: Sandbox, recorder_factory: list[Recorder],
        tmp_path: Path, failure: str) -> None:
    port = mx_sandbox.port
    recorder = _listen(recorder_factory, "127.0.0.2", port)  # mx1: same port, other address
    dns_server.add(f"""
        {DOMAIN}.                   MX   10 {SKIPPED}.
        {DOMAIN}.                   MX   20 {MX_HOST}.
        {SKIPPED}.                  A    127.0.0.2
        {MX_HOST}.                  A    127.0.0.1
        _{port}._tcp.{MX_HOST}.     TLSA {tlsa_311(leaf(mx_sandbox))}
    """)
    dns_server.signed.update({f"{DOMAIN}.", f"{SKIPPED}.", f"{MX_HOST}.",
                              f"_{port}._tcp.{MX_HOST}."})
    getattr(dns_server, failure).add(f"_{port}._tcp.{SKIPPED}.")
    status, out, err = run(["--mx", DOMAIN, str(port), "--resolver", dns_server.spec, "--dane",
                            "--ehlo", "client.test"], "QUIT\n", tmp_path)
    assert status is ExitStatus.OK, err + out
    assert recorder.accepted == 0  # mx1 was never connected to
    assert f"TLSA _{port}._tcp.{SKIPPED}: the lookup failed" in out
    assert "--dane: this host is not connected to" in out
    assert f"trying {SKIPPED}" not in out
    assert f"trying {MX_HOST} (preference 20)" in out
    assert "verify   verified by DANE" in out


def test_dane_with_no_host_left_is_a_tls_failure_before_any_connection(
        dns_server: DnsServer, recorder_factory: list[Recorder], tmp_path: Path) -> None:
    recorder = _listen(recorder_factory, "127.0.0.1")
    port = recorder.port
    dns_server.add(f"""
        {DOMAIN}.    MX 10 {SKIPPED}.
        {SKIPPED}.   A  127.0.0.1
    """)
    dns_server.signed.update({f"{DOMAIN}.", f"{SKIPPED}."})
    dns_server.servfail.add(f"_{port}._tcp.{SKIPPED}.")
    status, out, err = run(["--mx", DOMAIN, str(port), "--resolver", dns_server.spec, "--dane",
                            "--ehlo", "client.test"], "QUIT\n", tmp_path)
    assert status is ExitStatus.TLS, err + out
    assert recorder.accepted == 0
    said = (err + out).strip().splitlines()
    assert len(said) == 1, said
    assert "--dane" in said[0] and SKIPPED in said[0] and "SERVFAIL" in said[0]
    assert "no MX host" in said[0]


def test_without_dane_a_failed_tlsa_lookup_is_information_and_the_host_is_used(
        dns_server: DnsServer, mx_sandbox: Sandbox, tmp_path: Path) -> None:
    port = mx_sandbox.port
    dns_server.add(f"""
        {DOMAIN}.    MX 10 {MX_HOST}.
        {MX_HOST}.   A  127.0.0.1
    """)
    dns_server.servfail.add(f"_{port}._tcp.{MX_HOST}.")
    status, out, err = run(["--mx", DOMAIN, str(port), "--resolver", dns_server.spec,
                            "--cafile", str(mx_sandbox.ca_file), "--ehlo", "client.test"],
                           "EHLO client.test\nSTARTTLS\nQUIT\n", tmp_path)
    assert status is ExitStatus.OK, err + out
    assert "the lookup failed: SERVFAIL" in out and "(DANE status unknown; information only" in out
    assert "> EHLO client.test" in out


# ---- 2. --mx and --unix -------------------------------------------------------------------


def test_mx_with_unix_is_a_usage_error_and_looks_nothing_up(
        dns_server: DnsServer, tmp_path: Path) -> None:
    status, out, err = run(["--mx", DOMAIN, "--unix", str(tmp_path / "sock"), "--resolver",
                            dns_server.spec], "QUIT\n", tmp_path)
    assert status is ExitStatus.USAGE, err + out
    said = (err + out).strip().splitlines()
    assert len(said) == 1 and "--mx and --unix do not go together" in said[0], said
    assert dns_server.queries == []


def test_mx_with_a_host_argument_is_a_usage_error(dns_server: DnsServer,
                                                  tmp_path: Path) -> None:
    status, out, err = run(["--mx", DOMAIN, "mail.example.test", "--resolver",
                            dns_server.spec], "QUIT\n", tmp_path)
    assert status is ExitStatus.USAGE, err + out
    said = (err + out).strip().splitlines()
    assert len(said) == 1 and "--mx DOMAIN takes its hosts from DNS" in said[0], said
    assert dns_server.queries == []


# ---- 3. thousands of MX hosts -------------------------------------------------------------


def _many(dns_server: DnsServer, count: int) -> None:
    dns_server.add("\n".join(f"{DOMAIN}. MX {n} h{n}.{DOMAIN}." for n in range(count)))


def test_hundreds_of_mx_hosts_are_summed_up_in_one_line(dns_server: DnsServer) -> None:
    _many(dns_server, 300)  # none has an address
    result = lookup_mx(Resolver(dns_server.address, timeout=2), DOMAIN)
    lines = result.lines()
    assert len(lines) <= MAX_HOSTS + 3, lines[:20]
    assert "  … and 290 more MX hosts not looked up (only the first 10 are)" in lines
    assert sum(len(line) for line in lines) < 4000


def test_hundreds_of_mx_hosts_without_addresses_end_in_a_short_error_line(
        dns_server: DnsServer, tmp_path: Path) -> None:
    _many(dns_server, 300)
    record = tmp_path / "s.smtp"
    status, out, err = run(["--mx", DOMAIN, "--resolver", dns_server.spec, "--record",
                            str(record)], "QUIT\n", tmp_path)
    assert status is ExitStatus.CONNECT, err + out
    said = (err + out).strip().splitlines()
    assert len(said) == 1 and len(said[0]) < 2000, len(said[0])
    assert "and 290 more MX hosts not looked up (only the first 10 are)" in said[0]


def test_the_mx_event_of_hundreds_of_hosts_is_short(dns_server: DnsServer) -> None:
    from smtpshell.ui.commands.mailsec import mx_check

    _many(dns_server, 300)
    check = mx_check(lookup_mx(Resolver(dns_server.address, timeout=2), DOMAIN))
    hosts = dict(check.fields)["hosts"]
    assert len(hosts) < 2000
    assert hosts.endswith("… and 290 more")
    assert len(check.lines) <= MAX_HOSTS + 3


# ---- 4. TC over TCP -----------------------------------------------------------------------


def test_a_truncated_answer_over_tcp_is_an_error_not_no_records(
        dns_server: DnsServer) -> None:
    dns_server.add("h.example. A 127.0.0.1")
    dns_server.truncate_tcp.add("h.example.")
    with pytest.raises(DnsError) as caught:
        Resolver(dns_server.address, timeout=2).query("h.example.", "A")
    assert caught.value.kind == "malformed"
    assert "truncated (TC) over TCP" in str(caught.value)
    assert ("h.example.", "A", "tcp") in dns_server.queries


# ---- 5. a reply for another question ------------------------------------------------------


def test_a_reply_for_another_question_is_ignored_and_said(dns_server: DnsServer) -> None:
    dns_server.add("h.example. A 127.0.0.1")
    dns_server.misquestion.add("h.example.")
    with pytest.raises(DnsError) as caught:
        Resolver(dns_server.address, timeout=0.2).query("h.example.", "A")
    text = str(caught.value)
    assert caught.value.kind == "timeout"
    assert "did not answer within 0.2s" in text
    assert "answered for another question (forged.invalid. A)" in text
    assert "ignored" in text


# ---- 6. hostile names: DNS presentation format --------------------------------------------


def test_esc_in_an_mx_name_is_shown_as_dig_shows_it(dns_server: DnsServer,
                                                     tmp_path: Path) -> None:
    dns_server.add(f"{DOMAIN}. MX 10 mx\\027[31m.{DOMAIN}.")
    record = tmp_path / "s.smtp"
    status, out, err = run(["--mx", DOMAIN, "--resolver", dns_server.spec, "--record",
                            str(record)], "QUIT\n", tmp_path)
    assert status is ExitStatus.CONNECT, err + out
    assert "\x1b" not in out + err
    assert f"mx\\027[31m.{DOMAIN}" in out + err
    result = lookup_mx(Resolver(dns_server.address, timeout=2), DOMAIN)
    assert f"mx\\027[31m.{DOMAIN}" in "\n".join(result.lines())
    assert "\x1b" not in "\n".join(result.lines())
