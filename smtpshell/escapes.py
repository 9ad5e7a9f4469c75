"""How text from outside the program is shown: one function for the terminal.

Every string that did not come from this program (server replies, certificate fields,
file and transcript contents, names the user typed that are echoed back) goes through
``for_terminal`` before it is printed, so that only smtpshell's own colour codes ever
reach the terminal.  What it escapes:

* C0 controls (U+0000-U+001F: ESC, BEL, BS, CR, LF, TAB…) and DEL (U+007F);
* C1 controls (U+0080-U+009F; U+009B is a one-character CSI on many terminals);
* Unicode format characters (category Cf: bidi overrides and isolates U+202A-U+202E,
  U+2066-U+2069 ("Trojan Source", CVE-2021-42574), zero-width U+200B-U+200F, U+2060-U+2064,
  U+FEFF, soft hyphen, tag characters…), line and paragraph separators (U+2028, U+2029);
* lone surrogates: bytes that were not UTF-8, decoded with ``surrogateescape``, are shown
  as the byte they were (``\\xNN``);
* unassigned code points (category Cn: a later Unicode may make them format characters,
  and the terminal may know a later Unicode than Python) and the invisible fillers and joiners
  that are letters or marks by category (U+034F, U+115F, U+1160, U+17B4, U+17B5,
  U+180B-U+180D, U+180F, U+3164, U+FFA0).  Variation selectors stay: they only pick a glyph.

Escapes read as they would in Python: ``\\x1b``, ``\\u202e``, ``\\U000e0041``.  Backslashes
themselves are left alone, so ordinary text stays readable, and the function is idempotent:
text escaped twice reads as text escaped once (never ``\\\\x1b``).  The price: a peer that
sends the four characters ``\\x1b`` is shown as one that sends ESC (a reply that really
carried ESC is flagged ``control characters in reply``), and a stray byte 0x80-0x9F reads
like the C1 control of the same number.  On text without backslashes or stray bytes the
function is injective: two different strings never look alike once escaped.

The rule for layers below the screen (one rule, everywhere): a layer that turns wire bytes
into text *for showing* may escape them with this function, once, at that boundary;
``protocol.replies.decode_line`` does, so a ``Reply``'s ``lines`` are safe wherever they go
(screen, /explain, hints) and its ``raw`` bytes keep what was received (the transcript
recorder writes those, and replay matches against them: a report then escapes them once,
in the transcript's own syntax).  The screen escapes again in any case: the terminal
writer (``ui.render.Renderer``) passes every string it prints through ``for_terminal`` before
it adds its own colour, so a printer that forgot does no harm.  Printers that do not use the
Renderer (stderr lines, replay and mock reports, ``show``) call ``for_terminal`` for one line
or ``for_terminal_lines`` for a block whose newlines are the program's own.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "escape_char",
    "for_terminal",
    "for_terminal_bytes",
    "for_terminal_lines",
    "format_escapes",
    "is_terminal_safe",
    "parse_escapes",
]

_ASCII_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Cn"})
_INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0")


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
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES or ch in _INVISIBLE


def for_terminal(text: str) -> str:
    """``text`` with every character that could drive or deceive a terminal escaped."""
    if text.isascii():
        if text.isprintable():
            return text
        return _ASCII_UNSAFE.sub(lambda m: escape_char(m.group()), text)
    if text.isprintable() and _INVISIBLE.isdisjoint(text):
        return text  # no Cc, Cf, Cs, Cn, Zl or Zp: Python's isprintable() excludes them all
    return "".join(escape_char(ch) if _unsafe(ch) else ch for ch in text)


def for_terminal_bytes(data: bytes) -> str:
    """Bytes from outside for the terminal: UTF-8 where valid, ``\\xNN`` for other bytes."""
    return for_terminal(data.decode("utf-8", errors="surrogateescape"))


def for_terminal_lines(text: str) -> str:
    """A block of lines: each line escaped, the ``\\n`` between them kept (they are the
    program's own line breaks; a CR, or any other control, is escaped)."""
    if text.isascii() and text.replace("\n", "").isprintable():
        return text
    return "\n".join(for_terminal(line) for line in text.split("\n"))


def is_terminal_safe(text: str) -> bool:
    """True when ``for_terminal`` would leave ``text`` as it is."""
    return for_terminal(text) == text


# ---- the escapes a user types (/raw, /b64) and the shell shows bytes in -----------------

_TYPED_ESCAPES = {"0": b"\0", "n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\"}
_SHOWN_ESCAPES = {"\0": "\\0", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_KNOWN = r"(known: \0 \n \r \t \\ \xNN)"


def parse_escapes(text: str) -> bytes:
    r"""Bytes from typed text with ``\0 \n \r \t \\ \xNN`` escapes, the rest as UTF-8.

    The one rule for /raw and /b64.  ValueError names the position (counted from 1).
    """
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        j = text.find("\\", i)
        chunk = text[i:] if j < 0 else text[i:j]
        try:
            out += chunk.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"the character at position {i + exc.start + 1} is not valid Unicode"
            ) from None
        if j < 0:
            break
        if j + 1 >= n:
            raise ValueError(f"lone backslash at position {j + 1} (write \\\\ for a backslash)")
        code = text[j + 1]
        if code in _TYPED_ESCAPES:
            out += _TYPED_ESCAPES[code]
            i = j + 2
        elif code == "x":
            digits = text[j + 2 : j + 4]
            if len(digits) != 2 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError(f"\\x at position {j + 1} needs two hex digits, e.g. \\x0d")
            out.append(int(digits, 16))
            i = j + 4
        else:
            raise ValueError(f"unknown escape \\{code} at position {j + 1} {_KNOWN}")
    return bytes(out)


def format_escapes(data: bytes) -> str:
    r"""Bytes as typed text, the inverse of ``parse_escapes``: ``\0 \n \r \t \\``, printable
    text (UTF-8 too) as it is, anything else ``\xNN`` byte by byte.

    ``parse_escapes(format_escapes(data)) == data`` for all data, and the result is
    terminal-safe (printable, no format or bidi characters).
    """
    if data.isascii():
        text = data.decode("ascii")
        if text.isprintable() and "\\" not in text:
            return text
    out: list[str] = []
    for ch in data.decode("utf-8", errors="surrogateescape"):
        if ch in _SHOWN_ESCAPES:
            out.append(_SHOWN_ESCAPES[ch])
        elif ch.isprintable() and not _unsafe(ch) and not 0xDC80 <= ord(ch) <= 0xDCFF:
            out.append(ch)
        else:
            out.append("".join(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogateescape")))
    return "".join(out)
