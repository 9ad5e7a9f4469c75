"""The teaching view of AUTH replies: what a ``334`` challenge says, the outcome in words.

What the client's own AUTH lines mean (decoded, secret masked) is part of their
classification, ``protocol.sasl.redact``; this module reads the server's side.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..escapes import format_escapes
from ..protocol.sasl.b64 import decode_b64
from ..protocol.sasl.mechanisms import compact_json, json_object


def describe_challenge(b64text: str) -> str:
    """What a ``334`` challenge says, e.g. ``→ "Username:"``."""
    decoded = decode_b64(b64text)
    if decoded.data is None:
        return f"→ (not valid base64: {decoded.error})"
    data = decoded.data
    if not data:
        text = "→ (empty challenge: send your response)"
    elif (parsed := json_object(data)) is not None:
        compact = compact_json(parsed)
        text = f"→ JSON error {compact}: answer with an empty line; the final reply follows"
    else:
        text = f'→ "{format_escapes(data)}"'
    return text + "".join(f"  (note: {w})" for w in decoded.warnings)


_OUTCOMES: Mapping[int, tuple[str, str]] = {
    235: ("authenticated", "RFC 4954 §6"),
    432: ("a password transition is needed: change the password first", "RFC 4954 §6"),
    454: ("temporary authentication failure: try again later", "RFC 4954 §6"),
    500: ("AUTH not recognised, or an AUTH line too long for the server", "RFC 4954 §6"),
    501: ("cancelled, or the base64 was malformed", "RFC 4954 §4"),
    502: ("AUTH not implemented: this server does not offer authentication", "RFC 5321 §4.2.4"),
    503: ("bad sequence: already authenticated, or AUTH inside a mail transaction", "RFC 4954 §4"),
    504: ("mechanism not supported: pick one the EHLO reply advertises", "RFC 4954 §4"),
    530: ("authentication required (some servers mean: use STARTTLS first)", "RFC 4954 §6"),
    534: ("mechanism too weak for this server: try another one, or an app password", "RFC 4954 §6"),
    535: ("credentials rejected: check user name and password", "RFC 4954 §6"),
    538: ("encryption required for this mechanism: use STARTTLS first", "RFC 4954 §6"),
}


def auth_outcome(code: int, enhanced: str | None, user: str | None) -> str:
    """The final AUTH reply in words, with the RFC section that defines it."""
    status = f"{code} {enhanced}" if enhanced else str(code)
    if code == 334:
        return f"the server wants another answer ({status}, RFC 4954 §4)"
    known = _OUTCOMES.get(code)
    if known is None:
        kind = "succeeded" if 200 <= code < 300 else "failed"
        return f"AUTH {kind} with an unexpected reply ({status}; see RFC 4954 §6)"
    words, reference = known
    if code == 235 and user:
        words = f"authenticated as {user}"
    elif code == 535 and (user is None or "@" not in user):
        words += "; some servers want the full address (user@domain) as the user name"
    return f"{words} ({status}, {reference})"
