"""MTA-STS (RFC 8461): the policy parser, MX matching, the lookup end to end against the
loopback DNS server and a real HTTPS server with trustme certificates, and the verdict for
one connection."""

from __future__ import annotations

import ipaddress
import socket

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from smtpshell.escapes import for_terminal, is_terminal_safe
from smtpshell.mailsec.dnsclient import Resolver
from smtpshell.mailsec.mta_sts import (
    MAX_AGE_LIMIT,
    POLICY_SIZE_LIMIT,
    StsError,
    StsLookup,
    StsPolicy,
    check,
    lookup,
    parse_policy,
    parse_txt,
    policy_url,
)
from tests.mailsec.dnsserver import DnsServer
from tests.mailsec.https_server import POLICY_PATH, PolicyServer, Reply

# fixtures: dns_server (tests/mailsec/conftest.py); policy_server, sts_ca, sts_cafile
# (tests/mailsec/https_server.py, made available there too)

DOMAIN = "example.net"
TXT = '_mta-sts.example.net. TXT "v=STSv1; id=20261130"'
GOOD = "version: STSv1\nmode: enforce\nmx: mx.example.net\nmx: *.example.net\nmax_age: 604800\n"


def _resolver(server: DnsServer) -> Resolver:
    return Resolver(server.address, timeout=1.0)


def _no_raw_controls(lines: list[str]) -> None:
    for line in lines:
        assert "\x1b" not in line and "\x07" not in line, line
        assert "\x1b" not in for_terminal(line)


# ---- parse_policy (§3.2) -------------------------------------------------------------------


def test_parse_good_policy_crlf_and_lf() -> None:
    crlf = parse_policy(GOOD.replace("\n", "\r\n"))
    lf = parse_policy(GOOD)
    assert crlf == lf
    assert lf == StsPolicy("STSv1", "enforce", ("mx.example.net", "*.example.net"), 604800)


def test_parse_unknown_keys_ignored_first_value_wins_blank_lines_skipped() -> None:
    text = ("version: STSv1\n\nmode: testing\nmode: enforce\nx-note: hello world\n"
            "mx: mx.example.net\nmax_age: 86400   \n")
    policy = parse_policy(text)
    assert policy.mode == "testing"  # a repeated key keeps its first value
    assert policy.ignored == ("x-note",)
    assert policy.max_age == 86400


def test_parse_mode_none_needs_no_mx() -> None:
    policy = parse_policy("version: STSv1\nmode: none\nmax_age: 0")
    assert policy.mode == "none" and policy.mx == ()


def test_parse_max_age_limit_is_inclusive() -> None:
    ok = parse_policy(f"version: STSv1\nmode: none\nmax_age: {MAX_AGE_LIMIT}\n")
    assert ok.max_age == MAX_AGE_LIMIT


@pytest.mark.parametrize(("text", "expected"), [
    ("mode: enforce\nmx: a.example\nmax_age: 1\n", "no 'version:' line"),
    ("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", "line 1: version 'STSv2'"),
    ("version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n", "line 2: mode 'Enforce'"),
    ("version: STSv1\nmx: a.example\nmax_age: 1\n", "no 'mode:' line"),
    ("version: STSv1\nmode: enforce\nmx: a.example\n", "no 'max_age:' line"),
    ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1d\n", "line 4: max_age '1d'"),
    ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n",
     "line 4: max_age 31557601 is over the limit"),
    ("version: STSv1\nmode: testing\nmax_age: 5\n", "no 'mx:' line, and mode testing"),
    ("version: STSv1\nmode: enforce\nmx: *mail.example.net\nmax_age: 5\n",
     "line 3: mx '*mail.example.net'"),
    ("version: STSv1\nmode: enforce\nmx: a.*.example.net\nmax_age: 5\n",
     "line 3: mx 'a.*.example.net'"),
    ("version: STSv1\nmode: enforce\nmx: mx.example.net.\nmax_age: 5\n",
     "line 3: mx 'mx.example.net.' ends with a dot"),
    ("version: STSv1\nmode: enforce\nmx: mx.example.net\ngarbage\nmax_age: 5\n",
     "line 4: 'garbage' is not 'key: value'"),
    ("version: STSv1\r\nmode : enforce\r\n", "line 2: 'mode ' is not a key"),
    ("version: STSv1\nmode:\nmx: a.example\nmax_age: 1\n", "line 2: mode has no value"),
    ("Version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n",
     "line 1 has it in other letters, and keys are case-sensitive"),
])
def test_parse_bad_policies_name_the_line(text: str, expected: str) -> None:
    with pytest.raises(StsError) as info:
        parse_policy(text)
    message = str(info.value)
    assert expected in message
    assert "RFC 8461 §3.2" in message
    assert "\n" not in message


_KEYS = st.sampled_from(["version", "mode", "mx", "max_age", "Mode", "x-y", "", " mx"])
_VALUES = st.one_of(st.sampled_from(["STSv1", "enforce", "testing", "none", "*.example.net",
                                     "mx.example.net", "86400", "31557601", "*x.y"]),
                    st.text(max_size=12))
_LINES = st.lists(st.tuples(_KEYS, st.sampled_from([": ", ":", " : ", ""]), _VALUES),
                  max_size=8)


@given(_LINES, st.sampled_from(["\n", "\r\n", "\r"]))
def test_parse_policy_either_parses_or_says_one_safe_line(
        lines: list[tuple[str, str, str]], end: str) -> None:
    text = end.join(k + sep + v for k, sep, v in lines)
    try:
        policy = parse_policy(text)
    except StsError as exc:
        message = str(exc)
        assert "\n" not in message and is_terminal_safe(message)
        return
    assert policy.version == "STSv1" and policy.mode in ("enforce", "testing", "none")
    assert 0 <= policy.max_age <= MAX_AGE_LIMIT
    assert policy.mx or policy.mode == "none"
    assert all(is_terminal_safe(p) for p in policy.mx)


@given(st.text(max_size=40).map(lambda t: "v=STSv1" + t))
def test_parse_txt_either_gives_an_id_or_says_one_safe_line(record: str) -> None:
    try:
        txt_id = parse_txt(record)
    except StsError as exc:
        assert "\n" not in str(exc) and is_terminal_safe(str(exc))
        return
    assert txt_id.isascii() and txt_id.isalnum() and len(txt_id) <= 32


# ---- MX matching (§4.1) ---------------------------------------------------------------------


@pytest.mark.parametrize(("host", "expected"), [
    ("mx.example.net", True),
    ("MX.Example.NET.", True),  # case and the final dot do not matter
    ("a.example.net", True),  # *.example.net
    ("a.b.example.net", False),  # the wildcard is one label only
    ("example.net", False),  # ... and not the bare domain
    (".example.net", False),
    ("mail.example.org", True),
    ("x.mail.example.org", False),
    ("example.org", False),
    ("", False),
])
def test_mx_patterns(host: str, expected: bool) -> None:
    policy = StsPolicy("STSv1", "enforce", ("*.example.net", "mail.example.org"), 86400)
    assert policy.matches(host) is expected


# ---- the TXT record (§3.1) ------------------------------------------------------------------


@pytest.mark.parametrize(("record", "txt_id"), [
    ("v=STSv1; id=20261130", "20261130"),
    ("v=STSv1;id=abc;", "abc"),
    ("v=STSv1; id=20261130; ext=val.ue", "20261130"),
])
def test_txt_good(record: str, txt_id: str) -> None:
    assert parse_txt(record) == txt_id


@pytest.mark.parametrize(("record", "expected"), [
    ("v=STSv1", "has no id"),
    ("v=STSv1; id=", "id '' is not 1-32"),
    ("v=STSv1; id=" + "1" * 33, "is not 1-32"),
    ("v=STSv1; id=2026-11-30", "id '2026-11-30'"),
    ("v=STSv1x; id=1", "must be followed by ';'"),
    ("v=STSv1; id=1; junk", "'junk' is not a name=value field"),
])
def test_txt_bad(record: str, expected: str) -> None:
    with pytest.raises(StsError, match=r"RFC 8461 §3\.1") as info:
        parse_txt(record)
    assert expected in str(info.value)


# ---- lookup, end to end ------------------------------------------------------------------------


def test_lookup_good_policy(dns_server: DnsServer, policy_server: PolicyServer,
                            sts_cafile: str) -> None:
    dns_server.add(TXT)
    policy_server.policy(GOOD)
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.problem is None
    assert found.txt_id == "20261130"
    assert found.policy == parse_policy(GOOD)
    assert found.url == policy_server.url()
    # the TLS connection asked for mta-sts.DOMAIN although it went to 127.0.0.1
    [request] = policy_server.requests
    assert request.sni == "mta-sts.example.net"
    assert request.host == "mta-sts.example.net"
    assert request.path == POLICY_PATH
    text = "\n".join(found.lines())
    assert "v=STSv1; id=20261130" in text
    assert "mode enforce" in text and "§3.3" in text and "§4.1" in text


def test_lookup_resolves_the_policy_host_through_the_given_resolver(
        dns_server: DnsServer, policy_server: PolicyServer, sts_cafile: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def numeric_only(host: object, *args: object, **kwargs: object) -> object:
        ipaddress.ip_address(str(host))  # a name here would go to the system's resolver
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)
    dns_server.add(TXT + "\nmta-sts.example.net. A 127.0.0.1")
    policy_server.policy(GOOD)
    url = policy_server.url(host="mta-sts.example.net")
    found = lookup(DOMAIN, _resolver(dns_server), url=url, cafile=sts_cafile)
    assert found.problem is None and found.policy is not None
    asked = {(name, rdtype) for name, rdtype, _ in dns_server.queries}
    assert ("mta-sts.example.net.", "A") in asked


def test_lookup_default_url_without_address_says_so(dns_server: DnsServer,
                                                     sts_cafile: str) -> None:
    dns_server.add(TXT)
    found = lookup(DOMAIN, _resolver(dns_server), cafile=sts_cafile)
    assert found.url == policy_url(DOMAIN) == "https://mta-sts.example.net/.well-known/mta-sts.txt"
    assert found.policy is None
    assert found.problem is not None
    assert "cannot find the address of the policy server mta-sts.example.net" in found.problem


def test_lookup_certificate_for_another_name(dns_server: DnsServer, sts_ca: trustme.CA,
                                             sts_cafile: str) -> None:
    dns_server.add(TXT)
    with PolicyServer(sts_ca.issue_cert("mta-sts.other.org")) as web:
        web.policy(GOOD)
        found = lookup(DOMAIN, _resolver(dns_server), url=web.url(), cafile=sts_cafile)
        assert web.requests == []  # nothing was asked of a server we do not trust
    assert found.policy is None and found.problem is not None
    assert "certificate of the policy server mta-sts.example.net refused" in found.problem
    assert "mta-sts.example.net" in found.problem and "§3.3" in found.problem
    assert "Hostname mismatch" in found.problem or "not valid" in found.problem


def test_lookup_certificate_from_an_untrusted_ca(dns_server: DnsServer,
                                                 sts_cafile: str) -> None:
    dns_server.add(TXT)
    stranger = trustme.CA()
    with PolicyServer(stranger.issue_cert("mta-sts.example.net")) as web:
        web.policy(GOOD)
        found = lookup(DOMAIN, _resolver(dns_server), url=web.url(), cafile=sts_cafile)
        assert web.requests == []
    assert found.problem is not None
    assert "refused" in found.problem and "issuer" in found.problem
    assert "--cafile" in found.problem


def test_lookup_server_without_tls(dns_server: DnsServer, sts_ca: trustme.CA,
                                   sts_cafile: str) -> None:
    dns_server.add(TXT)
    with PolicyServer(sts_ca.issue_cert("mta-sts.example.net"), plain=True) as web:
        web.policy(GOOD)
        found = lookup(DOMAIN, _resolver(dns_server), url=web.url(), cafile=sts_cafile,
                       timeout=2)
    assert found.policy is None and found.problem is not None
    assert found.problem.startswith(f"TLS with {web.url()} failed:")
    assert "does not speak TLS" in found.problem


def test_lookup_nothing_listening(dns_server: DnsServer, sts_cafile: str) -> None:
    dns_server.add(TXT)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    found = lookup(DOMAIN, _resolver(dns_server), url=f"https://127.0.0.1:{port}/p",
                   cafile=sts_cafile)
    assert found.problem is not None
    assert found.problem.startswith(f"cannot connect to the policy server for "
                                    f"https://127.0.0.1:{port}/p: 127.0.0.1 port {port}:")


def test_lookup_refuses_a_plain_http_url(dns_server: DnsServer, sts_cafile: str) -> None:
    dns_server.add(TXT)
    found = lookup(DOMAIN, _resolver(dns_server), url="http://127.0.0.1:1/p", cafile=sts_cafile)
    assert found.problem is not None and "not an https:// URL" in found.problem


def test_lookup_refuses_a_redirect(dns_server: DnsServer, policy_server: PolicyServer,
                                   sts_cafile: str) -> None:
    dns_server.add(TXT)
    elsewhere = "/elsewhere.txt"
    policy_server.serve(Reply(body=GOOD.encode()), elsewhere)  # a good policy, not fetched
    policy_server.serve(Reply(status=301, reason="Moved Permanently",
                              headers=[("Location", policy_server.url(elsewhere))]))
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.policy is None and found.problem is not None
    assert "HTTP 301" in found.problem and "not followed" in found.problem
    assert policy_server.url(elsewhere) in found.problem
    assert [r.path for r in policy_server.requests] == [POLICY_PATH]


@pytest.mark.parametrize(("content_type", "expected"), [
    ("text/html", "Content-Type text/html"),
    ("application/octet-stream", "Content-Type application/octet-stream"),
    (None, "no Content-Type"),
])
def test_lookup_wrong_media_type(dns_server: DnsServer, policy_server: PolicyServer,
                                 sts_cafile: str, content_type: str | None,
                                 expected: str) -> None:
    dns_server.add(TXT)
    policy_server.policy(GOOD, content_type=content_type)
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.policy is None and found.problem is not None
    assert expected in found.problem and "must be text/plain" in found.problem


def test_lookup_media_type_parameters_are_allowed(dns_server: DnsServer,
                                                  policy_server: PolicyServer,
                                                  sts_cafile: str) -> None:
    dns_server.add(TXT)
    policy_server.policy(GOOD, content_type="Text/Plain; charset=utf-8")
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.problem is None and found.policy is not None


def _padded_policy(size: int) -> bytes:
    head = GOOD.replace("\n", "\r\n").encode()
    pad_line = b"x-pad: " + b"a" * 100 + b"\r\n"
    body = head
    while len(body) + len(pad_line) <= size - 10:
        body += pad_line
    rest = size - len(body) - len(b"x-end: \r\n")
    return body + b"x-end: " + b"b" * rest + b"\r\n"


def test_lookup_body_of_exactly_64_kib_is_accepted(dns_server: DnsServer,
                                                   policy_server: PolicyServer,
                                                   sts_cafile: str) -> None:
    dns_server.add(TXT)
    body = _padded_policy(POLICY_SIZE_LIMIT)
    assert len(body) == POLICY_SIZE_LIMIT
    policy_server.serve(Reply(body=body))
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.problem is None and found.policy is not None


@pytest.mark.parametrize("how", ["announced", "streamed"])
def test_lookup_oversized_body(dns_server: DnsServer, policy_server: PolicyServer,
                               sts_cafile: str, how: str) -> None:
    dns_server.add(TXT)
    body = _padded_policy(POLICY_SIZE_LIMIT + 1)
    if how == "announced":
        policy_server.serve(Reply(body=body))
    else:  # no Content-Length, and far more than the limit: the client stops reading
        policy_server.serve(Reply(body=body[:1000], more=4 * 1024 * 1024))
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.policy is None and found.problem is not None
    assert "larger than 64 KiB" in found.problem and "§3.3" in found.problem


def test_lookup_http_404(dns_server: DnsServer, policy_server: PolicyServer,
                         sts_cafile: str) -> None:
    dns_server.add(TXT)  # nothing served: the server says 404
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.problem is not None
    assert "HTTP 404 Not Found" in found.problem and "only status 200" in found.problem
    assert found.txt_id == "20261130"


def test_lookup_slow_server_hits_the_time_limit(dns_server: DnsServer,
                                                policy_server: PolicyServer,
                                                sts_cafile: str) -> None:
    dns_server.add(TXT)
    policy_server.serve(Reply(hold=True))
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile,
                   timeout=0.2)
    assert found.problem is not None
    assert "did not answer within 0.2 s" in found.problem


def test_lookup_trickling_server_is_cut_off_at_the_time_limit(dns_server: DnsServer,
                                                               policy_server: PolicyServer,
                                                               sts_cafile: str) -> None:
    # every byte comes within the socket's timeout: only a limit on the whole fetch helps
    dns_server.add(TXT)
    policy_server.policy(GOOD, trickle=0.02)
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile,
                   timeout=0.3)
    assert found.problem is not None
    assert "did not answer within 0.3 s" in found.problem


def test_lookup_policy_syntax_error(dns_server: DnsServer, policy_server: PolicyServer,
                                    sts_cafile: str) -> None:
    dns_server.add(TXT)
    policy_server.policy("version: STSv1\nmode: enforce\nmx: *mx.example.net\nmax_age: 1\n")
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.problem is not None
    assert "line 3: mx '*mx.example.net'" in found.problem


def test_lookup_without_txt_fetches_nothing(dns_server: DnsServer,
                                            policy_server: PolicyServer,
                                            sts_cafile: str) -> None:
    dns_server.add("example.net. MX 10 mx.example.net.")
    policy_server.policy(GOOD)
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.policy is None and found.txt_id is None
    assert found.problem is not None
    assert "no MTA-STS TXT record at _mta-sts.example.net" in found.problem
    assert "§3.1" in found.problem
    assert policy_server.requests == []
    assert any("without a policy nothing is required" in line for line in found.lines())


def test_lookup_other_txt_records_are_not_a_policy(dns_server: DnsServer,
                                                   policy_server: PolicyServer,
                                                   sts_cafile: str) -> None:
    dns_server.add('_mta-sts.example.net. TXT "v=spf1 -all"')
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.problem is not None
    assert "1 other TXT record, none v=STSv1" in found.problem


def test_lookup_two_txt_records(dns_server: DnsServer, policy_server: PolicyServer,
                                sts_cafile: str) -> None:
    dns_server.add(TXT + '\n_mta-sts.example.net. TXT "v=STSv1; id=2"')
    policy_server.policy(GOOD)
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.policy is None and found.problem is not None
    assert "2 v=STSv1 TXT records" in found.problem and "exactly one" in found.problem
    assert policy_server.requests == []


def test_lookup_txt_split_into_strings_is_joined(dns_server: DnsServer,
                                                 policy_server: PolicyServer,
                                                 sts_cafile: str) -> None:
    dns_server.add('_mta-sts.example.net. TXT "v=STSv1; " "id=20261130"')
    policy_server.policy(GOOD)
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.problem is None and found.txt_id == "20261130"


def test_lookup_dns_failure_is_a_problem_not_an_exception(dns_server: DnsServer,
                                                          sts_cafile: str) -> None:
    dns_server.servfail.add("_mta-sts.example.net.")
    found = lookup(DOMAIN, _resolver(dns_server), cafile=sts_cafile)
    assert found.problem is not None
    assert "TXT lookup of _mta-sts.example.net failed" in found.problem
    assert "SERVFAIL" in found.problem


def test_lookup_missing_cafile(dns_server: DnsServer, policy_server: PolicyServer) -> None:
    dns_server.add(TXT)
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(),
                   cafile="/nonexistent/ca.pem")
    assert found.problem is not None and found.problem.startswith("--cafile /nonexistent/ca.pem")


def test_lookup_policy_mode_none(dns_server: DnsServer, policy_server: PolicyServer,
                                 sts_cafile: str) -> None:
    dns_server.add(TXT)
    policy_server.policy("version: STSv1\nmode: none\nmax_age: 86400\n")
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.policy is not None and found.policy.mode == "none"
    verdict = check(found, "mx.example.net", tls=False, cert_valid=False)
    assert not verdict.applies and verdict.ok
    assert "mode none" in verdict.reason


# ---- check (§4, §5) --------------------------------------------------------------------------


def _found(mode: str) -> StsLookup:
    policy = StsPolicy("STSv1", mode, ("mx.example.net", "*.example.net"), 86400)
    return StsLookup(DOMAIN, "1", policy_url(DOMAIN), policy, None)


def test_check_enforce_matching_mx_passes() -> None:
    verdict = check(_found("enforce"), "a.example.net", tls=True, cert_valid=True)
    assert verdict.applies and verdict.enforce and verdict.ok
    assert verdict.reason == ("a.example.net matches policy pattern *.example.net; STARTTLS "
                              "with a certificate valid for a.example.net — RFC 8461 §4.1, §4.2")
    assert verdict.lines()[0] == "MTA-STS (enforce): satisfied"


def test_check_enforce_non_matching_mx_fails() -> None:
    verdict = check(_found("enforce"), "a.b.example.net", tls=True, cert_valid=True)
    assert verdict.applies and verdict.enforce and not verdict.ok
    assert "a.b.example.net matches none of the policy's mx patterns" in verdict.reason
    assert "must not be used" in verdict.reason
    assert any(c.startswith("FAIL") and "§4.1" in c for c in verdict.checks)
    assert verdict.lines()[0] == "MTA-STS (enforce): VIOLATED"


def test_check_enforce_without_tls_fails() -> None:
    verdict = check(_found("enforce"), "mx.example.net", tls=False, cert_valid=False)
    assert not verdict.ok
    assert "no STARTTLS" in verdict.reason


def test_check_enforce_with_a_bad_certificate_fails() -> None:
    verdict = check(_found("enforce"), "mx.example.net", tls=True, cert_valid=False,
                    cert_error="certificate is not valid for mx.example.net")
    assert not verdict.ok
    assert "the certificate is not valid for mx.example.net" in verdict.reason
    assert any("§4.2" in c and c.startswith("FAIL") for c in verdict.checks)


def test_check_testing_mode_reports_but_passes() -> None:
    verdict = check(_found("testing"), "mx.elsewhere.org", tls=False, cert_valid=False)
    assert verdict.applies and not verdict.enforce and verdict.ok
    assert verdict.reason.startswith("testing mode: would fail because mx.elsewhere.org "
                                     "matches none")
    assert "no STARTTLS" in verdict.reason and "§5" in verdict.reason
    assert verdict.lines()[0] == "MTA-STS (testing): would fail, reported only"


def test_check_without_a_policy_requires_nothing() -> None:
    found = StsLookup(DOMAIN, None, policy_url(DOMAIN), None, "no TXT record")
    verdict = check(found, "mx.example.net", tls=False, cert_valid=False)
    assert not verdict.applies and verdict.ok and not verdict.enforce
    assert "nothing to enforce" in verdict.reason


# ---- hostile input ---------------------------------------------------------------------------


def test_hostile_txt_record_is_escaped(dns_server: DnsServer, policy_server: PolicyServer,
                                       sts_cafile: str) -> None:
    dns_server.add('_mta-sts.example.net. TXT "v=STSv1; id=1\\027]0;pwned\\007\\027[2J"')
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.problem is not None and "\\x1b" in found.problem
    _no_raw_controls(found.lines())


def test_hostile_txt_record_that_parses_is_shown_escaped(dns_server: DnsServer,
                                                         policy_server: PolicyServer,
                                                         sts_cafile: str) -> None:
    # the id is fine; an extension value with ESC makes the record unusable (§3.1)
    dns_server.add('_mta-sts.example.net. TXT "v=STSv1; id=7; x=\\027[31m"')
    policy_server.policy(GOOD)
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.policy is None and found.problem is not None
    _no_raw_controls(found.lines())


@pytest.mark.parametrize("body", [
    b"version: STSv1\r\nmode: enforce\r\nmx: mx.example.net\x1b[2J\r\nmax_age: 1\r\n",
    b"version: STSv1\r\nmode: enforce\x1b]0;x\x07\r\nmx: mx.example.net\r\nmax_age: 1\r\n",
    b"version: STSv1\r\n\x1b[31mmode: enforce\r\nmx: mx.example.net\r\nmax_age: 1\r\n",
    b"version: STSv1\r\nmode: enforce\r\nmx: mx\xc2\x9b.example.net\xff\r\nmax_age: 1\r\n",
])
def test_hostile_policy_body_is_escaped(dns_server: DnsServer, policy_server: PolicyServer,
                                        sts_cafile: str, body: bytes) -> None:
    dns_server.add(TXT)
    policy_server.serve(Reply(body=body))
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.policy is None and found.problem is not None
    assert "line " in found.problem
    _no_raw_controls(found.lines())
    assert "\x9b" not in "".join(found.lines())


def test_hostile_http_headers_are_escaped(dns_server: DnsServer, policy_server: PolicyServer,
                                          sts_cafile: str) -> None:
    dns_server.add(TXT)
    policy_server.serve(Reply(status=302, reason="Found\x1b[2J",
                              headers=[("Location", "https://evil.example/\x1b]0;x\x07")]))
    found = lookup(DOMAIN, _resolver(dns_server), url=policy_server.url(), cafile=sts_cafile)
    assert found.problem is not None and "HTTP 302" in found.problem
    assert "\\x1b" in found.problem
    _no_raw_controls(found.lines())


def test_hostile_mx_host_and_certificate_error_are_escaped() -> None:
    verdict = check(_found("enforce"), "mx\x1b[2J.example.net", tls=True, cert_valid=False,
                    cert_error="bad\x1b]0;x\x07")
    assert not verdict.ok
    _no_raw_controls(verdict.lines())
    assert "\\x1b" in verdict.reason
