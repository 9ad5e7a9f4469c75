"""Composing mail: message files as DATA or BDAT payloads, quick messages, raw bytes.

Standard library only.  Message files are streamed chunk by chunk, never read whole:

- DATA (RFC 5321): every line ending becomes CRLF (bare LF and bare CR too, §2.3.8;
  SMTP smuggling, CVE-2023-51764/51765/51766), every line starting with "." gets another "."
  (§4.5.2), the body ends with CRLF and the terminating ".\\r\\n" follows (§4.1.1.4).
- BDAT (RFC 3030): the same line endings, but no dot-stuffing and no terminator; each
  chunk is sent as exactly ``BDAT n`` octets.

The size a server stores (and compares with its SIZE limit, RFC 1870) is the
CRLF-normalised message, without dot-stuffing and without the terminator.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

DEFAULT_CHUNK_SIZE = 256 * 1024
BINARY_PROBE = 8192
"""How much of a file ``check_message_file`` reads looking for NUL bytes."""
MAX_LINE_OCTETS = 1000
"""RFC 5321 §4.5.3.1.6: a text line, CRLF included."""

TERMINATOR = b".\r\n"


@dataclass
class DataStats:
    """What streaming a message did; filled in as the chunks go by."""

    lines: int = 0
    message_bytes: int = 0
    """The message as the server stores it (the SIZE of RFC 1870)."""
    wire_bytes: int = 0
    """What went on the wire: dot-stuffed, terminator included when there is one."""
    dot_stuffed: int = 0
    bare_line_endings: int = 0
    """Bare LF or bare CR line endings that were turned into CRLF."""
    long_lines: int = 0
    """Lines longer than 1000 octets on the wire (RFC 5321 §4.5.3.1.6)."""
    added_final_crlf: bool = False

    def summary(self) -> str:
        """``1234 lines, 56789 bytes, dot-stuffed 3 lines`` and whatever else is notable."""
        parts = [
            f"{self.lines} line{'s' if self.lines != 1 else ''}",
            f"{self.message_bytes} bytes",
        ]
        if self.dot_stuffed:
            parts.append(f"dot-stuffed {self.dot_stuffed} line{_s(self.dot_stuffed)}")
        if self.bare_line_endings:
            n = self.bare_line_endings
            parts.append(f"{n} bare LF/CR line ending{_s(n)} sent as CRLF")
        if self.added_final_crlf:
            parts.append("added the missing final CRLF")
        if self.long_lines:
            parts.append(
                f"{self.long_lines} line{_s(self.long_lines)} over {MAX_LINE_OCTETS} octets"
            )
        return ", ".join(parts)


def _s(n: int) -> str:
    return "" if n == 1 else "s"


_NOT_CR_LF_DOT = bytes(b for b in range(256) if b not in b"\r\n.")
"""What ``bytes.translate`` deletes to leave only a chunk's CRs, LFs and dots."""


Marks = tuple[int, int, int, bytes]
"""What ``chunk_marks`` found: CRs, LFs, CRLF pairs, and the CRs, LFs and dots in order."""


def chunk_marks(chunk: bytes) -> Marks:
    """The line-ending marks of ``chunk`` in two C passes (see ``_crlf``): a caller that
    looks at the same chunk first (a piped message: a CR inside a line, a "." line)
    passes them to ``feed`` instead of having them counted twice."""
    marks = chunk.translate(None, _NOT_CR_LF_DOT)
    cr = marks.count(b"\r")
    lf = marks.count(b"\n")
    crlf = chunk.count(b"\r\n") if cr and lf else 0
    return cr, lf, crlf, marks


def _crlf(chunk: bytes, found: Marks | None = None) -> tuple[bytes, int, int, bool]:
    """``chunk`` with CRLF line endings, how many line endings it has, how many were
    bare, and whether a line in it may start with a dot (False: none does).

    Two C passes decide the usual case, a chunk whose line endings are all CRLF: it
    goes out unchanged.  ``translate`` keeps only the CRs, LFs and dots (for a text of
    78-octet lines, about 3% of it), which are then counted cheaply, and ``count``
    finds the CRLF pairs (adjacency that ``translate`` loses).  "\r\n." in the chunk
    leaves "\n." among the marks, so its absence rules dot-stuffing out.
    """
    cr, lf, crlf, marks = found if found is not None else chunk_marks(chunk)
    may_stuff = b"\n." in marks
    if cr == lf == crlf:
        return chunk, crlf, 0, may_stuff
    if not cr:
        return chunk.replace(b"\n", b"\r\n"), lf, lf, True
    if not lf:
        return chunk.replace(b"\r", b"\r\n"), cr, cr, True
    total = cr + lf - crlf
    text = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    return text, total, total - crlf, True


def _has_long_line(text: bytes, first_lf: int, last_lf: int, limit: int) -> bool:
    """Is a line between the LFs at ``first_lf`` and ``last_lf`` longer than ``limit``?

    ``text`` has CRLF line endings.  Hops from each LF to the last LF within reach of
    it: one C ``rfind`` per ``limit`` bytes or so, instead of a bytes object per line.
    """
    reach = limit + 2  # the line, its CR and the next LF
    p = first_lf
    while last_lf - p > reach:
        q = text.rfind(b"\n", p + 1, p + reach + 1)
        if q == -1:
            return True
        p = q
    return False


class _Normaliser:
    """The streaming transformation, one chunk at a time (state carries across chunks)."""

    def __init__(self, stats: DataStats, *, stuff: bool, measure: bool = True) -> None:
        self.stats = stats
        self.stuff = stuff
        self.measure = measure  # False: the caller finds long lines (stats.long_lines 0)
        self._skip_lf = False  # the last chunk ended in CR: a leading LF belongs to it
        self._at_line_start = True
        self._line_len = 0  # wire octets of the unfinished line so far

    def feed(self, chunk: bytes, marks: Marks | None = None) -> bytes:
        """``chunk`` as it goes on the wire; ``marks``: ``chunk_marks(chunk)`` if the
        caller has them."""
        stats = self.stats
        if self._skip_lf and chunk.startswith(b"\n"):
            marks = None
            chunk = chunk[1:]
            stats.bare_line_endings -= 1  # that CR was counted as bare; it was a CRLF
        self._skip_lf = False
        if not chunk:
            return b""
        self._skip_lf = chunk.endswith(b"\r")
        text, endings, bare, may_stuff = _crlf(chunk, marks)
        stats.bare_line_endings += bare
        stats.message_bytes += len(text)
        stats.lines += endings
        if self.stuff:
            before = len(text)
            if may_stuff:
                text = text.replace(b"\r\n.", b"\r\n..")
            if self._at_line_start and text.startswith(b"."):
                text = b"." + text
            stats.dot_stuffed += len(text) - before
        self._at_line_start = text.endswith(b"\r\n")
        if self.measure:
            self._measure(text)
        stats.wire_bytes += len(text)
        return text

    def _measure(self, text: bytes) -> None:
        """Count lines over the RFC limit, across chunk boundaries, at C speed."""
        limit = MAX_LINE_OCTETS - 2
        first = text.find(b"\r\n")
        if first == -1:
            self._line_len += len(text)
            return
        if self._line_len + first > limit:
            self.stats.long_lines += 1
        last = text.rfind(b"\r\n")
        if last > first and _has_long_line(text, first + 1, last + 1, limit):
            middle = text[first + 2 : last].split(b"\r\n")
            self.stats.long_lines += sum(1 for p in middle if len(p) > limit)
        self._line_len = len(text) - last - 2

    def finish(self) -> bytes:
        """The final CRLF when the last line lacked one."""
        if self._at_line_start:
            return b""
        self.stats.added_final_crlf = True
        if self._line_len > MAX_LINE_OCTETS - 2:
            self.stats.long_lines += 1
        self.stats.lines += 1
        self.stats.message_bytes += 2
        self.stats.wire_bytes += 2
        self._at_line_start = True
        self._line_len = 0
        return b"\r\n"


def data_normaliser(stats: DataStats, *, long_lines: bool = True) -> _Normaliser:
    """The DATA transformation of ``iter_data_chunks`` for chunks read elsewhere (a message
    piped on stdin after DATA): ``feed(chunk)`` returns it with CRLF line endings and
    dot-stuffed, the state carried across chunks; ``finish()`` the missing final CRLF.
    ``long_lines=False``: the caller finds the lines over 1000 octets itself (one pass
    fewer over each chunk) and ``stats.long_lines`` stays 0."""
    return _Normaliser(stats, stuff=True, measure=long_lines)


def _read_chunks(fileobj: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    while chunk := fileobj.read(chunk_size):
        yield chunk


def iter_data_chunks(
    fileobj: BinaryIO,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    terminator: bool = True,
    stats: DataStats | None = None,
) -> Iterator[bytes]:
    """The DATA payload of a message file, chunk by chunk (never the whole file at once).

    CRLF line endings, dot-stuffed, ending with CRLF, then ".\\r\\n" unless
    ``terminator`` is false (when the caller sends the final "." itself).  Chunks are
    never empty; one holds at most about twice ``chunk_size`` bytes.
    """
    norm = _Normaliser(stats if stats is not None else DataStats(), stuff=True)
    for chunk in _read_chunks(fileobj, chunk_size):
        out = norm.feed(chunk)
        if out:
            yield out
    tail = norm.finish()
    if terminator:
        norm.stats.wire_bytes += len(TERMINATOR)
        tail += TERMINATOR
    if tail:
        yield tail


def bdat_chunks(
    fileobj: BinaryIO,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    stats: DataStats | None = None,
) -> Iterator[tuple[bytes, bool]]:
    """``(octets, last)`` for ``BDAT len(octets) [LAST]`` (RFC 3030).

    Line endings become CRLF and the message ends with CRLF, as with DATA; there is no
    dot-stuffing and no terminator.  An empty file gives one ``(b"", True)``.
    """
    norm = _Normaliser(stats if stats is not None else DataStats(), stuff=False)
    held: bytes | None = None
    for chunk in _read_chunks(fileobj, chunk_size):
        out = norm.feed(chunk)
        if not out:
            continue
        if held is not None:
            yield held, False
        held = out
    tail = norm.finish()
    if held is None:
        yield tail, True
    else:
        yield held + tail, True


def normalise_line_endings(data: bytes) -> bytes:
    """Every CRLF, bare CR and bare LF as CRLF."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def scan_message(
    path: str | os.PathLike[str], chunk_size: int = DEFAULT_CHUNK_SIZE
) -> DataStats:
    """Stream the file once, sending nothing: its size as stored, lines, what will change."""
    stats = DataStats()
    norm = _Normaliser(stats, stuff=False)
    with open(path, "rb") as fileobj:
        for chunk in _read_chunks(fileobj, chunk_size):
            norm.feed(chunk)
    norm.finish()
    return stats


def message_size(path: str | os.PathLike[str], chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """The octets a server stores for this file (RFC 1870 SIZE), counted by streaming."""
    return scan_message(path, chunk_size).message_bytes


def size_parameter(size: int) -> str:
    """The MAIL FROM parameter declaring the message size (RFC 1870 §6)."""
    return f"SIZE={size}"


def check_message_file(
    path: str | os.PathLike[str], size_limit: int | None = None
) -> str | None:
    """A one-line problem with sending this file as a message, or None when it is fine."""
    name = os.fspath(path)
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return f"{name}: no such file"
    except OSError as exc:
        return f"{name}: {exc.strerror or exc}"
    if p.is_dir():
        return f"{name}: is a directory, not a message file"
    if not stat.S_ISREG(st.st_mode):
        return f"{name}: not a regular file (a pipe or device); save the message to a file"
    try:
        with open(p, "rb") as fileobj:
            head = fileobj.read(BINARY_PROBE)
    except OSError as exc:
        return f"{name}: cannot read it ({exc.strerror or exc})"
    if not head:
        return f"{name}: is empty (a message needs at least a header)"
    if b"\0" in head:
        return (
            f"{name}: looks binary (NUL bytes in its first {BINARY_PROBE} bytes); "
            "send a text message (RFC 5322), or a MIME-encoded one"
        )
    if size_limit is not None:
        # Normalising never shrinks a file, so its size on disk is a lower bound.
        size = st.st_size if st.st_size > size_limit else message_size(p)
        if size > size_limit:
            return (
                f"{name}: {size} bytes, more than the server's SIZE limit of "
                f"{size_limit} (RFC 1870)"
            )
    return None


# ---- quick messages ----------------------------------------------------------------


def _domain_of(address: str) -> str:
    domain = address.strip().strip("<>").rpartition("@")[2]
    return domain if domain and "@" in address else "localhost"


def quick_message(
    from_addr: str,
    to_addrs: Sequence[str],
    subject: str = "smtpshell test message",
    body: str = "This is a test message sent with smtpshell.\n",
    date: str | None = None,
    message_id: str | None = None,
) -> bytes:
    """A minimal valid RFC 5322 message with CRLF line endings (``email`` with
    ``policy.SMTP``).

    Non-ASCII in the subject is RFC 2047-encoded; a non-ASCII body is sent as
    quoted-printable UTF-8 text with MIME headers, so it needs no 8BITMIME.
    Raises ValueError for CR or LF inside a header value.
    """
    # imported here: batch mode that sends no /msg never needs the email package
    import email.policy
    import email.utils
    from email.message import EmailMessage

    sender = from_addr.strip()
    headers = {
        "From": sender,
        "To": ", ".join(a.strip() for a in to_addrs),
        "Subject": subject,
        "Date": date or email.utils.formatdate(localtime=True),
        "Message-ID": message_id or email.utils.make_msgid("smtpshell", domain=_domain_of(sender)),
    }
    msg = EmailMessage(policy=email.policy.SMTP)
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise ValueError(f"{name} cannot contain CR or LF")
        msg[name] = value
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    if text.isascii():
        msg.set_payload(text)  # plain 7-bit text needs no MIME headers
    else:
        msg.set_content(text, cte="quoted-printable")
    return msg.as_bytes()


# ---- raw bytes ---------------------------------------------------------------------

_SMUGGLING = " (SMTP smuggling pattern)"


@functools.cache
def _notable() -> tuple[tuple[re.Pattern[bytes], str, str], ...]:
    """The patterns ``notable_sequences`` looks for (compiled on first use, not at start)."""
    return (
        (re.compile(rb"(?<!\r)\n\.\n"), "<LF>.<LF>", _SMUGGLING),
        (re.compile(rb"\r\n\.\n"), "<CR><LF>.<LF>", _SMUGGLING),
        (re.compile(rb"(?<!\r)\n\.\r\n"), "<LF>.<CR><LF>", _SMUGGLING),
        (re.compile(rb"\r\n\.\r\n"), "<CR><LF>.<CR><LF>", " (ends a message in DATA)"),
        (re.compile(rb"(?<!\r)\n"), "bare LF", ""),
        (re.compile(rb"\r(?!\n)"), "bare CR", ""),
        (re.compile(rb"\0"), "NUL", ""),
    )


def notable_sequences(data: bytes) -> list[str]:
    """Names of the unusual things in raw bytes (empty when there is nothing to say)."""
    found: list[str] = []
    for pattern, name, note in _notable():
        count = len(pattern.findall(data))
        if count:
            found.append(name + ("" if count == 1 else f" {count} times") + note)
    if data and not data.endswith(b"\r\n"):
        found.append("no trailing CRLF")
    return found


def describe_bytes(data: bytes) -> str:
    """What raw bytes are, in one line: bare LF/CR, NUL, smuggling patterns, no CRLF."""
    size = f"{len(data)} byte{_s(len(data))}"
    if not data:
        return f"{size} (nothing)"
    found = notable_sequences(data)
    if not found:
        return f"{size}, CRLF line endings, nothing unusual"
    return f"{size}: " + ", ".join(found)


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "TERMINATOR",
    "DataStats",
    "bdat_chunks",
    "check_message_file",
    "chunk_marks",
    "data_normaliser",
    "describe_bytes",
    "iter_data_chunks",
    "message_size",
    "normalise_line_endings",
    "notable_sequences",
    "quick_message",
    "scan_message",
    "size_parameter",
]
