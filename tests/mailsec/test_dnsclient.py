"""The DNS client against a real DNS server on 127.0.0.1 (tests/mailsec/dnsserver.py)."""

from __future__ import annotations

import socket

import dns.flags
import pytest

from smtpshell.escapes import for_terminal
from smtpshell.mailsec.dnsclient import DnsError, Resolver, parse_resolver
from tests.mailsec.dnsserver import DnsServer


def resolver(server: DnsServer, timeout: float = 1.0) -> Resolver:
    return Resolver(server.address, timeout=timeout)


# ---- --resolver ADDR[:PORT] -------------------------------------------------------------


@pytest.mark.parametrize(("spec", "expected"), [
    ("127.0.0.1", ("127.0.0.1", 53)),
    ("127.0.0.1:5353", ("127.0.0.1", 5353)),
    (" 127.0.0.1:53 ", ("127.0.0.1", 53)),
    ("::1", ("::1", 53)),
    ("[::1]:5353", ("::1", 5353)),
    ("[::1]", ("::1", 53)),
    ("2001:db8::53", ("2001:db8::53", 53)),
])
def test_resolver_addresses(spec: str, expected: tuple[str, int]) -> None:
    assert parse_resolver(spec) == expected


@pytest.mark.parametrize(("spec", "says"), [
    ("localhost", "not a resolver address: 'localhost'"),
    ("", "not a resolver address: ''"),
    ("127.0.0.1:0", "not a resolver port: '0'"),
    ("127.0.0.1:65536", "not a resolver port: '65536'"),
    ("127.0.0.1:", "not a resolver port: ''"),
    ("127.0.0.1:\uff15\uff13", "not a resolver port"),  # fullwidth 5 3
    ("[::1", "no closing ']'"),
    ("[::1]x", "not a resolver address"),
    ("[127.0.0.1]:53", "brackets are for IPv6"),
    ("1.2.3.4.5", "not a resolver address"),
    ("\x1b[2J:53", "not a resolver address: '\\x1b[2J:53'"),
])
def test_junk_resolver_addresses_are_one_line(spec: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_resolver(spec)
    message = str(caught.value)
    assert says in message
    assert "\n" not in message and "\x1b" not in message


# ---- answers ------------------------------------------------------------------------------


def test_signed_answer_has_ad_and_the_query_asks_for_dnssec(dns_server: DnsServer) -> None:
    dns_server.add("signed.example. A 192.0.2.1\nplain.example. A 192.0.2.2")
    dns_server.signed.add("signed.example.")
    r = resolver(dns_server)
    signed = r.query("signed.example", "A")
    assert [x.address for x in signed.records] == ["192.0.2.1"]
    assert signed.validated and not signed.nxdomain and not signed.tcp
    assert signed.name == "signed.example."
    plain = r.query("plain.example.", "A")
    assert [x.address for x in plain.records] == ["192.0.2.2"]
    assert not plain.validated
    query = dns_server.messages[0]
    assert query.edns >= 0 and query.ednsflags & dns.flags.DO  # EDNS with DO: AD is meaningful
    assert query.flags & dns.flags.AD and query.flags & dns.flags.RD


def test_nxdomain_and_no_records_are_answers_not_errors(dns_server: DnsServer) -> None:
    dns_server.add("host.example. A 192.0.2.1")
    dns_server.signed.add("*.example.")
    r = resolver(dns_server)
    missing = r.query("nothere.example.", "A")
    assert missing.records == () and missing.nxdomain and missing.validated
    nodata = r.query("host.example.", "AAAA")
    assert nodata.records == () and not nodata.nxdomain


def test_cnames_are_followed(dns_server: DnsServer) -> None:
    dns_server.add("alias.example. CNAME real.example.\nreal.example. A 192.0.2.9")
    answer = resolver(dns_server).query("alias.example.", "A")
    assert [x.address for x in answer.records] == ["192.0.2.9"]
    assert answer.canonical == "real.example."


def test_truncated_udp_answer_is_asked_again_over_tcp(dns_server: DnsServer) -> None:
    dns_server.add("tc.example. TXT \"over tcp\"")
    dns_server.truncate.add("tc.example.")
    dns_server.signed.add("tc.example.")
    answer = resolver(dns_server).query("tc.example.", "TXT")
    assert [b"".join(x.strings) for x in answer.records] == [b"over tcp"]
    assert answer.tcp and answer.validated
    assert dns_server.queries == [("tc.example.", "TXT", "udp"), ("tc.example.", "TXT", "tcp")]


def test_an_answer_bigger_than_the_udp_buffer_comes_over_tcp(dns_server: DnsServer) -> None:
    dns_server.add("\n".join(f'big.example. TXT "{n:02d}{"x" * 200}"' for n in range(20)))
    answer = resolver(dns_server).query("big.example.", "TXT")
    assert len(answer.records) == 20 and answer.tcp


@pytest.mark.parametrize(("mark", "says"), [
    ("servfail", "SERVFAIL for bad.example. A from 127.0.0.1:"),
    ("refuse", "REFUSED for bad.example. A from 127.0.0.1:"),
    ("garbage", "malformed DNS reply from 127.0.0.1:"),
])
def test_failures_are_one_line(dns_server: DnsServer, mark: str, says: str) -> None:
    dns_server.add("bad.example. A 192.0.2.1")
    getattr(dns_server, mark).add("bad.example.")
    with pytest.raises(DnsError) as caught:
        resolver(dns_server).query("bad.example.", "A")
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.kind == ("malformed" if mark == "garbage" else "rcode")


def test_a_forged_reply_with_another_id_is_ignored(dns_server: DnsServer) -> None:
    dns_server.add("bank.example. A 192.0.2.10")
    dns_server.spoof.add("bank.example.")
    answer = resolver(dns_server).query("bank.example.", "A")
    assert [x.address for x in answer.records] == ["192.0.2.10"]  # not the forged 192.0.2.66
    assert not answer.validated  # the forgery's AD was not taken either


def test_a_silent_server_is_a_timeout_in_one_line(dns_server: DnsServer) -> None:
    dns_server.silent.add("quiet.example.")
    with pytest.raises(DnsError) as caught:
        resolver(dns_server, timeout=0.2).query("quiet.example.", "MX")
    assert str(caught.value) == (f"{dns_server.spec} did not answer within 0.2s "
                                 "(asking quiet.example. MX)")
    assert caught.value.kind == "timeout"


def test_silence_over_tcp_after_truncation_is_a_timeout_too(dns_server: DnsServer) -> None:
    dns_server.truncate.add("tc.example.")
    dns_server.add("tc.example. A 192.0.2.1")
    r = resolver(dns_server, timeout=0.2)
    r.query("tc.example.", "A")  # answered over TCP
    dns_server.silent.add("tc.example.")
    with pytest.raises(DnsError) as caught:
        r.query("tc.example.", "A")
    assert "did not answer within 0.2s" in str(caught.value)


def test_an_unreachable_resolver_is_one_line_at_once() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # nothing listens on that UDP port now; the timeout is long, so a quick answer shows
    # the refusal was seen (ICMP port unreachable), not waited out
    with pytest.raises(DnsError) as caught:
        Resolver(("127.0.0.1", port), timeout=30).query("example.", "MX")
    assert str(caught.value) == (f"127.0.0.1:{port} refused the query: nothing listens there "
                                 "(asking example. MX)")
    assert caught.value.kind == "unreachable"


@pytest.mark.parametrize("name", ["a..example", "x" * 64 + ".example", "-" * 300, "", ".",
                                  "\udcff.example"])
def test_a_name_that_is_no_domain_name_is_one_line(dns_server: DnsServer, name: str) -> None:
    with pytest.raises(DnsError) as caught:
        resolver(dns_server).query(name, "A")
    assert str(caught.value).startswith("not a domain name: ")
    assert len(str(caught.value)) < 200 and "\n" not in str(caught.value)
    assert caught.value.kind == "name"
    assert dns_server.queries == []


def test_control_characters_in_names_and_txt_are_escaped_when_printed(
        dns_server: DnsServer) -> None:
    # a label holding ESC [ 2 J (clear screen), and TXT data with an OSC 52 clipboard write
    dns_server.add('evil.example. TXT "\\027]52;c;aGk=\\007 hello"')
    typed = "e\x1b[2Jvil.example."
    answer = resolver(dns_server).query(typed, "TXT")
    assert answer.nxdomain
    # the name is kept as DNS presentation text, not pre-mangled or dropped
    assert answer.name == "e\\027[2Jvil.example."
    txt = resolver(dns_server).query("evil.example.", "TXT")
    raw = b"".join(txt.records[0].strings)
    assert raw == b"\x1b]52;c;aGk=\x07 hello"
    shown = for_terminal(raw.decode())
    assert "\x1b" not in shown and "\x07" not in shown and "\\x1b]52;c;aGk=\\x07 hello" in shown
    assert "\x1b" not in for_terminal(txt.records[0].to_text())
