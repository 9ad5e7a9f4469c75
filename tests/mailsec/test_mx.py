"""MX lookup (RFC 5321 §5.1, RFC 7505) against the loopback DNS server."""

from __future__ import annotations

import pytest

from smtpshell.escapes import for_terminal
from smtpshell.mailsec.dnsclient import DnsError, Resolver
from smtpshell.mailsec.mx import MxHost, lookup_mx
from tests.mailsec.dnsserver import DnsServer


def resolver(server: DnsServer) -> Resolver:
    return Resolver(server.address, timeout=1.0)


def test_hosts_by_preference_with_their_addresses(dns_server: DnsServer) -> None:
    dns_server.add("""
        example.      MX 30 backup.example.
        example.      MX 10 mx-b.example.
        example.      MX 20 relay.example.
        example.      MX 10 mx-a.example.
        mx-a.example. A    192.0.2.1
        mx-a.example. AAAA 2001:db8::1
        mx-b.example. AAAA 2001:db8::2
        relay.example. A   192.0.2.3
        relay.example. A   192.0.2.4
    """)
    dns_server.signed.add("example.")
    dns_server.signed.add("mx-a.example.")
    result = lookup_mx(resolver(dns_server), "example")
    assert result.domain == "example"
    # the address records' own AD (RFC 7672 §2.2): both A and AAAA answers must have it
    assert [h.validated for h in result.hosts] == [True, False, False, False]
    assert not result.implicit and not result.null_mx and result.validated
    names = [(h.preference, h.name) for h in result.hosts]
    # lowest preference first; the two at 10 in name order, every run the same
    assert names == [(10, "mx-a.example"), (10, "mx-b.example"), (20, "relay.example"),
                     (30, "backup.example")]
    assert result.hosts[0].addresses == ("192.0.2.1", "2001:db8::1")  # IPv4 first
    assert result.hosts[1].addresses == ("2001:db8::2",)
    assert sorted(result.hosts[2].addresses) == ["192.0.2.3", "192.0.2.4"]
    assert result.hosts[3] == MxHost("backup.example", 30, (), "no such host (NXDOMAIN)")
    assert [h.name for h in result.usable_hosts()] == ["mx-a.example", "mx-b.example",
                                                       "relay.example"]
    lines = result.lines()
    assert lines[0] == ("MX for example: 4 hosts, lowest preference first (RFC 5321 §5.1); "
                        "DNSSEC-validated (the resolver set AD)")
    assert lines[1].split() == ["10", "mx-a.example", "192.0.2.1,", "2001:db8::1"]
    assert lines[4].split()[:4] == ["30", "backup.example", "no", "address:"]
    assert any("equal preferences are tried in name order" in line
               and "RFC 5321 §5.1" in line for line in lines)


def test_unvalidated_mx_answer_says_so(dns_server: DnsServer) -> None:
    dns_server.add("example. MX 10 mx.example.\nmx.example. A 192.0.2.1")
    result = lookup_mx(resolver(dns_server), "example.")
    assert not result.validated
    assert "not DNSSEC-validated (no AD bit)" in result.lines()[0]
    assert not any("equal preferences" in line for line in result.lines())


def test_a_host_whose_address_lookup_fails_is_kept_with_the_reason(
        dns_server: DnsServer) -> None:
    dns_server.add("""
        example.    MX 10 broken.example.
        example.    MX 20 good.example.
        good.example. A 192.0.2.7
        broken.example. A 192.0.2.8
    """)
    dns_server.servfail.add("broken.example.")
    result = lookup_mx(resolver(dns_server), "example.")
    broken, good = result.hosts
    assert broken.addresses == () and broken.error is not None
    assert broken.error.startswith("SERVFAIL for broken.example. A from 127.0.0.1:")
    assert good.addresses == ("192.0.2.7",) and good.error is None
    assert result.usable_hosts() == (good,)


def test_no_mx_means_the_domain_itself(dns_server: DnsServer) -> None:
    dns_server.add("solo.example. A 192.0.2.5\nsolo.example. AAAA 2001:db8::5")
    dns_server.signed.add("solo.example.")
    result = lookup_mx(resolver(dns_server), "solo.example")
    assert result.implicit and not result.null_mx and result.validated
    assert result.hosts == (MxHost("solo.example", 0, ("192.0.2.5", "2001:db8::5"),
                                   validated=True),)
    assert result.lines()[0] == ("solo.example has no MX records: the domain itself is its mail "
                                 "host (implicit MX, RFC 5321 §5.1); DNSSEC-validated (the "
                                 "resolver set AD)")
    assert result.lines()[1].split() == ["solo.example", "192.0.2.5,", "2001:db8::5"]


def test_no_mx_and_no_address(dns_server: DnsServer) -> None:
    dns_server.add('bare.example. TXT "nothing else"')
    result = lookup_mx(resolver(dns_server), "bare.example")
    assert result.implicit
    assert result.hosts == (MxHost("bare.example", 0, (), "no A/AAAA records"),)
    assert result.usable_hosts() == ()


def test_null_mx_accepts_no_mail(dns_server: DnsServer) -> None:
    dns_server.add("nomail.example. MX 0 .\nnomail.example. A 192.0.2.1")
    result = lookup_mx(resolver(dns_server), "nomail.example")
    assert result.null_mx and result.hosts == () and not result.implicit
    assert result.lines() == ['nomail.example has a null MX ("MX 0 ."): it accepts no mail at '
                              "all (RFC 7505 §3); not DNSSEC-validated (no AD bit)"]
    # no fallback to the A record (RFC 7505 §3): the A was never asked for
    assert [q for q in dns_server.queries if q[1] != "MX"] == []


def test_a_null_mx_among_others_is_left_out(dns_server: DnsServer) -> None:
    dns_server.add("mixed.example. MX 0 .\nmixed.example. MX 10 mx.example.\n"
                   "mx.example. A 192.0.2.1")
    result = lookup_mx(resolver(dns_server), "mixed.example")
    assert not result.null_mx
    assert [h.name for h in result.hosts] == ["mx.example"]
    assert any("RFC 7505 §3" in note for note in result.notes)


def test_a_domain_that_does_not_exist(dns_server: DnsServer) -> None:
    result = lookup_mx(resolver(dns_server), "nowhere.example")
    assert result.nxdomain and result.hosts == ()
    assert result.lines()[0].startswith("nowhere.example: no such domain (NXDOMAIN)")
    assert [q[1] for q in dns_server.queries] == ["MX"]


def test_an_alias_domain_uses_its_targets_mx(dns_server: DnsServer) -> None:
    dns_server.add("mail.example. CNAME real.example.\nreal.example. MX 5 mx.real.example.\n"
                   "mx.real.example. A 192.0.2.2")
    result = lookup_mx(resolver(dns_server), "mail.example")
    assert [h.name for h in result.hosts] == ["mx.real.example"]
    assert any("alias (CNAME) of real.example" in note for note in result.notes)


def test_a_failing_mx_query_raises(dns_server: DnsServer) -> None:
    dns_server.servfail.add("example.")
    with pytest.raises(DnsError, match=r"^SERVFAIL for example\. MX from 127\.0\.0\.1:\d+"):
        lookup_mx(resolver(dns_server), "example")


def test_a_host_name_with_control_characters_is_shown_escaped(dns_server: DnsServer) -> None:
    # the MX names a host whose label holds ESC [ 2 J, and a right-to-left override
    dns_server.add("example. MX 10 mx\\027[2J\\226\\128\\174.example.")
    result = lookup_mx(resolver(dns_server), "example")
    name = result.hosts[0].name
    assert name == "mx\\027[2J\\226\\128\\174.example"  # presentation text, as dig shows it
    for line in result.lines():
        shown = for_terminal(line)
        assert "\x1b" not in shown and "\u202e" not in shown
    assert any("mx\\027[2J" in for_terminal(line) for line in result.lines())


def test_at_most_ten_hosts_are_looked_up(dns_server: DnsServer) -> None:
    dns_server.add("\n".join(f"many.example. MX {n} mx{n:02d}.example.\n"
                             f"mx{n:02d}.example. A 192.0.2.{n}" for n in range(1, 13)))
    result = lookup_mx(resolver(dns_server), "many.example")
    assert [h.addresses for h in result.hosts[:10]] == [(f"192.0.2.{n}",) for n in range(1, 11)]
    assert len(result.hosts) == 10 and result.more == 2  # counted, not kept
    assert "  … and 2 more MX hosts not looked up (only the first 10 are)" in result.lines()
    assert {q[0] for q in dns_server.queries} >= {"mx10.example."}
    assert not {q[0] for q in dns_server.queries} & {"mx11.example.", "mx12.example."}


def test_a_resolver_that_stops_answering_costs_two_timeouts_not_two_per_host(
        dns_server: DnsServer) -> None:
    dns_server.add("slow.example. MX 10 mx1.slow.example.\nslow.example. MX 20 mx2.slow.example."
                   "\nslow.example. MX 30 mx3.slow.example.")
    for n in (1, 2, 3):
        dns_server.silent.add(f"mx{n}.slow.example.")
    result = lookup_mx(Resolver(dns_server.address, timeout=0.1), "slow.example")
    first, second, third = result.hosts
    assert first.error is not None and "did not answer within 0.1s" in first.error
    assert second.error == third.error == ("not looked up: the resolver did not answer 2 "
                                           "address queries in time")
    assert [q[0] for q in dns_server.queries] == ["slow.example.", "mx1.slow.example.",
                                                  "mx1.slow.example."]
