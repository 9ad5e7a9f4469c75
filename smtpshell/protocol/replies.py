"""The reply grammar of RFC 5321 §4.2: lines in, complete replies out.

This is the one reply-line grammar of the package: a code 2xx-5xx, then a space, a
hyphen (more lines follow) or the end of the line.  The parser, transcripts, the mock
server and /explain all read reply lines with it (``parse_reply_line``), so they agree
on what a reply line is.

``ReplyParser`` accepts bytes in any split and yields ``Reply`` or ``ProtocolError``
events.  Memory is bounded: a line longer than ``max_line`` bytes without a line end,
or a reply of more than ``max_lines`` lines, is a fatal ``ProtocolError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ..escapes import for_terminal_bytes
from .events import ProtocolError, Reply

MAX_LINE = 8192
"""Accept reply lines up to this many bytes (RFC 5321 allows 512; longer ones are flagged)."""
MAX_LINES = 1000
RFC_REPLY_LINE = 512

_REPLY_LINE = r"([2-5][0-9][0-9])([ -]|$)"
_CODE = re.compile(_REPLY_LINE.encode("ascii"))
_CODE_TEXT = re.compile(_REPLY_LINE, re.ASCII)
_ENHANCED = re.compile(r"([245])\.([0-9]{1,3})\.([0-9]{1,3})(?=\s|$)", re.ASCII)


def enhanced_code(code: int, text: str) -> str | None:
    """The RFC 3463 enhanced status code at the start of ``text``, if it fits ``code``."""
    m = _ENHANCED.match(text)
    if m and int(m.group(1)) == code // 100:
        return m.group(0)
    return None


@dataclass(frozen=True)
class ReplyLine:
    """One reply line read with the grammar: ``250-SIZE 10`` -> 250, not final, "SIZE 10"."""

    code: int
    final: bool
    text: str
    """What follows the code and its separator."""

    @property
    def enhanced(self) -> str | None:
        return enhanced_code(self.code, self.text)


def parse_reply_line(line: str) -> ReplyLine | None:
    """``line`` (without its line end) read as a reply line, or None when it is not one."""
    m = _CODE_TEXT.match(line)
    if m is None:
        return None
    return ReplyLine(int(m.group(1)), m.group(2) != "-", line[m.end():])


_CONTROL_BYTES = re.compile(rb"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")


def decode_line(raw: bytes) -> str:
    """A reply line for display: UTF-8 where valid, ``\\xNN`` for any other byte.

    Escaped once, here, with the one terminal function (``escapes.for_terminal_bytes``):
    controls (ESC, C1, TAB), bidi and invisible characters, so a server can neither drive
    nor deceive the user's terminal through any consumer of ``Reply.lines``.  ``Reply.raw``
    keeps the bytes as received.
    """
    return for_terminal_bytes(raw)


class _Partial:
    """The lines of a multi-line reply read so far.

    A plain class, not a dataclass: a private value, one fewer class to build at start-up.
    """

    __slots__ = ("anomalies", "code", "lines", "raw")

    def __init__(self, code: int) -> None:
        self.code = code
        self.lines: list[str] = []
        self.raw: list[bytes] = []
        self.anomalies: list[str] = []


class ReplyParser:
    """Incremental reply parser.  ``feed()`` bytes, iterate ``events()``."""

    def __init__(self, *, max_line: int = MAX_LINE, max_lines: int = MAX_LINES) -> None:
        self.max_line = max_line
        self.max_lines = max_lines
        self._buf = bytearray()
        self._partial: _Partial | None = None
        self.failed = False

    @property
    def buffered(self) -> bytes:
        """Bytes received but not yet part of a complete line."""
        return bytes(self._buf)

    def take_buffer(self) -> bytes:
        """Remove and return everything not yet parsed (complete lines included)."""
        data = bytes(self._buf)
        self._buf.clear()
        self._partial = None
        return data

    def take_incomplete(self) -> list[bytes]:
        """Remove and return what an unfinished reply consists of so far.

        The raw lines of a multi-line reply whose last line never came, then any bytes
        without a line end.  Used when the connection ends, so nothing received is lost.
        """
        if self.failed:  # what followed a fatal error is not a reply
            self._buf.clear()
            return []
        lines = list(self._partial.raw) if self._partial is not None else []
        if self._buf:
            lines.append(bytes(self._buf))
        self._buf.clear()
        self._partial = None
        return lines

    def feed(self, data: bytes) -> Iterator[Reply | ProtocolError]:
        """Add bytes; yield every event they complete."""
        if self.failed:
            return
        self._buf += data
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > self.max_line:
                    self.failed = True
                    size = len(self._buf)
                    self._buf.clear()
                    yield ProtocolError(
                        message=f"reply line longer than {self.max_line} bytes "
                        f"with no line end ({size} bytes so far); giving up",
                        fatal=True,
                    )
                return
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            bare_lf = not line.endswith(b"\r")
            if not bare_lf:
                line = line[:-1]
            yield from self._line(line, bare_lf)
            if self.failed:
                return

    def _line(self, line: bytes, bare_lf: bool) -> Iterator[Reply | ProtocolError]:
        anomalies: list[str] = []
        if bare_lf:
            anomalies.append("line ended with a bare LF, not CRLF")
        if len(line) + 2 > RFC_REPLY_LINE:
            anomalies.append(f"line of {len(line) + 2} bytes exceeds RFC 5321's 512")
        if b"\x00" in line:
            anomalies.append("NUL byte in reply")
        if b"\r" in line:
            anomalies.append("stray CR inside reply line")
        if _CONTROL_BYTES.search(line):
            anomalies.append("control characters in reply (shown as \\xNN)")
        try:
            line.decode("ascii")
        except UnicodeDecodeError:
            anomalies.append("non-ASCII bytes in reply")
        m = _CODE.match(line)
        if m is None:
            yield ProtocolError(
                message="malformed reply line (no three-digit code 2xx-5xx): "
                + decode_line(line[:80]),
                raw=line,
            )
            return
        code = int(m.group(1))
        final = m.group(2) != b"-"
        p = self._partial
        if p is None:
            p = self._partial = _Partial(code)
        elif code != p.code:
            anomalies.append(f"mixed codes in one reply: {p.code} then {code}")
        p.lines.append(decode_line(line))
        p.raw.append(line)
        p.anomalies.extend(a for a in anomalies if a not in p.anomalies)
        if len(p.lines) > self.max_lines:
            self.failed = True
            self._partial = None
            yield ProtocolError(
                message=f"multi-line reply longer than {self.max_lines} lines; giving up",
                fatal=True,
            )
            return
        if final:
            self._partial = None
            first = p.lines[0][4:]
            yield Reply(
                code=p.code,
                lines=tuple(p.lines),
                raw=tuple(p.raw),
                enhanced=enhanced_code(p.code, first),
                anomalies=tuple(p.anomalies),
            )


@dataclass(frozen=True)
class Capabilities:
    """What an EHLO (or LHLO) reply advertised (RFC 5321 §4.1.1.1)."""

    keywords: Mapping[str, str] = field(default_factory=dict)
    """Upper-case keyword -> its parameters as one string ("" when none)."""

    @classmethod
    def from_reply(cls, reply: Reply) -> Capabilities:
        # Case is folded on the server's bytes, then the text is escaped, once: upper-casing
        # the escaped text would show "\x1b" as "\X1B", an escape that means nothing.
        if len(reply.raw) == len(reply.lines):
            lines = [raw[4:] for raw in reply.raw[1:]]
        else:  # a reply built without its bytes: its (escaped) text; escaping is idempotent
            lines = [text.encode("utf-8", "surrogateescape") for text in reply.texts[1:]]
        keywords: dict[str, str] = {}
        for line in lines:
            word, _, raw_params = line.strip(b" ").partition(b" ")
            if not word:
                continue
            upper = word.upper()
            if upper.startswith(b"AUTH="):  # legacy "250-AUTH=LOGIN PLAIN"
                upper, raw_params = b"AUTH", word[5:] + b" " + raw_params
            key = for_terminal_bytes(upper)
            if key == "AUTH":
                raw_params = raw_params.upper()  # mechanism names are case-insensitive
            params = for_terminal_bytes(raw_params.strip(b" "))
            if key == "AUTH" and "AUTH" in keywords:
                params = f"{keywords['AUTH']} {params}".strip()
            keywords[key] = params
        return cls(keywords)

    def __contains__(self, keyword: object) -> bool:
        return isinstance(keyword, str) and keyword.upper() in self.keywords

    @property
    def auth_mechanisms(self) -> tuple[str, ...]:
        seen: list[str] = []
        for word in self.keywords.get("AUTH", "").split():
            mech = word if "\\" in word else word.upper()  # never upper-case an escape
            if mech not in seen:
                seen.append(mech)
        return tuple(seen)

    @property
    def size_limit(self) -> int | None:
        value = self.keywords.get("SIZE", "").strip()
        return int(value) if value.isdigit() else None
