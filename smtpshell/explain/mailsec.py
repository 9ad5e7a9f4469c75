"""What /explain says about DANE, TLSA and MTA-STS (issue 17): knowledge as data."""

from __future__ import annotations

__all__ = ["TOPICS"]

TOPICS: dict[str, tuple[str, ...]] = {
    "TLSA": (
        "TLSA: a DNS record saying which certificate or key a TLS server must present"
        " (RFC 6698 §2)",
        "for SMTP it lives at _PORT._tcp.MXHOST, e.g. _25._tcp.mx.example.com (RFC 7672"
        " §2.2.3); four fields: usage selector matching-type data",
        "usage: 0 PKIX-TA, 1 PKIX-EE (not used for SMTP, RFC 7672 §3.1.3), 2 DANE-TA (a trust"
        " anchor in the chain), 3 DANE-EE (the server's own certificate) (RFC 6698 §2.1.1)",
        "selector: 0 the whole certificate, 1 its SubjectPublicKeyInfo (RFC 6698 §2.1.2);"
        " matching type: 0 exact, 1 SHA-256, 2 SHA-512 (RFC 6698 §2.1.3)",
        "'3 1 1 <sha256 of the public key>' is the usual record: it survives a renewal that"
        " keeps the key (RFC 7671)",
        "see it: /mx DOMAIN (or smtpshell --mx DOMAIN); /dane after connecting",
    ),
    "DANE": (
        "DANE for SMTP: TLSA records, published under DNSSEC, say which certificate an MX"
        " host must present, so STARTTLS cannot be stripped or answered by any certificate"
        " (RFC 7672 §1.3)",
        "used only when the resolver validated the MX and TLSA answers (the AD bit of your"
        " own validating resolver, RFC 7672 §2.2)",
        "with usable records TLS is mandatory and a mismatch means: do not deliver to that host"
        " (RFC 7672 §2.2, §3.1)",
        "DANE-EE(3): no name and no expiry check, a self-signed certificate is fine (RFC 7672"
        " §3.1.1); DANE-TA(2): the chain must lead to the anchor and name the MX host (§3.1.2,"
        " §3.2)",
        "in smtpshell: --mx DOMAIN shows the status; --dane enforces it (a failure is exit"
        " status 4); /dane shows the last results; /explain TLSA",
    ),
    "MTA-STS": (
        "MTA-STS: a domain publishes over HTTPS which MX hosts are its own and that they must"
        " speak TLS with a valid certificate (RFC 8461 §1)",
        "TXT _mta-sts.DOMAIN: 'v=STSv1; id=…' says a policy exists (RFC 8461 §3.1)",
        "the policy: https://mta-sts.DOMAIN/.well-known/mta-sts.txt, a valid certificate, no"
        " redirects, text/plain, at most 64 KB (RFC 8461 §3.3); keys version, mode, mx,"
        " max_age (§3.2)",
        "mode enforce: the MX host must match an mx pattern ('*.' matches one label, §4.1)"
        " and present a certificate valid for its name (§4.2), else do not deliver (§5);"
        " testing: report only; none: no policy",
        "in smtpshell: --mx DOMAIN --mta-sts fetches and enforces it (exit status 4 on a"
        " violation); --mta-sts-url fetches it from elsewhere; /mta-sts [DOMAIN]",
    ),
}
TOPICS["STS"] = TOPICS["MTA-STS"]
