"""``explain(query)``: answer a reply code, enhanced code, reply line, keyword or verb."""

from __future__ import annotations

import base64
import binascii
import re

from ..protocol.replies import parse_reply_line
from .codes import (
    ENHANCED_CLASSES,
    ENHANCED_DETAILS,
    REPLY_CATEGORIES,
    REPLY_CLASSES,
    REPLY_CODES,
    SUBJECTS,
)
from .keywords import KEYWORDS
from .mailsec import TOPICS

__all__ = ["explain"]

_DIRECTION = re.compile(r"^(?:~>|<~|->|<-|[<>]|[CS]:)\s+")
_ENHANCED = re.compile(r"^([245Xx])\.(\d{1,3})\.(\d{1,3})$")
_ENHANCED_PREFIX = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})(?:\s|$)")


def _explain_code(code: str) -> list[str] | None:
    """Lines for a three-digit reply code, or None when its class is not 2-5."""
    klass = REPLY_CLASSES.get(code[0])
    category = REPLY_CATEGORIES.get(code[1])
    if klass is None or category is None:
        return None
    known = REPLY_CODES.get(int(code))
    if known is None:
        first = f"{code}: not a standard reply code; {category} (RFC 5321 §4.2.1)"
    else:
        meaning, source = known
        first = f"{code}: {meaning} ({source})"
    return [first, f"{klass} (RFC 5321 §4.2.1)"]


def _explain_enhanced(code: str) -> list[str] | None:
    """One line for an RFC 3463 code ``class.subject.detail``, or None if the subject is unknown."""
    match = _ENHANCED.match(code)
    if match is None:
        return None
    klass, subject, detail = match[1].upper(), int(match[2]), int(match[3])
    if subject not in SUBJECTS:
        return None
    subject_name, section = SUBJECTS[subject]
    known = ENHANCED_DETAILS.get((subject, detail))
    if known is None:
        meaning, source = f"detail {detail} is not registered", f"RFC 3463 {section}"
    else:
        meaning, source = known[0], known[1] or f"RFC 3463 {section}"
    shown = f"{klass}.{subject}.{detail}"
    return [f"{shown}: {ENHANCED_CLASSES[klass]} · {subject_name} · {meaning} ({source})"]


def _explain_reply(code: str, rest: str) -> list[str] | None:
    lines = _explain_code(code)
    if lines is None:
        return None
    rest = rest.strip()
    enhanced = _ENHANCED_PREFIX.match(rest)
    if enhanced is not None:
        lines += _explain_enhanced(enhanced[1]) or []
        rest = rest[enhanced.end() :].strip()
    word = rest.split(" ", 1)[0].upper()
    word = "AUTH=" if word.startswith("AUTH=") else word.split("=", 1)[0]
    if code == "250" and word in KEYWORDS:
        lines += KEYWORDS[word]
    if code == "334" and rest:
        decoded = _decode_base64(rest)
        if decoded is not None:
            lines.append(f"the challenge decodes to {decoded!r}")
    return lines


def _decode_base64(text: str) -> str | None:
    """``text`` decoded from base64 when that gives printable text (NULs allowed)."""
    try:
        decoded = base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded if decoded.replace("\0", "").isprintable() else None


def explain(query: str) -> list[str] | None:
    """Explain a reply code, enhanced status code, reply line, EHLO keyword or verb.

    Case-insensitive; a transcript direction marker (``<``, ``>``…) in front is
    ignored.  Returns the lines to show, or None when there is nothing to say.
    """
    text = _DIRECTION.sub("", query.strip()).strip()
    if not text:
        return None
    if text.upper() in TOPICS:  # DANE, TLSA, MTA-STS (issue 17)
        return list(TOPICS[text.upper()])
    reply = parse_reply_line(text)  # the one reply-line grammar (protocol.replies)
    if reply is not None:
        return _explain_reply(str(reply.code), reply.text)
    word = re.split(r"[\s=:]", text, maxsplit=1)[0]
    if _ENHANCED.match(word):
        return _explain_enhanced(word)
    word = word.upper()
    if word == "AUTH" and text[4:5] == "=":
        word = "AUTH="  # the pre-standard EHLO form, or the MAIL FROM parameter
    lines = KEYWORDS.get(word)
    return list(lines) if lines is not None else None
