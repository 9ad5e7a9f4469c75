"""Strict base64 for SMTP AUTH (RFC 4954 §4): encode, and decode with reasons in words."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
"""The base64 alphabet SMTP uses (not the URL-safe one)."""
B64_TOKEN_CHARS = B64_CHARS | {"="}
_PADDING = {0: "", 2: "==", 3: "="}


def b64(data: bytes) -> str:
    """Standard base64 with padding (what SMTP AUTH uses)."""
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class B64Result:
    """Outcome of ``decode_b64``: ``data`` or an ``error`` in words, plus ``warnings``."""

    data: bytes | None
    error: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.data is not None


def _char_name(ch: str) -> str:
    names = {" ": "space", "\t": "tab", "\r": "CR", "\n": "LF"}
    return names.get(ch, repr(ch))


def decode_b64(text: str) -> B64Result:
    """Strict base64 decoding for AUTH; never raises.

    ``""`` and ``"="`` are zero-length data (RFC 4954).  Leading or trailing whitespace is
    ignored with a warning; anything else that strict servers refuse is an error that says
    what is wrong and where (positions count from 1).
    """
    warnings: list[str] = []
    stripped = text.strip()
    if stripped != text:
        warnings.append("leading or trailing whitespace ignored (a strict server rejects it)")
    offset = len(text) - len(text.lstrip())
    if stripped in ("", "="):
        return B64Result(b"", None, tuple(warnings))
    first_pad: int | None = None
    for i, ch in enumerate(stripped):
        pos = offset + i + 1
        if ch == "=":
            if first_pad is None:
                first_pad = i
        elif ch in B64_CHARS:
            if first_pad is not None:
                return B64Result(None, f"data after padding '=' at position {pos}")
        elif ch.isspace():
            return B64Result(None, f"whitespace ({_char_name(ch)}) at position {pos}")
        else:
            hint = ""
            if ch in "-_":
                hint = " ('-' and '_' are URL-safe base64; SMTP uses '+' and '/')"
            return B64Result(None, f"invalid character {_char_name(ch)} at position {pos}{hint}")
    body = stripped if first_pad is None else stripped[:first_pad]
    pad = len(stripped) - len(body)
    rem = len(body) % 4
    if rem == 1:
        return B64Result(
            None,
            f"impossible length: {len(body)} characters before padding leave one over "
            "(one is missing or extra)",
        )
    expected = _PADDING[rem]
    if pad != len(expected):
        if pad == 0:
            error = f"missing padding: expected {expected!r} at the end"
        elif not expected:
            error = f"unexpected padding {'=' * pad!r}: the data is already a multiple of 4"
        else:
            error = f"wrong padding {'=' * pad!r}: expected {expected!r}"
        return B64Result(None, error)
    data = base64.b64decode(stripped, validate=True)
    canonical = b64(data)
    if canonical != stripped:
        warnings.append(
            f"non-canonical encoding: unused bits are not zero (canonical form {canonical}); "
            "strict decoders reject it"
        )
    return B64Result(data, None, tuple(warnings))


def lenient_b64(text: str) -> bytes | None:
    """Best-effort decoding (whitespace and padding repaired): what a lenient server reads.

    For classifying and explaining lines only; never to decide what is sent.
    """
    body = "".join(text.split()).rstrip("=")
    if len(body) % 4 == 1 or any(ch not in B64_CHARS for ch in body):
        return None
    try:
        return base64.b64decode(body + _PADDING[len(body) % 4], validate=True)
    except (binascii.Error, ValueError):
        return None
