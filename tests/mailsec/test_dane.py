"""DANE (RFC 7672, RFC 6698, RFC 7671): TLSA records from the loopback DNS server, matched
against trustme certificate chains. The TLSA data is computed here, with ``cryptography``
and ``hashlib``, from the certificates, independently of the code under test."""

from __future__ import annotations

import datetime
import hashlib
import socket
import ssl
import threading

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from smtpshell.escapes import for_terminal
from smtpshell.mailsec.dane import (
    Tlsa,
    TlsaLookup,
    check_chain,
    lookup_tlsa,
    spki_der,
)
from smtpshell.mailsec.dnsclient import DnsError, Resolver
from smtpshell.tls.certinfo import peer_chains
from tests.mailsec.dnsserver import DnsServer

HOST = "mx.example"
TLSA_NAME = "_25._tcp.mx.example."


def der(pem: trustme.Blob | bytes) -> bytes:
    data = pem.bytes() if isinstance(pem, trustme.Blob) else pem
    return ssl.PEM_cert_to_DER_cert(data.decode())


def tlsa_hex(cert_der: bytes, selector: int, mtype: int) -> str:
    """What a zone would publish: selector 0 the whole certificate, 1 its
    SubjectPublicKeyInfo; matching type 0 as is, 1 SHA-256, 2 SHA-512."""
    if selector == 0:
        selected = cert_der
    else:
        key = x509.load_der_x509_certificate(cert_der).public_key()
        selected = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if mtype == 1:
        return hashlib.sha256(selected).hexdigest()
    if mtype == 2:
        return hashlib.sha512(selected).hexdigest()
    return selected.hex()


class Pki:
    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.leaf = self.ca.issue_cert(HOST)
        self.ca_der = der(self.ca.cert_pem)
        self.leaf_der = der(self.leaf.cert_chain_pems[0])


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


def publish(server: DnsServer, *records: str, signed: bool = True, port: int = 25,
            host: str = HOST) -> TlsaLookup:
    """Put TLSA records ("3 1 1 HEX") at _PORT._tcp.HOST and look them up through DNS."""
    name = f"_{port}._tcp.{host}."
    if records:
        server.add("\n".join(f"{name} TLSA {r}" for r in records))
    if signed:
        server.signed.add(name)
    return lookup_tlsa(Resolver(server.address, timeout=1.0), host, port)


# ---- DANE-EE(3): the server's own certificate, no name or expiry check ------------------


@pytest.mark.parametrize(("selector", "mtype"), [(1, 1), (0, 1), (1, 2), (0, 2), (1, 0), (0, 0)])
def test_dane_ee_matches_the_leaf(dns_server: DnsServer, pki: Pki, selector: int,
                                  mtype: int) -> None:
    found = publish(dns_server, f"3 {selector} {mtype} {tlsa_hex(pki.leaf_der, selector, mtype)}")
    assert found.name == TLSA_NAME and found.validated and found.unusable_reason() is None
    verdict = check_chain(found, [pki.leaf_der, pki.ca_der], HOST)
    assert verdict.ok and verdict.depth == 0 and verdict.applicable
    assert verdict.matched == found.records[0]
    assert verdict.reason.startswith(f"TLSA 3 {selector} {mtype} (DANE-EE ")
    assert "matched the server's certificate" in verdict.reason
    assert "no name or expiry check (RFC 7672 §3.1.1)" in verdict.reason


def test_dane_ee_checks_no_name_and_no_expiry(dns_server: DnsServer, pki: Pki) -> None:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    expired = pki.ca.issue_cert("other.example", not_before=past - datetime.timedelta(days=60),
                                not_after=past)
    expired_der = der(expired.cert_chain_pems[0])
    assert x509.load_der_x509_certificate(expired_der).not_valid_after_utc < past + \
        datetime.timedelta(seconds=1)
    found = publish(dns_server, f"3 1 1 {tlsa_hex(expired_der, 1, 1)}")
    verdict = check_chain(found, [expired_der], HOST)  # expired, and for another name
    assert verdict.ok and verdict.depth == 0


def test_the_spki_is_the_certificates_own_bytes(pki: Pki) -> None:
    rsa = pki.ca.issue_cert(HOST, key_type=trustme.KeyType.RSA)
    for cert_der in (pki.leaf_der, pki.ca_der, der(rsa.cert_chain_pems[0])):
        key = x509.load_der_x509_certificate(cert_der).public_key()
        assert spki_der(cert_der) == key.public_bytes(Encoding.DER,
                                                      PublicFormat.SubjectPublicKeyInfo)


# ---- DANE-TA(2): a trust anchor, then the chain and the name ------------------------------


@pytest.mark.parametrize(("selector", "mtype"), [(0, 1), (1, 1), (0, 2), (1, 0)])
def test_dane_ta_matches_the_ca_in_the_chain(dns_server: DnsServer, pki: Pki, selector: int,
                                             mtype: int) -> None:
    found = publish(dns_server, f"2 {selector} {mtype} {tlsa_hex(pki.ca_der, selector, mtype)}")
    verdict = check_chain(found, [pki.leaf_der, pki.ca_der], HOST)
    assert verdict.ok and verdict.depth == 1, verdict.reason
    assert "matched the certificate at depth 1" in verdict.reason
    assert f"valid for {HOST} (DANE-TA, RFC 7672 §3.1.2, §3.2)" in verdict.reason


def test_dane_ta_full_certificate_in_the_record_needs_no_copy_in_the_chain(
        dns_server: DnsServer, pki: Pki) -> None:
    found = publish(dns_server, f"2 0 0 {pki.ca_der.hex()}")
    verdict = check_chain(found, [pki.leaf_der], HOST)
    assert verdict.ok and verdict.depth is None
    assert "holds the trust anchor itself" in verdict.reason


def test_dane_ta_digest_of_a_ca_the_server_does_not_send(dns_server: DnsServer,
                                                         pki: Pki) -> None:
    found = publish(dns_server, f"2 0 1 {tlsa_hex(pki.ca_der, 0, 1)}")
    verdict = check_chain(found, [pki.leaf_der], HOST)
    assert not verdict.ok and verdict.applicable
    assert "the usable TLSA record did not match" in verdict.reason
    assert "it sent no other certificates" in verdict.reason


def test_dane_ta_with_an_intermediate(dns_server: DnsServer) -> None:
    root = trustme.CA()
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert(HOST)
    chain = [der(p) for p in leaf.cert_chain_pems] + [der(root.cert_pem)]
    assert len(chain) == 3
    found = publish(dns_server, f"2 1 1 {tlsa_hex(chain[1], 1, 1)}",
                    f"2 0 1 {tlsa_hex(chain[2], 0, 1)}")
    verdict = check_chain(found, chain, HOST)
    # the anchor nearest the leaf is tried first: the intermediate (not self-signed)
    assert verdict.ok and verdict.depth == 1, verdict.reason
    assert verdict.matched is not None and verdict.matched.selector == 1
    root_only = tuple(r for r in found.records if r.selector == 0)
    verdict = check_chain(TlsaLookup(found.name, root_only, True, root_only), chain, HOST)
    assert verdict.ok and verdict.depth == 2, verdict.reason


def test_dane_ta_with_the_wrong_host_name_is_refused(dns_server: DnsServer, pki: Pki) -> None:
    found = publish(dns_server, f"2 0 1 {tlsa_hex(pki.ca_der, 0, 1)}")
    verdict = check_chain(found, [pki.leaf_der, pki.ca_der], "other.example")
    assert not verdict.ok and verdict.applicable and verdict.matched is None
    assert verdict.reason.startswith("DANE check failed: 2 0 1 ")
    assert "matched the certificate at depth 1" in verdict.reason
    assert "does not verify up to it for other.example" in verdict.reason
    assert "\n" not in verdict.reason


def test_dane_ta_checks_expiry(dns_server: DnsServer, pki: Pki) -> None:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    expired = pki.ca.issue_cert(HOST, not_before=past - datetime.timedelta(days=60),
                                not_after=past)
    found = publish(dns_server, f"2 0 1 {tlsa_hex(pki.ca_der, 0, 1)}")
    verdict = check_chain(found, [der(expired.cert_chain_pems[0]), pki.ca_der], HOST)
    assert not verdict.ok and "does not verify up to it" in verdict.reason


def test_a_dane_ta_record_for_the_leaf_is_no_anchor(dns_server: DnsServer, pki: Pki) -> None:
    found = publish(dns_server, f"2 1 1 {tlsa_hex(pki.leaf_der, 1, 1)}")
    verdict = check_chain(found, [pki.leaf_der, pki.ca_der], HOST)
    assert not verdict.ok
    assert "cannot be its own trust anchor (use usage 3 for that)" in verdict.reason


# ---- no match, and DANE that cannot be used ----------------------------------------------


def test_a_wrong_hash_says_what_the_certificate_has(dns_server: DnsServer, pki: Pki) -> None:
    other = trustme.CA().issue_cert(HOST)
    found = publish(dns_server, f"3 1 1 {tlsa_hex(der(other.cert_chain_pems[0]), 1, 1)}")
    verdict = check_chain(found, [pki.leaf_der, pki.ca_der], HOST)
    assert not verdict.ok and verdict.applicable and verdict.matched is None
    assert verdict.depth is None
    assert f"SPKI SHA-256 {tlsa_hex(pki.leaf_der, 1, 1)}" in verdict.reason
    assert f"certificate SHA-256 {tlsa_hex(pki.leaf_der, 0, 1)}" in verdict.reason
    assert "none of the other 1 certificate of its chain matched" in verdict.reason
    assert verdict.reason.endswith("(RFC 7672 §3.1)")
    assert verdict.lines()[0].startswith("DANE: FAILED — DANE check failed: the usable TLSA "
                                         "record did not match: the server's certificate has")
    published = tlsa_hex(der(other.cert_chain_pems[0]), 1, 1)
    assert verdict.lines()[1] == f"  TLSA {TLSA_NAME}: 3 1 1 {published}"


def test_records_that_are_not_validated_are_not_used(dns_server: DnsServer, pki: Pki) -> None:
    found = publish(dns_server, f"3 1 1 {tlsa_hex(pki.leaf_der, 1, 1)}", signed=False)
    assert not found.validated and len(found.usable) == 1
    assert found.unusable_reason() == "not DNSSEC-validated (no AD bit) — RFC 7672 §2.2"
    verdict = check_chain(found, [pki.leaf_der], HOST)
    assert not verdict.ok and not verdict.applicable  # though the record would match
    assert verdict.reason == (f"DANE not used for {TLSA_NAME}: not DNSSEC-validated (no AD "
                              "bit) — RFC 7672 §2.2")
    assert verdict.lines()[0].startswith("DANE: not usable — ")


@pytest.mark.parametrize("what", ["nxdomain", "no records"])
def test_no_tlsa_records(dns_server: DnsServer, pki: Pki, what: str) -> None:
    if what == "no records":
        dns_server.add(f"{TLSA_NAME} TXT \"not a TLSA\"")
    found = publish(dns_server)
    assert found.records == () and found.nxdomain == (what == "nxdomain")
    assert found.unusable_reason() == "no TLSA records"
    verdict = check_chain(found, [pki.leaf_der], HOST)
    assert not verdict.ok and not verdict.applicable
    assert verdict.reason == f"DANE not used for {TLSA_NAME}: no TLSA records"
    assert found.lines()[0].startswith(f"TLSA {TLSA_NAME}: none")


def test_only_pkix_records_are_unusable(dns_server: DnsServer, pki: Pki) -> None:
    found = publish(dns_server, f"0 0 1 {tlsa_hex(pki.ca_der, 0, 1)}",
                    f"1 1 1 {tlsa_hex(pki.leaf_der, 1, 1)}")
    assert found.usable == ()
    assert found.unusable_reason() == "only unusable records (PKIX-TA/PKIX-EE, RFC 7672 §3.1.3)"
    verdict = check_chain(found, [pki.leaf_der, pki.ca_der], HOST)
    assert not verdict.ok and not verdict.applicable
    assert any("unusable: usage 1 (PKIX-EE) is not used for SMTP (RFC 7672 §3.1.3)" in line
               for line in found.lines())


def test_a_malformed_record_is_skipped_and_a_good_one_used(dns_server: DnsServer,
                                                           pki: Pki) -> None:
    good = f"3 1 1 {tlsa_hex(pki.leaf_der, 1, 1)}"
    found = publish(dns_server, "3 1 9 00112233", "4 1 0 00", "3 7 0 00", good)
    assert len(found.records) == 4 and [r.text() for r in found.usable] == [good]
    assert check_chain(found, [pki.leaf_der], HOST).ok
    two = tuple(r for r in found.records if r.usage == 4 or r.mtype == 9)
    reason = TlsaLookup(found.name, two, True, ()).unusable_reason()
    assert reason == ("only unusable records (matching type 9 is unknown (RFC 6698 §2.1.3); "
                      "usage 4 is unknown (RFC 6698 §2.1.1))")
    # a digest of the wrong length: unusable
    short = Tlsa(3, 1, 1, bytes(4))
    assert short.why_unusable() == ("SHA2-256 data is 4 bytes, not 32 (a malformed record is "
                                    "unusable)")
    assert TlsaLookup(TLSA_NAME, (short,), True, ()).unusable_reason() == (
        "only unusable records (SHA2-256 data is 4 bytes, not 32 (a malformed record is "
        "unusable))")


def test_a_wrong_length_digest_on_the_wire_fails_the_lookup_in_one_line(
        dns_server: DnsServer) -> None:
    # dnspython refuses such a record when it reads the reply: the lookup fails (and with
    # --dane a failed TLSA lookup means no delivery, RFC 7672 §2.2)
    dns_server.add_raw(TLSA_NAME, "TLSA", bytes([3, 1, 1]) + bytes(4))
    with pytest.raises(DnsError) as caught:
        lookup_tlsa(Resolver(dns_server.address, timeout=1.0), HOST, 25)
    assert str(caught.value).startswith("malformed DNS reply from 127.0.0.1:")
    assert "\n" not in str(caught.value)


def test_a_failing_tlsa_query_raises_one_line(dns_server: DnsServer) -> None:
    dns_server.servfail.add(TLSA_NAME)
    with pytest.raises(DnsError, match=r"^SERVFAIL for _25\._tcp\.mx\.example\. TLSA from "):
        lookup_tlsa(Resolver(dns_server.address, timeout=1.0), HOST, 25)


def test_the_port_is_part_of_the_name(dns_server: DnsServer, pki: Pki) -> None:
    found = publish(dns_server, f"3 1 1 {tlsa_hex(pki.leaf_der, 1, 1)}", port=587)
    assert found.name == "_587._tcp.mx.example." and len(found.usable) == 1


# ---- bad chains and hostile text ----------------------------------------------------------


def test_an_empty_or_unreadable_chain_is_a_failure_not_a_crash(dns_server: DnsServer,
                                                               pki: Pki) -> None:
    found = publish(dns_server, f"3 1 1 {tlsa_hex(pki.leaf_der, 1, 1)}",
                    f"2 0 1 {tlsa_hex(pki.ca_der, 0, 1)}")
    empty = check_chain(found, [], HOST)
    assert not empty.ok and empty.reason == "the server sent no certificate to match"
    for junk in (b"", b"\x30\x03\x02\x01", b"\x30\x82\xff\xff" + b"\x00" * 10, b"not der"):
        verdict = check_chain(found, [junk, junk], HOST)
        assert not verdict.ok and "\n" not in verdict.reason
    # the CA really sent, after a server certificate that cannot be read
    verdict = check_chain(found, [b"not der", pki.ca_der], HOST)
    assert not verdict.ok
    assert verdict.reason.endswith("does not verify up to it for mx.example: the server's "
                                   "certificate cannot be read (RFC 7672 §3.1)")
    # a "2 0 0" record whose data is no certificate
    bogus = Tlsa(2, 0, 0, b"\x30\x03\x02\x01\x00")
    verdict = check_chain(TlsaLookup(TLSA_NAME, (bogus,), True, (bogus,)), [pki.leaf_der], HOST)
    assert not verdict.ok
    assert verdict.reason == ("DANE check failed: 2 0 0 3003020100 holds the trust anchor "
                              "itself (not a readable certificate), but the server's "
                              "certificate does not verify up to it for mx.example: the trust "
                              "anchor is not a readable certificate (RFC 7672 §3.1)")


def test_a_hostile_subject_is_kept_and_escaped_when_printed(dns_server: DnsServer) -> None:
    ca = trustme.CA(organization_name="Evil\x1b]0;owned\x07 CA\u202e")
    found = publish(dns_server, f"2 0 1 {tlsa_hex(der(ca.cert_pem), 0, 1)}")
    leaf = ca.issue_cert(HOST)
    verdict = check_chain(found, [der(leaf.cert_chain_pems[0]), der(ca.cert_pem)], HOST)
    assert verdict.ok
    assert "O=Evil\x1b]0" in verdict.reason  # the caller escapes, nothing pre-mangled
    for line in verdict.lines():
        shown = for_terminal(line)
        assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
        assert "O=Evil\\x1b]0" in shown or not line.startswith("DANE")


def test_tlsa_text(pki: Pki) -> None:
    assert Tlsa(3, 1, 1, bytes.fromhex("ab12")).text() == "3 1 1 ab12"
    long = Tlsa(3, 0, 0, pki.leaf_der)
    assert long.text() == f"3 0 0 {pki.leaf_der.hex()[:32]}… ({len(pki.leaf_der)} bytes)"
    assert Tlsa(2, 1, 2, b"\x00" * 64).describe() == "2 1 2 (DANE-TA SPKI SHA2-512)"


# ---- a real handshake ---------------------------------------------------------------------


def handshake_chain(leaf: trustme.LeafCert) -> tuple[bytes, ...]:
    """The chain a TLS server on 127.0.0.1 sends, as the client reads it after the
    handshake (no verification: DANE decides)."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server_ctx)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)  # until the client closes
            except OSError:  # the client may close without a TLS close_notify
                conn.close()

        thread = threading.Thread(target=serve)
        thread.start()
        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_ctx.check_hostname = False
        client_ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                client_ctx.wrap_socket(raw, server_hostname=HOST) as tls:
            sent = peer_chains(tls, verified=False).sent
        thread.join(5)
    return sent


def test_the_chain_of_a_real_handshake(dns_server: DnsServer) -> None:
    root = trustme.CA()
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert(HOST)
    sent = handshake_chain(leaf)
    assert len(sent) == 2  # the server's certificate and the intermediate
    leaf_der, intermediate_der = (der(p) for p in leaf.cert_chain_pems)
    assert sent == (leaf_der, intermediate_der)
    ee = publish(dns_server, f"3 1 1 {tlsa_hex(leaf_der, 1, 1)}")
    assert check_chain(ee, sent, HOST).ok
    dns_server.add(f"_25._tcp.ta.example. TLSA 2 1 1 {tlsa_hex(intermediate_der, 1, 1)}")
    ta = publish(dns_server, host="ta.example")
    verdict = check_chain(ta, sent, HOST)
    assert verdict.ok and verdict.depth == 1, verdict.reason
    # the root is not sent: its digest alone cannot anchor the chain (RFC 7671 §5.2.2 asks
    # servers to send the anchor), the record holding the whole root can
    dns_server.add(f"_25._tcp.root.example. TLSA 2 0 1 {tlsa_hex(der(root.cert_pem), 0, 1)}")
    assert not check_chain(publish(dns_server, host="root.example"), sent, HOST).ok
    dns_server.add(f"_25._tcp.full.example. TLSA 2 0 0 {der(root.cert_pem).hex()}")
    assert check_chain(publish(dns_server, host="full.example"), sent, HOST).ok
