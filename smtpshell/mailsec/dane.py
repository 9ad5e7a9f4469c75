"""DANE for SMTP: TLSA records and matching them against the server's certificates.

RFC 7672 (SMTP security via opportunistic DANE TLS), with RFC 6698 (TLSA) and RFC 7671
(DANE operational updates):

* the records are at ``_PORT._tcp.HOST.`` (§2.2.3), and are used only when the resolver
  says the answer is DNSSEC-validated (the AD bit of the client's own validating resolver,
  §2.2); an unvalidated answer counts as no records at all;
* only DANE-TA(2) and DANE-EE(3) are usable for SMTP; PKIX-TA(0) and PKIX-EE(1) are not
  (§3.1.3); selectors 0 (the whole certificate) and 1 (SubjectPublicKeyInfo); matching
  types 0 (exact), 1 (SHA-256) and 2 (SHA-512) (RFC 6698 §2.1);
* DANE-EE(3) matches the server's own certificate and nothing else: no name check, no
  expiry check (§3.1.1);
* DANE-TA(2) names a trust anchor (a certificate in the chain the server sends, or for
  "2 0 0" the record's own certificate): the server's certificate must chain up to it and
  carry the MX host name (§3.1.2, §3.2.2).

Matching works on the DER the server sent (a small DER walk finds the
SubjectPublicKeyInfo), so a certificate whose key ``cryptography`` cannot load still
matches; ``cryptography`` (imported inside the functions) is needed only for DANE-TA's
chain check and for a subject to show.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from .dnsclient import Resolver

__all__ = ["DaneVerdict", "Tlsa", "TlsaLookup", "check_chain", "lookup_tlsa", "spki_der",
           "tlsa_data"]

USAGES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}
SELECTORS = {0: "Cert", 1: "SPKI"}
MTYPES = {0: "Full", 1: "SHA2-256", 2: "SHA2-512"}
DIGEST_SIZES = {1: 32, 2: 64}


@dataclass(frozen=True, order=True)
class Tlsa:
    usage: int
    selector: int
    mtype: int
    data: bytes

    def text(self) -> str:
        """As in a zone file: ``3 1 1 ab12…`` (data longer than 64 bytes is shortened)."""
        hexdata = self.data.hex()
        if len(self.data) > 64:
            hexdata = f"{hexdata[:32]}… ({len(self.data)} bytes)"
        return f"{self.usage} {self.selector} {self.mtype} {hexdata or '(empty)'}"

    def describe(self) -> str:
        """``3 1 1 (DANE-EE SPKI SHA2-256)``: the numbers with their RFC 7218 names."""
        names = " ".join((USAGES.get(self.usage, "?"), SELECTORS.get(self.selector, "?"),
                          MTYPES.get(self.mtype, "?")))
        return f"{self.usage} {self.selector} {self.mtype} ({names})"

    def why_unusable(self) -> str | None:
        """Why this record cannot be used for SMTP, or None."""
        if self.usage in (0, 1):
            return (f"usage {self.usage} ({USAGES[self.usage]}) is not used for SMTP "
                    "(RFC 7672 §3.1.3)")
        if self.usage not in (2, 3):
            return f"usage {self.usage} is unknown (RFC 6698 §2.1.1)"
        if self.selector not in SELECTORS:
            return f"selector {self.selector} is unknown (RFC 6698 §2.1.2)"
        if self.mtype not in MTYPES:
            return f"matching type {self.mtype} is unknown (RFC 6698 §2.1.3)"
        size = DIGEST_SIZES.get(self.mtype)
        if size is not None and len(self.data) != size:
            return (f"{MTYPES[self.mtype]} data is {len(self.data)} bytes, not {size} "
                    "(a malformed record is unusable)")
        if not self.data:
            return "the record has no data"
        return None


@dataclass(frozen=True)
class TlsaLookup:
    name: str  # "_25._tcp.mx.example."
    records: tuple[Tlsa, ...]
    validated: bool
    usable: tuple[Tlsa, ...]  # usages 2/3, selectors 0/1, mtypes 0/1/2, sane lengths
    nxdomain: bool = False

    def unusable_reason(self) -> str | None:
        """Why DANE cannot be used with these records, or None when it can."""
        if not self.records:
            return "no TLSA records"
        if not self.validated:
            return "not DNSSEC-validated (no AD bit) — RFC 7672 §2.2"
        if not self.usable:
            return "only unusable records (PKIX-TA/PKIX-EE, RFC 7672 §3.1.3)" if all(
                r.usage in (0, 1) for r in self.records) else (
                "only unusable records (" + "; ".join(sorted(
                    {why for r in self.records if (why := r.why_unusable())})) + ")")
        return None

    def lines(self) -> list[str]:
        signed = "DNSSEC-validated (AD)" if self.validated else "not DNSSEC-validated (no AD bit)"
        if not self.records:
            return [f"TLSA {self.name}: none ({'no such name' if self.nxdomain else 'no records'})"
                    f"; {signed}"]
        out = [f"TLSA {self.name}: {len(self.records)} record"
               f"{'s' if len(self.records) != 1 else ''}; {signed}"]
        for record in self.records:
            why = record.why_unusable()
            out.append(f"  {record.text()}  {record.describe().partition(' (')[2][:-1]}"
                       + (f"  unusable: {why}" if why else ""))
        reason = self.unusable_reason()
        if reason:
            out.append(f"  DANE cannot be used: {reason}")
        return out


def tlsa_name(host: str, port: int) -> str:
    return f"_{port}._tcp.{host if host.endswith('.') else host + '.'}"


def lookup_tlsa(resolver: Resolver, host: str, port: int) -> TlsaLookup:
    """The TLSA records of ``host`` and ``port`` (raises DnsError when the query fails)."""
    answer = resolver.query(tlsa_name(host, port), "TLSA")
    # in a fixed order (DNS gives a set, in any order), so that every run reads the same
    records = tuple(sorted(Tlsa(int(r.usage), int(r.selector), int(r.mtype), bytes(r.cert))
                           for r in answer.records))
    usable = tuple(r for r in records if r.why_unusable() is None)
    return TlsaLookup(answer.name, records, answer.validated, usable, nxdomain=answer.nxdomain)


# ---- matching --------------------------------------------------------------------------


class _DerError(ValueError):
    pass


def _der_item(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER item at ``pos``."""
    if pos + 2 > len(data):
        raise _DerError("truncated")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise _DerError("bad length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise _DerError("truncated")
    return tag, pos, pos + length


def spki_der(cert_der: bytes) -> bytes:
    """The SubjectPublicKeyInfo of a DER certificate, exactly as it was sent.

    Certificate = SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serial,
    signature, issuer, validity, subject, subjectPublicKeyInfo, … }, … } (RFC 5280 §4.1).
    """
    tag, start, _ = _der_item(cert_der, 0)
    if tag != 0x30:
        raise _DerError("not a SEQUENCE")
    tag, pos, tbs_end = _der_item(cert_der, start)
    if tag != 0x30:
        raise _DerError("no tbsCertificate")
    tag, _, end = _der_item(cert_der, pos)
    if tag == 0xA0:  # [0] version
        pos = end
    for _ in range(5):  # serial, signature, issuer, validity, subject
        _, _, pos = _der_item(cert_der, pos)
    tag, _, end = _der_item(cert_der, pos)
    if tag != 0x30 or end > tbs_end:
        raise _DerError("no SubjectPublicKeyInfo")
    return cert_der[pos:end]


def tlsa_data(cert_der: bytes, selector: int, mtype: int) -> bytes:
    """What a TLSA record with this selector and matching type holds for this certificate
    (raises ValueError when the certificate cannot be read)."""
    selected = cert_der if selector == 0 else spki_der(cert_der)
    if mtype == 1:
        return hashlib.sha256(selected).digest()
    if mtype == 2:
        return hashlib.sha512(selected).digest()
    return selected


def _matches(record: Tlsa, cert_der: bytes) -> bool:
    try:
        return tlsa_data(cert_der, record.selector, record.mtype) == record.data
    except ValueError:
        return False


def _subject(cert_der: bytes) -> str:
    from cryptography import x509

    try:
        return x509.load_der_x509_certificate(cert_der).subject.rfc4514_string() or "empty name"
    except ValueError:
        return "not a readable certificate"


@dataclass(frozen=True)
class DaneVerdict:
    ok: bool
    matched: Tlsa | None
    depth: int | None  # which certificate of the chain matched (0 = the server's own)
    reason: str  # one line: what matched which certificate, or exactly why none did
    applicable: bool = True  # False: DANE could not be used (no/unvalidated/unusable TLSA)
    name: str = ""  # the TLSA name
    records: tuple[Tlsa, ...] = field(default=())

    def lines(self) -> list[str]:
        head = ("DANE: verified" if self.ok else "DANE: not usable" if not self.applicable
                else "DANE: FAILED")
        out = [f"{head} — {self.reason}"]
        if self.records:
            out.append(f"  TLSA {self.name}: " + ", ".join(r.text() for r in self.records))
        return out


def _fingerprints(cert_der: bytes) -> str:
    full = hashlib.sha256(cert_der).hexdigest()
    try:
        spki = hashlib.sha256(spki_der(cert_der)).hexdigest()
    except ValueError:
        return f"SHA-256 {full} (its public key cannot be read)"
    return f"SPKI SHA-256 {spki}, certificate SHA-256 {full}"


def _verify_to_anchor(anchor_der: bytes, chain_der: Sequence[bytes], host: str) -> str | None:
    """Check that the leaf chains up to ``anchor_der`` and is valid for ``host``
    (RFC 7672 §3.2); None when it does, else why not in one line."""
    from cryptography import x509
    from cryptography.x509 import verification as xv

    try:
        anchor = x509.load_der_x509_certificate(anchor_der)
    except ValueError:
        return "the trust anchor is not a readable certificate"
    try:
        leaf = x509.load_der_x509_certificate(chain_der[0])
    except ValueError:
        return "the server's certificate cannot be read"
    intermediates = []
    for cert in chain_der[1:]:
        if cert == anchor_der:
            continue
        try:
            intermediates.append(x509.load_der_x509_certificate(cert))
        except ValueError:
            continue  # an unreadable extra certificate: the path may not need it
    # The web PKI profile for the CAs, lenient with the server certificate's extensions (as
    # OpenSSL and Postfix are: trustme, for one, marks its subjectAltName critical), but a
    # subjectAltName it must have, and the host name is checked against it.
    ee = xv.ExtensionPolicy.permit_all().require_present(
        x509.SubjectAlternativeName, xv.Criticality.AGNOSTIC, None)
    try:
        name = x509.DNSName(host.rstrip("."))
        verifier = (xv.PolicyBuilder().store(xv.Store([anchor]))
                    .extension_policies(ca_policy=xv.ExtensionPolicy.webpki_defaults_ca(),
                                        ee_policy=ee)
                    .build_server_verifier(name))
        verifier.verify(leaf, intermediates)
    except xv.VerificationError as exc:
        return (str(exc).split(" (encountered processing", 1)[0]
                .removeprefix("validation failed: "))
    except ValueError as exc:  # e.g. a host name that is not a DNS name
        return f"cannot check the name {host!r} ({exc})"
    return None


def check_chain(lookup: TlsaLookup, chain_der: Sequence[bytes], host: str) -> DaneVerdict:
    """Match the usable TLSA records against the chain the server sent (leaf first).

    DANE-EE(3): the leaf only, no name or expiry check (RFC 7672 §3.1.1). DANE-TA(2): a
    certificate of the chain (or the record's own, for 2 0 0) is the trust anchor, and the
    leaf must verify up to it with the host name (RFC 7672 §3.1.2, §3.2)."""
    reason = lookup.unusable_reason()
    if reason is not None:
        return DaneVerdict(False, None, None, f"DANE not used for {lookup.name}: {reason}",
                           applicable=False, name=lookup.name, records=lookup.records)
    if not chain_der:
        return DaneVerdict(False, None, None, "the server sent no certificate to match",
                           name=lookup.name, records=lookup.records)
    leaf = chain_der[0]
    for record in lookup.usable:
        if record.usage == 3 and _matches(record, leaf):
            return DaneVerdict(
                True, record, 0,
                f"TLSA {record.describe()} {record.text().split(' ', 3)[3]} matched the server's "
                f"certificate ({_subject(leaf)}); DANE-EE: no name or expiry check "
                "(RFC 7672 §3.1.1)",
                name=lookup.name, records=lookup.records)
    ta_records = [r for r in lookup.usable if r.usage == 2]
    # the anchors, nearest the leaf first: certificates of the chain, then "2 0 0" records
    # that hold the anchor itself
    candidates: list[tuple[Tlsa, int | None, bytes]] = [
        (record, depth, cert) for depth, cert in enumerate(chain_der) if depth > 0
        for record in ta_records if _matches(record, cert)]
    matched = {id(record) for record, _, _ in candidates}
    candidates += [(record, None, record.data) for record in ta_records
                   if id(record) not in matched and record.selector == 0 and record.mtype == 0]
    failures: list[str] = [
        f"{record.text()} matches the server's own certificate, which cannot be its own trust "
        "anchor (use usage 3 for that)" for record in ta_records
        if _matches(record, leaf) and all(record is not c[0] for c in candidates)]
    for record, depth, anchor in candidates:
        found = (f"matched the certificate at depth {depth} ({_subject(anchor)}) as trust "
                 "anchor" if depth is not None
                 else f"holds the trust anchor itself ({_subject(anchor)})")
        why = _verify_to_anchor(anchor, chain_der, host)
        if why is None:
            return DaneVerdict(
                True, record, depth,
                f"TLSA {record.describe()} {found}: the server's certificate chains up to "
                f"it and is valid for {host} (DANE-TA, RFC 7672 §3.1.2, §3.2)",
                name=lookup.name, records=lookup.records)
        failures.append(f"{record.text()} {found}, but the server's certificate does not "
                        f"verify up to it for {host}: {why}")
    if failures:
        detail = "; ".join(failures)
    else:
        count = len(lookup.usable)
        detail = ((f"none of the {count} usable TLSA records matched" if count > 1
                   else "the usable TLSA record did not match")
                  + f": the server's certificate has {_fingerprints(leaf)}"
                  + (f", and none of the other {len(chain_der) - 1} certificate"
                     f"{'s' if len(chain_der) != 2 else ''} of its chain matched a DANE-TA "
                     "record" if len(chain_der) > 1 else ", and it sent no other "
                     "certificates"))
    return DaneVerdict(False, None, None, f"DANE check failed: {detail} (RFC 7672 §3.1)",
                       name=lookup.name, records=lookup.records)
