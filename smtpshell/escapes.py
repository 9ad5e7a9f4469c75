"""How text from outside the program is shown: one function for the terminal.

Every string that did not come from this program (server replies, certificate fields,
file and transcript contents, names the user typed that are echoed back) goes through
``for_terminal`` before it is printed, so that only smtpshell's own colour codes ever
reach the terminal.  What it escapes (REFERENCE: terminal safety):

* C0 controls (U+0000-U+001F: ESC, BEL, BS, CR, LF, TAB…) and DEL (U+007F);
* C1 controls (U+0080-U+009F; U+009B is a one-character CSI on many terminals);
* Unicode format characters (category Cf: bidi overrides and isolates U+202A-U+202E,
  U+2066-U+2069 ("Trojan Source", CVE-2021-42574), zero-width U+200B-U+200F, U+2060-U+2064,
  U+FEFF, soft hyphen, tag characters…), line and paragraph separators (U+2028, U+2029);
* lone surrogates: bytes that were not UTF-8, decoded with ``surrogateescape``, are shown
  as the byte they were (``\\xNN``).

Escapes read as they would in Python: ``\\x1b``, ``\\u202e``, ``\\U000e0041``.  Backslashes
themselves are left alone, so ordinary text stays readable.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["escape_char", "for_terminal", "for_terminal_bytes", "is_terminal_safe"]

_ASCII_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def escape_char(ch: str) -> str:
    """One unsafe character as an escape (``\\x1b``, ``\\u202e``; a surrogateescape byte as
    ``\\xNN``)."""
    o = ord(ch)
    if 0xDC80 <= o <= 0xDCFF:
        return f"\\x{o - 0xDC00:02x}"
    if o <= 0xFF:
        return f"\\x{o:02x}"
    if o <= 0xFFFF:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def for_terminal(text: str) -> str:
    """``text`` with every character that could drive or deceive a terminal escaped."""
    if text.isascii():
        if text.isprintable():
            return text
        return _ASCII_UNSAFE.sub(lambda m: escape_char(m.group()), text)
    return "".join(escape_char(ch) if _unsafe(ch) else ch for ch in text)


def for_terminal_bytes(data: bytes) -> str:
    """Bytes from outside for the terminal: UTF-8 where valid, ``\\xNN`` for other bytes."""
    return for_terminal(data.decode("utf-8", errors="surrogateescape"))


def is_terminal_safe(text: str) -> bool:
    """True when ``for_terminal`` would leave ``text`` as it is."""
    return for_terminal(text) == text
