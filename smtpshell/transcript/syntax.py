"""The smtpshell transcript format (writes v2, reads v1 and v2): reading and writing its text.

The format is specified in ``docs/transcript-format.md``; this module (with the data model in
:mod:`smtpshell.transcript.model`) is its one reader and writer: :func:`parse`, :func:`load`,
:func:`dump` and the escapes. Standard library only.

One concern, so one module past 500 lines: the text of the format, line by line, both ways
(whole texts, and files streamed in bounded memory by :func:`iter_load`).
"""

from __future__ import annotations

import itertools
import os
import re
import stat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import BinaryIO, cast

from smtpshell.transcript.model import (
    _HEADER_KEYS,
    _LONE_SURROGATE_RE,
    _NAME_RE,
    BYTES_VERSION,
    DEFAULT_RULE,
    FORMAT_VERSION,
    MAGIC,
    TLS_MODES,
    ClientBytes,
    ClientLine,
    Comment,
    Elided,
    ElidedBytes,
    Entry,
    Event,
    Header,
    Rule,
    RuleKind,
    SecretRef,
    ServerLine,
    Transcript,
    TranscriptError,
    Volatile,
    _elided_bytes_problem,
    _elided_problem,
    _pattern_problem,
    _secret_problem,
    _volatile_problem,
    parse_count,
    reply_parts,
)

_HEADER_RE = re.compile(r"([a-z][a-z0-9-]*):(?: (.*))?", re.ASCII)
_HEADER_START_RE = re.compile(r"[a-z][a-z0-9-]*:", re.ASCII)
_VERSION_RE = re.compile(r"# smtpshell transcript v([0-9]+)", re.ASCII)
_UNICODE_ESCAPE_RE = re.compile(r"\{([0-9a-fA-F]{1,6})\}")
_ANNOTATION_RE = re.compile(r"~([a-z]+)")
# an annotation word inside a ~glob/~re pattern: almost surely a flag written after it
_LATE_WORD_RE = re.compile(r"(?:^|(?<= ))~(optional|repeat|exact|any|glob|re)(?= |$)")
_FIELD_NAME_RE = re.compile(r"([a-z][a-z0-9-]*)=", re.ASCII)
_BARE_VALUE_RE = re.compile(r'[^\s"\\]*')

# The parser looks only at the characters that need a look: one regex search from the current
# position finds the next one (no Python loop over characters). The alternatives of each regex
# start with different characters, so the first match is where a character-by-character
# reading would stop first, and the errors and their order are that reading's.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")  # raw control characters (model._is_control)
_COMMENT_BAD_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")  # a tab is allowed
_VALUE_STOP_RE = re.compile(r"[\\\x00-\x1f\x7f]")  # header values: escape, control
_BODY_STOP_RE = re.compile(r"\\|\{\{|  ~|[\x00-\x1f\x7f]")  # + placeholder, annotation
_PLACEHOLDER_STOP_RE = re.compile(r"\\|\}\}|[\x00-\x1f\x7f]")  # + end of placeholder
_QUOTED_STOP_RE = re.compile(r'[\\"\x00-\x1f\x7f]')  # + end of quoted value


# --------------------------------------------------------------------------- escapes

_SIMPLE_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\r": "\\r", "\n": "\\n"}
_UNESCAPES = {"\\": "\\", "t": "\t", "r": "\r", "n": "\n", "{": "{", "}": "}", '"': '"'}


def escape_char(c: str) -> str:
    """One character as written in the file (see "Escapes" in the format spec)."""
    if c in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[c]
    o = ord(c)
    if o < 0x20 or o == 0x7F:
        return f"\\x{o:02x}"
    if 0xDC80 <= o <= 0xDCFF:  # a raw byte that isn't UTF-8 (surrogateescape)
        return f"\\x{o - 0xDC00:02x}"
    if not c.isprintable():
        return f"\\u{{{o:x}}}"
    return c


def _as_is(text: str) -> bool:
    """True if :func:`escape_char` leaves every character of ``text`` as it is.

    It does for printable characters but the backslash; control characters and surrogates
    are not printable.
    """
    return text.isprintable() and "\\" not in text


def _final_space(text: str) -> str:
    """A trailing space as ``\\x20``: the reader strips trailing blanks."""
    return text[:-1] + "\\x20" if text.endswith(" ") else text


def escape_text(text: str) -> str:
    """Plain text (a header value, a got line in a diff) in the file's escaped form."""
    if _as_is(text):
        return _final_space(text)
    return _final_space("".join([escape_char(c) for c in text]))


def _render_parts(parts: Sequence[str | Volatile | SecretRef]) -> str:
    out: list[str] = []
    for idx, part in enumerate(parts):
        if isinstance(part, SecretRef):
            out.append(part.placeholder())
        elif isinstance(part, Volatile):
            lit = part.literal
            if _as_is(lit) and "}" not in lit:
                out.append("{{" + part.kind + ":" + lit + "}}")
                continue
            inner = [
                "\\}" if c == "}" and (j + 1 == len(lit) or lit[j + 1] == "}") else escape_char(c)
                for j, c in enumerate(lit)
            ]
            out.append("{{" + part.kind + ":" + "".join(inner) + "}}")
        elif _as_is(part) and "{" not in part and "  ~" not in part:
            out.append(part)  # nothing to escape, no "{{" and no "  ~" to break up
        else:
            before_placeholder = idx + 1 < len(parts)
            for j, c in enumerate(part):
                nxt = part[j + 1] if j + 1 < len(part) else ("{" if before_placeholder else "")
                if c == "{" and nxt == "{":
                    out.append("\\{")
                elif c == "~" and out[-2:] == [" ", " "]:
                    out[-1] = "\\x20"  # keep "  ~" free for annotations
                    out.append("~")
                else:
                    out.append(escape_char(c))
    return _final_space("".join(out))  # out[-1] is " " exactly when the text ends in " "


# --------------------------------------------------------------------------- dump


def _render_value(value: str) -> str:
    # the only printable whitespace is " "
    if value and value.isprintable() and not (" " in value or '"' in value or "\\" in value):
        return value
    return '"' + "".join('\\"' if c == '"' else escape_char(c) for c in value) + '"'


def _format_time(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _annotation(rule: Rule, optional: bool = False, repeat: bool = False) -> str:
    words = [w for w, on in (("~optional", optional), ("~repeat", repeat)) if on]
    if rule.kind in ("exact", "any"):
        words.append("~" + rule.kind)
    elif rule.kind in ("glob", "re"):
        words.append(f"~{rule.kind} {rule.pattern}")
    return " ".join(words)


def format_entry(entry: Entry) -> str:
    """One entry as its line in the file (no newline)."""
    if isinstance(entry, Comment):
        return f"# {entry.text}" if entry.text else "#"
    if isinstance(entry, Event):
        return " ".join(["==", entry.kind, *(f"{k}={_render_value(v)}" for k, v in entry.fields)])
    if isinstance(entry, Elided):
        fields = [("lines", str(entry.lines)), ("bytes", str(entry.nbytes)),
                  ("sha256", entry.sha256), ("tls", "yes" if entry.tls else "no")]
        if entry.file is not None:
            fields.append(("file", entry.file))
        return " ".join(["== elided", *(f"{k}={_render_value(v)}" for k, v in fields)])
    if isinstance(entry, ElidedBytes):
        fields = [("bytes", str(entry.nbytes)), ("sha256", entry.sha256),
                  ("tls", "yes" if entry.tls else "no")]
        if entry.file is not None:
            fields.append(("file", entry.file))
        return " ".join(["== elided", *(f"{k}={_render_value(v)}" for k, v in fields)])
    if isinstance(entry, ClientBytes):
        return ("~>> " if entry.tls else "->> ") + escape_text(entry.text)
    if isinstance(entry, ClientLine):
        marker, ann = ("~>" if entry.tls else "->"), _annotation(entry.rule)
    else:
        marker = "<~" if entry.tls else "<-"
        ann = _annotation(entry.rule, entry.optional, entry.repeat)
    body = _render_parts(entry.parts)
    if ann:
        return f"{marker} {body}  {ann}"
    return f"{marker} {body}" if body else marker


def format_header(header: Header) -> list[str]:
    """The header block's lines: the version line, fields, then a blank line."""
    lines = [f"{MAGIC}{header.version}"]
    fields: list[tuple[str, str | None]] = [
        ("target", header.target),
        ("recorded", _format_time(header.recorded) if header.recorded else None),
        ("tool", header.tool),
        ("tls", header.tls_mode),
        ("description", header.description),
        *header.extra,
    ]
    for key, value in fields:
        if value is not None:
            text = escape_text(value)
            lines.append(f"{key}: {text}" if text else f"{key}:")
    lines.append("")
    return lines


def dump(transcript: Transcript) -> str:
    """The transcript as file text; ``parse(dump(t)) == t``."""
    lines = format_header(transcript.header)
    lines.extend(format_entry(e) for e in transcript.entries)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- parse


def _late_word(rule: str, late: str, pattern: str) -> str:
    """Why ``~glob PAT ~optional`` is refused, and how to write it instead."""
    literal = "[~]" if rule == "glob" else "\\~"
    keep = f"(to match a literal ~{late}, write {literal}{late})"
    if late in ("optional", "repeat"):
        rest = " ".join(w for w in pattern.split(" ") if w and w != f"~{late}")
        return (f"~{late} after the ~{rule} pattern would become part of the pattern: "
                f"put flags first, ~{late} ~{rule} {rest} {keep}")
    return f"one line, one rule: ~{late} inside the ~{rule} pattern {keep}"


class _Parser:
    """Parses one line at a time; every problem becomes a TranscriptError with a line number."""

    def __init__(self, lineno: int):
        self.lineno = lineno
        self.file_version = FORMAT_VERSION  # the version line's, once the header is read

    def fail(self, message: str) -> TranscriptError:
        return TranscriptError(message, self.lineno)

    def raw_control(self, c: str) -> TranscriptError:
        return self.fail(
            f"raw control character U+{ord(c):04X}: write it as an escape (\\t, \\xHH)"
        )

    def check_raw(self, s: str) -> None:
        """Fail on the first raw control character in ``s``."""
        m = _CONTROL_RE.search(s)
        if m:
            raise self.raw_control(m[0])

    def unescape_at(self, s: str, i: int, extra: str = "") -> tuple[str, int]:
        """Decode the escape starting at s[i] == '\\'; return (char, next index)."""
        if i + 1 >= len(s):
            raise self.fail("backslash at the end of the line (write \\\\ for a backslash)")
        c = s[i + 1]
        if c in _UNESCAPES:
            return _UNESCAPES[c], i + 2
        if c == "x":
            hexits = s[i + 2 : i + 4]
            if len(hexits) == 2 and all(h in "0123456789abcdefABCDEF" for h in hexits):
                byte = int(hexits, 16)
                return (chr(byte) if byte < 0x80 else chr(0xDC00 + byte)), i + 4
            raise self.fail("bad escape: \\x needs two hex digits")
        if c == "u":
            m = _UNICODE_ESCAPE_RE.match(s, i + 2)
            if m and int(m[1], 16) <= 0x10FFFF:
                return chr(int(m[1], 16)), m.end()
            raise self.fail("bad escape: \\u needs {hex}, at most 10FFFF")
        raise self.fail(f"bad escape \\{c} (known: \\\\ \\t \\r \\n \\xHH \\u{{H}} \\{{ \\}})")

    def unescape(self, s: str) -> str:
        m = _VALUE_STOP_RE.search(s)
        if m is None:
            return s
        out: list[str] = []
        i = 0
        while m is not None:
            j = m.start()
            if s[j] != "\\":
                raise self.raw_control(s[j])
            out.append(s[i:j])
            c, i = self.unescape_at(s, j)
            out.append(c)
            m = _VALUE_STOP_RE.search(s, i)
        out.append(s[i:])
        return "".join(out)

    def body(self, body: str, *, client: bool) -> tuple[list[str | Volatile | SecretRef], str]:
        """Split a line body into parts and the raw annotation (empty if none)."""
        parts: list[str | Volatile | SecretRef] = []
        buf: list[str] = []
        i, annotation = 0, ""
        while (m := _BODY_STOP_RE.search(body, i)) is not None:
            j = m.start()
            buf.append(body[i:j])
            c = body[j]
            if c == "\\":
                ch, i = self.unescape_at(body, j)
                buf.append(ch)
            elif c == "{":  # "{{"
                text = "".join(buf)
                if text:
                    parts.append(text)
                buf = []
                part, i = self.placeholder(body, j, client=client)
                parts.append(part)
            elif c == " ":  # "  ~"
                annotation = body[j + 2 :]
                i = len(body)
                break
            else:
                raise self.raw_control(c)
        buf.append(body[i:])
        text = "".join(buf)
        if text:
            parts.append(text)
        return parts, annotation

    def placeholder(self, s: str, i: int, *, client: bool) -> tuple[Volatile | SecretRef, int]:
        m = _NAME_RE.match(s, i + 2)
        if not m or not s.startswith(":", m.end()):
            raise self.fail("'{{' starts a placeholder like {{host:…}}; write \\{{ for braces")
        kind, j = m[0], m.end() + 1
        if kind == "secret":
            end = s.find("}}", j)
            if end < 0:
                raise self.fail("placeholder {{secret:… is not closed with }}")
            if not client:
                raise self.fail("secret placeholders belong in client lines (-> / ~>)")
            return self.secret(s[j:end]), end + 2
        buf: list[str] = []
        while True:
            m = _PLACEHOLDER_STOP_RE.search(s, j)
            if m is None:
                raise self.fail(f"placeholder {{{{{kind}:… is not closed with }}}}")
            stop = m.start()
            buf.append(s[j:stop])
            c = s[stop]
            if c == "\\":
                ch, j = self.unescape_at(s, stop)
                buf.append(ch)
            elif c == "}":  # "}}"
                j = stop
                break
            else:
                raise self.raw_control(c)
        literal = "".join(buf)
        problem = _volatile_problem(kind, literal)
        if problem:
            raise self.fail(problem)
        return Volatile(kind, literal), j + 2

    def secret(self, content: str) -> SecretRef:
        mech, *args = content.split(" ")
        params: list[tuple[str, str]] = []
        for arg in args:
            name, eq, value = arg.partition("=")
            if not eq or not _NAME_RE.fullmatch(name):
                raise self.fail(f"secret {mech}: expected name=value, got {arg!r}")
            params.append((name, value))
        problem = _secret_problem(mech, params)
        if problem:
            raise self.fail(problem)
        return SecretRef(mech, tuple(params))

    def annotation(self, text: str, *, client: bool) -> tuple[Rule, bool, bool]:
        rule, optional, repeat = DEFAULT_RULE, False, False
        rest = text
        while rest:
            m = _ANNOTATION_RE.match(rest)
            if not m:
                raise self.fail(f"expected an annotation like ~exact, got {rest[:20]!r}")
            word, rest = m[1], rest[m.end() :]
            if word in ("optional", "repeat"):
                if client:
                    raise self.fail(f"~{word} is for server lines only")
                if (optional if word == "optional" else repeat):
                    raise self.fail(f"~{word} given twice")
                optional, repeat = optional or word == "optional", repeat or word == "repeat"
            elif word in ("exact", "any", "glob", "re"):
                if rule.kind != "default":
                    raise self.fail("one line, one rule: ~exact, ~any, ~glob or ~re")
                if word in ("glob", "re"):
                    pattern, rest = rest[1:] if rest.startswith(" ") else "", ""
                    late = _LATE_WORD_RE.search(pattern)
                    if late:
                        raise self.fail(_late_word(word, late[1], pattern))
                    problem = _pattern_problem(word, pattern)
                    if problem:
                        raise self.fail(problem)
                    rule = Rule(cast(RuleKind, word), pattern)
                else:
                    rule = Rule(cast(RuleKind, word))
            else:
                raise self.fail(
                    f"unknown annotation ~{word} (known: ~exact ~any ~glob ~re ~optional ~repeat)"
                )
            if rest and not rest.startswith(" "):
                raise self.fail(f"annotations are separated by spaces: {rest[:20]!r}")
            rest = rest.lstrip(" ")
        return rule, optional, repeat

    def fields(self, s: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        i = 0
        while i < len(s):
            m = _FIELD_NAME_RE.match(s, i)
            if not m:
                raise self.fail(f"expected name=value, got {s[i:i + 20]!r}")
            i = m.end()
            if s.startswith('"', i):
                buf: list[str] = []
                i += 1
                while True:
                    qm = _QUOTED_STOP_RE.search(s, i)
                    if qm is None:
                        raise self.fail("quoted value is not closed")
                    stop = qm.start()
                    buf.append(s[i:stop])
                    c = s[stop]
                    if c == "\\":
                        ch, i = self.unescape_at(s, stop)
                        buf.append(ch)
                    elif c == '"':
                        i = stop + 1
                        break
                    else:
                        raise self.raw_control(c)
                value = "".join(buf)
            else:
                vm = _BARE_VALUE_RE.match(s, i)
                assert vm is not None  # matches the empty string at worst
                value, i = vm[0], vm.end()
                self.check_raw(value)
            if any(k == m[1] for k, _ in out):
                raise self.fail(f"field {m[1]}= given twice")
            out.append((m[1], value))
            if i < len(s) and not s[i].isspace():
                raise self.fail(f"fields are separated by spaces: {s[i:i + 20]!r}")
            while i < len(s) and s[i] == " ":
                i += 1
        return out

    def event(self, text: str) -> Event | Elided | ElidedBytes:
        m = _NAME_RE.match(text)
        if not m or (m.end() < len(text) and text[m.end()] != " "):
            raise self.fail("'==' is followed by an event name like connect, tls, closed")
        kind, fields = m[0], self.fields(text[m.end() :].lstrip(" "))
        if kind != "elided":
            return Event(kind, tuple(fields), self.lineno)
        got = dict(fields)
        unknown = set(got) - {"lines", "bytes", "sha256", "tls", "file"}
        if unknown:
            raise self.fail(f"elided: unknown field {sorted(unknown)[0]}=")
        if "lines" not in got and self.file_version >= BYTES_VERSION:
            return self.elided_bytes(got)
        lines, nbytes = parse_count(got.get("lines")), parse_count(got.get("bytes"))
        if lines is None or nbytes is None:  # plain digits: int() would take 1_0 and ' 1'
            raise self.fail("elided: needs lines=N and bytes=N")
        if got.get("tls") not in ("yes", "no"):
            raise self.fail("elided: needs tls=yes or tls=no")
        problem = _elided_problem(lines, nbytes, got.get("sha256", ""), got.get("file"))
        if problem:
            raise self.fail(problem)
        return Elided(lines, nbytes, got["sha256"], got["tls"] == "yes", got.get("file"),
                      self.lineno)

    def elided_bytes(self, got: dict[str, str]) -> ElidedBytes:
        """``== elided bytes=N sha256=H tls=…`` (no ``lines=``): exact bytes left out."""
        size = parse_count(got.get("bytes"))
        if size is None:
            raise self.fail("elided: needs bytes=N (and lines=N for lines)")
        if got.get("tls") not in ("yes", "no"):
            raise self.fail("elided: needs tls=yes or tls=no")
        problem = _elided_bytes_problem(size, got.get("sha256", ""), got.get("file"))
        if problem:
            raise self.fail(problem)
        return ElidedBytes(size, got["sha256"], got["tls"] == "yes", got.get("file"),
                           self.lineno)

    def client_bytes(self, marker: str, rest: str) -> ClientBytes:
        """``->> text`` / ``~>> text``: exact bytes, escaped; no placeholders, no annotation."""
        if self.file_version < BYTES_VERSION:
            raise self.fail(f"exact bytes ({marker}) are transcript v{BYTES_VERSION}: this "
                            f"file says v{self.file_version} on its first line")
        if not rest.startswith(" ") or len(rest) < 2:
            raise self.fail(f"{marker} is followed by one space and at least one byte")
        text = self.unescape(rest[1:])
        lone = _LONE_SURROGATE_RE.search(text)
        if lone:
            raise self.fail(f"\\u{{{ord(lone[0]):x}}} is not a character: write bytes as \\xHH")
        return ClientBytes(text.encode("utf-8", "surrogateescape"), marker == "~>>",
                           self.lineno)

    def entry(self, line: str) -> Entry:
        if line.startswith("#"):
            text = line[2:] if line.startswith("# ") else line[1:]
            bad = _COMMENT_BAD_RE.search(text)
            if bad:
                c = bad[0]
                if 0xD800 <= ord(c) <= 0xDFFF:
                    raise self.fail(f"U+{ord(c):04X} (a lone surrogate) in a comment")
                raise self.raw_control(c)
            return Comment(text, self.lineno)
        self.check_raw(line)
        if line[:3] in ("->>", "~>>"):
            return self.client_bytes(line[:3], line[3:])
        marker, rest = line[:2], line[2:]
        if rest and not rest.startswith(" "):
            raise self.fail(f"one space goes after {marker!r}")
        rest = rest[1:]
        if marker == "==":
            return self.event(rest)
        if marker not in ("->", "~>", "<-", "<~"):
            raise self.fail(
                f"not a transcript line (starts with {line[:2]!r}); "
                "lines start with -> <- ~> <~ == or #"
            )
        client = marker in ("->", "~>")
        parts, ann = self.body(rest, client=client)
        rule, optional, repeat = self.annotation(ann, client=client)
        if client:
            if len(parts) > 1 and sum(isinstance(p, SecretRef) for p in parts) > 1:
                raise self.fail("one secret per line")
            return ClientLine(tuple(parts), marker == "~>", rule, self.lineno)
        sparts = tuple(p for p in parts if not isinstance(p, SecretRef))  # none: body() checks
        if optional or repeat:
            text = "".join(p if isinstance(p, str) else p.literal for p in sparts)
            if reply_parts(text)[1]:
                raise self.fail("~optional/~repeat are for continuation lines (250-...) only")
        return ServerLine(sparts, marker == "<~", rule, optional, repeat, self.lineno)

    def header(self, lines: list[str]) -> Header:
        version = self.version(lines[0] if lines else "")
        self.file_version = version
        values: dict[str, str] = {}
        for index, line in enumerate(lines[1:], start=2):
            self.lineno = index
            m = _HEADER_RE.fullmatch(line)
            if m is None:
                raise self.fail("not a header field (name: value)")
            if m[1] in values:
                raise self.fail(f"header field {m[1]}: given twice")
            values[m[1]] = self.unescape(m[2] or "")
        recorded: datetime | None = None
        if "recorded" in values:
            self.lineno = 2 + list(values).index("recorded")
            recorded = self.time(values["recorded"])
        tls = values.get("tls", "plain")
        if tls not in TLS_MODES:
            self.lineno = 2 + list(values).index("tls")
            raise self.fail(f"tls: must be plain, starttls or implicit, not {tls!r}")
        extra = tuple((k, v) for k, v in values.items() if k not in _HEADER_KEYS)
        return Header(version, values.get("target"), recorded, values.get("tool"),
                      tls, values.get("description"), extra)

    def version(self, first: str) -> int:
        self.lineno = 1
        m = _VERSION_RE.fullmatch(first)
        if m is None:
            if first.startswith("# smtpshell transcript"):
                raise self.fail(f"garbled version line: {first[:60]!r}")
            raise self.fail(
                f"not a smtpshell transcript (the first line should be '{MAGIC}{FORMAT_VERSION}')"
            )
        version = int(m[1])
        if version > FORMAT_VERSION:
            raise self.fail(
                f"written by a newer smtpshell: v{version}; this one reads v1 to "
                f"v{FORMAT_VERSION}"
            )
        if version < 1:
            raise self.fail(f"unknown transcript version v{version}")
        return version

    def time(self, value: str) -> datetime:
        try:
            when = datetime.fromisoformat(value)
            if when.utcoffset() is None:
                raise ValueError
            return when.astimezone(UTC)
        except (ValueError, OverflowError):
            raise self.fail(
                f"recorded: not an ISO 8601 time with offset, e.g. 2025-01-15T10:42:07Z: {value!r}"
            ) from None


def parse(text: str, *, source: str = "<string>") -> Transcript:
    """Parse transcript text. Raises :class:`TranscriptError` and nothing else."""
    try:
        return _parse(text, source)
    except TranscriptError as exc:
        exc.source = source
        raise


def _parse(text: str, source: str) -> Transcript:
    lines = [line.rstrip("\r").rstrip(" \t") for line in text.removeprefix("\ufeff").split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise TranscriptError("not a smtpshell transcript: it is empty", 1)
    header_end = 1
    while header_end < len(lines) and _HEADER_START_RE.match(lines[header_end]):
        header_end += 1
    parser = _Parser(1)
    header = parser.header(lines[:header_end])
    entries: list[Entry] = []
    for index in range(header_end, len(lines)):
        line = lines[index]
        parser.lineno = index + 1
        if not line:
            continue
        if _HEADER_START_RE.match(line):
            raise parser.fail("header fields belong right after the first line")
        if len(line) * 4 > MAX_LINE_BYTES and len(_utf8(line)) > MAX_LINE_BYTES:
            raise parser.fail(f"line longer than {MAX_LINE_BYTES} bytes")
        entries.append(parser.entry(line))
    return Transcript(header, tuple(entries), source)


def load(path: str | os.PathLike[str]) -> Transcript:
    """Read and parse a transcript file; unreadable or non-UTF-8 files raise TranscriptError."""
    source = str(path)
    with _open_file(path) as f:
        try:
            data = f.read()
        except OSError as exc:
            raise TranscriptError(f"cannot read: {exc.strerror or exc}", None, source) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        raise TranscriptError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x})", lineno, source
        ) from None
    return parse(text, source=source)


# --------------------------------------------------------------------------- streaming

MAX_LINE_BYTES = 4 << 20
"""A transcript line longer than this (4 MiB) is an error: reading never holds more."""


def iter_load(path: str | os.PathLike[str]) -> tuple[Header, Iterator[Entry]]:
    """Like :func:`load`, in bounded memory whatever the file's size: the header now, the
    entries one by one as the file is read. TranscriptError comes from either, with the
    line number; the file is closed when the entries are exhausted (or garbage)."""
    source = str(path)
    f = _open_file(path)
    lines = _file_lines(f)
    try:
        first = next(lines, None)
        if first is None:
            raise TranscriptError("not a smtpshell transcript: it is empty", 1)
        head = [first[1]]
        pending: list[tuple[int, str]] = []
        for lineno, line in lines:
            if not _HEADER_START_RE.match(line):
                pending.append((lineno, line))
                break
            head.append(line)
        parser = _Parser(1)
        header = parser.header(head)
    except TranscriptError as exc:
        f.close()
        exc.source = source
        raise
    return header, _entries(parser, itertools.chain(pending, lines), f, source)


def _open_file(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (a device such as /dev/zero or a
    named pipe would be read for ever, or wait for a writer); else TranscriptError."""
    source = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise TranscriptError(f"cannot read: {exc.strerror or exc}", None, source) from None
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise TranscriptError("cannot read: not a regular file", None, source)
    return f


def _utf8(line: str) -> bytes:
    return line.encode("utf-8", "surrogatepass")


def _file_lines(f: BinaryIO) -> Iterator[tuple[int, str]]:
    """(line number, text) as :func:`parse` sees them: CR and trailing blanks dropped."""
    for lineno, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
        if len(raw) > MAX_LINE_BYTES:
            raise TranscriptError(f"line longer than {MAX_LINE_BYTES} bytes", lineno)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TranscriptError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                                  lineno) from None
        if lineno == 1:
            text = text.removeprefix("\ufeff")
        yield lineno, text.removesuffix("\n").rstrip("\r").rstrip(" \t")


def _entries(parser: _Parser, lines: Iterator[tuple[int, str]], f: BinaryIO,
             source: str) -> Iterator[Entry]:
    with f:
        try:
            for lineno, line in lines:
                parser.lineno = lineno
                if not line:
                    continue
                if _HEADER_START_RE.match(line):
                    raise parser.fail("header fields belong right after the first line")
                yield parser.entry(line)
        except TranscriptError as exc:
            exc.source = source
            raise
