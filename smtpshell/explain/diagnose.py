"""Why a command was refused, from the session's state and not only the reply code.

A reply code alone can mislead: ``503`` to AUTH means "bad sequence", and the usual
textbook reasons (already authenticated, inside a mail transaction) may both be false
when the real one is that AUTH was never advertised on this connection, for example
because EHLO was not sent again after STARTTLS (RFC 3207 §4.2).  ``diagnose`` looks at
``Facts`` (what the connection knows now) and says the true reason, or None when the
state explains nothing and the code's usual meaning stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..protocol.replies import Capabilities

__all__ = ["SASL_MECHANISMS", "Facts", "diagnose", "mechanism_problem"]

SASL_MECHANISMS = frozenset({
    "PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "XOAUTH2", "OAUTHBEARER", "GSSAPI",
    "GS2-KRB5", "NTLM", "ANONYMOUS", "EXTERNAL", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512", "SCRAM-SHA-512-PLUS", "OTP",
    "SECURID", "SKEY", "KERBEROS_V4", "SRP", "MSN", "XOAUTH", "CRAM-SHA1",
})  # fmt: skip
"""SASL mechanism names in use (the IANA SASL registry, and LOGIN, XOAUTH2, MSN)."""


@dataclass(frozen=True, kw_only=True)
class Facts:
    """What the connection knows when a refusal arrives."""

    tls: bool = False
    implicit_tls: bool = False
    """TLS from the first byte (port 465 style), not by STARTTLS."""
    capabilities: Capabilities | None = None
    """What the last EHLO advertised on this connection; None before EHLO and after
    STARTTLS until EHLO is sent again."""
    authenticated: bool = False
    in_transaction: bool = False
    """MAIL FROM was accepted and the message is not finished."""
    recipient_accepted: bool = False
    """At least one RCPT TO of this transaction was accepted (a refused one does not count)."""


_EHLO_AGAIN = ("no EHLO since STARTTLS: what the server advertised before TLS no longer "
               "counts, so nothing is advertised now; send EHLO again (RFC 3207 §4.2)")


def diagnose(verb: str, code: int, facts: Facts) -> str | None:
    """The state-aware reason ``verb`` got the refusal ``code`` (>= 400), or None."""
    if code < 400:
        return None
    verb = verb.upper()
    if verb == "AUTH":
        return _auth(code, facts)
    if verb == "STARTTLS":
        return _starttls(facts)
    if verb in ("DATA", "BDAT") and code in (503, 554):
        return _message(verb, facts)
    if code == 503 and facts.capabilities is None and facts.tls and not facts.implicit_tls:
        return _EHLO_AGAIN
    return None


def _auth(code: int, facts: Facts) -> str | None:
    caps = facts.capabilities
    if facts.authenticated:
        return ("already authenticated on this connection: after a successful AUTH no "
                "other AUTH is allowed (RFC 4954 §4)")
    if facts.in_transaction:
        return "AUTH is not allowed inside a mail transaction: RSET first (RFC 4954 §4)"
    if caps is None:
        if facts.tls and not facts.implicit_tls:
            return "AUTH was not advertised in this session: " + _EHLO_AGAIN
        return ("AUTH was not advertised in this session: no EHLO yet, and AUTH is an "
                "extension the EHLO reply announces (RFC 4954 §3); send EHLO first")
    if "AUTH" in caps:
        return None  # advertised: the code's own meaning stands
    if not facts.tls and "STARTTLS" in caps:
        return ("AUTH was not advertised on this plain connection (the EHLO reply offers "
                "STARTTLS, not AUTH): many servers offer AUTH only over TLS; send STARTTLS, "
                "then EHLO again, then AUTH")
    return ("AUTH was not advertised in this session: the server's EHLO reply offers no "
            "authentication (RFC 4954 §3)")


def _message(verb: str, facts: Facts) -> str | None:
    """DATA or BDAT refused: a transaction without an accepted recipient has no message."""
    if facts.capabilities is None and facts.tls and not facts.implicit_tls:
        return _EHLO_AGAIN
    if not facts.in_transaction:
        return (f"no transaction is open: {verb} needs an accepted MAIL FROM and at least one "
                "accepted RCPT TO first (RFC 5321 §3.3)")
    if not facts.recipient_accepted:
        return (f"no recipient was accepted in this transaction (a refused RCPT TO does not "
                f"count): {verb} needs at least one RCPT TO answered 250; add one, or RSET "
                "(RFC 5321 §3.3)")
    return None


def _starttls(facts: Facts) -> str | None:
    caps = facts.capabilities
    if facts.tls:
        return ("this connection is already encrypted: STARTTLS is not allowed once TLS is "
                "active (RFC 3207 §4)")
    if caps is None:
        return ("STARTTLS was not advertised in this session: no EHLO yet, and STARTTLS is "
                "an extension the EHLO reply announces (RFC 3207 §4); send EHLO first")
    if "STARTTLS" not in caps:
        return "STARTTLS was not advertised: this server's EHLO reply does not offer TLS"
    return None


def mechanism_problem(word: str, supported: Sequence[str], user: str | None = None) -> str | None:
    """Where a mechanism or a user name may stand (``/auth WORD``): the problem when
    ``word`` names a mechanism the shell does not speak or misspells one it does, else
    None (a supported mechanism, or a user name).

    A word one letter away from a mechanism (``plian``) is taken for a typo: a user
    whose name looks like one names the mechanism first (``/auth PLAIN alain``).
    ``user``: the word after it (``/auth plian demo``), the user the corrected command
    names; ``word`` is then surely meant as the mechanism.
    """
    upper = word.upper()
    if upper in supported or "@" in word:
        return None
    known = ", ".join(supported)
    if upper in SASL_MECHANISMS:
        return (f"{word}: a SASL mechanism this shell does not speak (it knows {known}); "
                "/auth MECH USER picks one")
    close = [m for m in (*supported, *sorted(SASL_MECHANISMS)) if _one_edit(upper, m)]
    if close and user is not None:
        return (f"unknown mechanism {word!r} (did you mean {close[0]}?); known: {known}; "
                f"/auth {close[0] if close[0] in supported else supported[0]} {user}")
    if close:
        return (f"unknown mechanism {word!r} (did you mean {close[0]}?); known: {known}; "
                f"to log in as a user named {word!r}, name the mechanism first: "
                f"/auth {supported[0]} {word}")
    return None


def _one_edit(a: str, b: str) -> bool:
    """One substitution, insertion, deletion or swap of neighbours turns ``a`` into ``b``."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))
