"""The smtpshell transcript format, v1: data model, parse, dump and a crash-safe writer.

The format is specified in ``docs/transcript-format.md``; this module is its one reader and
writer. Standard library only. Replay, the mock server and the pytest plugin build on
:func:`parse` / :func:`load`, :meth:`Transcript.steps` and :mod:`smtpshell.transcript.matching`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeAlias, TypeVar, cast

from smtpshell import __version__
from smtpshell.protocol import sasl

FORMAT_VERSION = 1
MAGIC = "# smtpshell transcript v"

TlsMode: TypeAlias = Literal["plain", "starttls", "implicit"]
TLS_MODES: tuple[TlsMode, ...] = ("plain", "starttls", "implicit")
RuleKind: TypeAlias = Literal["default", "exact", "glob", "re", "any"]

#: Volatile placeholder kinds and the regular expression each stands for.
VOLATILE_KINDS: Mapping[str, str] = {
    "host": r"[A-Za-z0-9_.:\[\]-]+",
    "queueid": r"[A-Za-z0-9][A-Za-z0-9._-]*",
    "num": r"[0-9]+",
    "b64": r"[A-Za-z0-9+/]*={0,2}",
    "word": r"\S+",
    "date": r".+?",
    "any": r".*",
}
#: Secret mechanisms: (required params, optional params). Params in SECRET_PARAMS hold secrets.
SECRET_MECHS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "plain": (("user", "password"), ("authzid",)),
    "login": ((), ("user", "password")),
    "cram-md5": (("user", "password"), ()),
    "xoauth2": (("user", "token"), ()),
    "raw": (("value",), ()),
}
SECRET_PARAMS = frozenset({"password", "token", "value"})


class TranscriptError(Exception):
    """A transcript that cannot be read or used; one line, with its line number."""

    def __init__(self, message: str, lineno: int | None = None, source: str | None = None):
        super().__init__(message)
        self.message = message
        self.lineno = lineno
        self.source = source

    def __str__(self) -> str:
        where = self.source or ""
        if self.lineno is not None:
            where = f"{where}:{self.lineno}" if where else f"line {self.lineno}"
        return f"{where}: {self.message}" if where else self.message


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Rule:
    """How a line is matched: ``default`` (no annotation), ``exact``, ``glob``, ``re``, ``any``."""

    kind: RuleKind = "default"
    pattern: str | None = None

    def __post_init__(self) -> None:
        if (self.pattern is not None) != (self.kind in ("glob", "re")):
            raise ValueError(f"rule {self.kind!r}: pattern only and always for glob and re")
        if self.pattern is not None:
            problem = _pattern_problem(self.kind, self.pattern)
            if problem:
                raise ValueError(problem)


DEFAULT_RULE = Rule()


@dataclass(frozen=True)
class Volatile:
    """A volatile part of a line: matched by its kind's pattern, replayed/mocked as ``literal``."""

    kind: str
    literal: str

    def __post_init__(self) -> None:
        problem = _volatile_problem(self.kind, self.literal)
        if problem:
            raise ValueError(problem)


@dataclass(frozen=True)
class SecretRef:
    """A credential in a client line, rebuilt at replay from ``$ENV`` variables.

    ``params`` are ordered (name, value) pairs; a value ``$NAME`` is read from the environment.
    Values of password/token/value must be ``$NAME`` references: secrets never enter the file.
    """

    mech: str
    params: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        problem = _secret_problem(self.mech, self.params)
        if problem:
            raise ValueError(problem)

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)

    def placeholder(self) -> str:
        """The form written in the file: ``{{secret:plain user=demo password=$VAR}}``."""
        args = "".join(f" {k}={v}" for k, v in self.params)
        return "{{secret:" + self.mech + args + "}}"

    @classmethod
    def plain(
        cls, user: str, password_env: str = "SMTPSHELL_PASSWORD", authzid: str | None = None
    ) -> SecretRef:
        params = [("user", user), ("password", "$" + password_env)]
        if authzid is not None:
            params.append(("authzid", authzid))
        return cls("plain", tuple(params))

    @classmethod
    def login_user(cls, user: str) -> SecretRef:
        return cls("login", (("user", user),))

    @classmethod
    def login_password(cls, password_env: str = "SMTPSHELL_PASSWORD") -> SecretRef:
        return cls("login", (("password", "$" + password_env),))

    @classmethod
    def cram_md5(cls, user: str, password_env: str = "SMTPSHELL_PASSWORD") -> SecretRef:
        return cls("cram-md5", (("user", user), ("password", "$" + password_env)))

    @classmethod
    def xoauth2(cls, user: str, token_env: str = "SMTPSHELL_TOKEN") -> SecretRef:
        return cls("xoauth2", (("user", user), ("token", "$" + token_env)))

    @classmethod
    def raw(cls, value_env: str) -> SecretRef:
        return cls("raw", (("value", "$" + value_env),))


ServerPart: TypeAlias = "str | Volatile"
ClientPart: TypeAlias = "str | Volatile | SecretRef"


@dataclass(frozen=True)
class ServerLine:
    """One server reply line, as ``parts`` (text and volatile placeholders)."""

    parts: tuple[str | Volatile, ...]
    tls: bool = False
    rule: Rule = DEFAULT_RULE
    optional: bool = False
    repeat: bool = False
    lineno: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _check_parts(self.parts, secrets=False)
        if (self.optional or self.repeat) and self.final:
            raise ValueError("~optional/~repeat are for continuation lines (250-...) only")

    @classmethod
    def of(
        cls,
        text: str,
        tls: bool = False,
        rule: Rule = DEFAULT_RULE,
        optional: bool = False,
        repeat: bool = False,
        lineno: int | None = None,
    ) -> ServerLine:
        """A line from plain text (no placeholders)."""
        return cls((text,) if text else (), tls, rule, optional, repeat, lineno)

    @property
    def text(self) -> str:
        """The recorded line as the server sent it (what a mock sends back)."""
        return "".join(p if isinstance(p, str) else p.literal for p in self.parts)

    @property
    def code(self) -> int | None:
        return reply_parts(self.text)[0]

    @property
    def final(self) -> bool:
        """True for the last line of a reply (``250 x``), False for ``250-x``."""
        return reply_parts(self.text)[1]

    @property
    def enhanced(self) -> str | None:
        return reply_parts(self.text)[2]


@dataclass(frozen=True)
class ClientLine:
    """One line the client sent; at most one part is a :class:`SecretRef`."""

    parts: tuple[str | Volatile | SecretRef, ...]
    tls: bool = False
    rule: Rule = DEFAULT_RULE
    lineno: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _check_parts(self.parts, secrets=True)

    @classmethod
    def of(
        cls,
        text: str,
        tls: bool = False,
        secret: SecretRef | None = None,
        rule: Rule = DEFAULT_RULE,
        lineno: int | None = None,
    ) -> ClientLine:
        """A line from plain text; ``secret`` (if any) follows the text: ``AUTH PLAIN {{…}}``."""
        parts: list[str | Volatile | SecretRef] = [text] if text else []
        if secret is not None:
            parts.append(secret)
        return cls(tuple(parts), tls, rule, lineno)

    @property
    def text(self) -> str:
        """The line with volatile literals filled in and secrets as placeholders."""
        return "".join(
            p if isinstance(p, str) else p.literal if isinstance(p, Volatile) else p.placeholder()
            for p in self.parts
        )

    @property
    def secret(self) -> SecretRef | None:
        return next((p for p in self.parts if isinstance(p, SecretRef)), None)

    def resolve(self, env: Mapping[str, str], *, challenge: str | None = None) -> str:
        """The line to send; see :func:`resolve_secrets`."""
        return resolve_secrets(self, env, challenge=challenge)


@dataclass(frozen=True)
class Event:
    """``== kind key=value …``: connect, tls, closed, warning, or a kind from a newer v1."""

    kind: str
    fields: tuple[tuple[str, str], ...] = ()
    lineno: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.kind) or self.kind == "elided":
            raise ValueError(f"bad event kind {self.kind!r}")
        names = [k for k, _ in self.fields]
        if len(set(names)) != len(names) or not all(_NAME_RE.fullmatch(k) for k in names):
            raise ValueError(f"bad or repeated event field names: {names!r}")

    @classmethod
    def make(cls, kind: str, **fields: str | int | bool | None) -> Event:
        """Keyword names use ``_`` for ``-`` (``cert_sha256=`` → ``cert-sha256=``); None skips."""
        pairs = tuple(
            (k.replace("_", "-"), _field_text(v)) for k, v in fields.items() if v is not None
        )
        return cls(kind, pairs)

    def get(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.fields if k == name), default)


@dataclass(frozen=True)
class Elided:
    """Client lines left out of the file (a long DATA body), with their count and digest."""

    lines: int
    nbytes: int
    sha256: str
    tls: bool = False
    file: str | None = None
    lineno: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        problem = _elided_problem(self.lines, self.nbytes, self.sha256, self.file)
        if problem:
            raise ValueError(problem)

    @classmethod
    def of(cls, lines: Iterable[str], *, tls: bool = False, file: str | None = None) -> Elided:
        """Count and digest ``lines`` as sent: each one UTF-8 (surrogateescape) plus CRLF."""
        digest = hashlib.sha256()
        count = size = 0
        for line in lines:
            data = wire_bytes(line) + b"\r\n"
            digest.update(data)
            count += 1
            size += len(data)
        return cls(count, size, digest.hexdigest(), tls, file)

    def matches(self, lines: Sequence[str]) -> bool:
        """True if ``lines`` are exactly the lines that were left out."""
        other = Elided.of(lines, tls=self.tls)
        return (other.lines, other.nbytes, other.sha256) == (self.lines, self.nbytes, self.sha256)

    def filler(self) -> list[str]:
        """Stand-in lines for replay: same line count and byte count, all ``X``."""
        base, extra = divmod(self.nbytes - 2 * self.lines, self.lines)
        return ["X" * (base + (1 if i < extra else 0)) for i in range(self.lines)]


@dataclass(frozen=True)
class Comment:
    text: str
    lineno: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        text = self.text
        if any(_unwritable(c) and c != "\t" for c in text) or text != text.rstrip(" \t"):
            raise ValueError("comment text: one line, no control characters or trailing blanks")


Entry: TypeAlias = ClientLine | ServerLine | Event | Elided | Comment
_E = TypeVar("_E", ClientLine, ServerLine, Event, Elided, Comment)


@dataclass(frozen=True)
class Header:
    version: int = FORMAT_VERSION
    target: str | None = None
    recorded: datetime | None = None
    tool: str | None = None
    tls_mode: TlsMode = "plain"
    description: str | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.version <= FORMAT_VERSION:
            raise ValueError(f"this smtpshell writes transcript v{FORMAT_VERSION}")
        if self.tls_mode not in TLS_MODES:
            raise ValueError(f"tls_mode must be one of {TLS_MODES}")
        if self.recorded is not None and self.recorded.utcoffset() is None:
            raise ValueError("recorded must be an aware datetime")
        keys = [k for k, _ in self.extra]
        if len(set(keys)) != len(keys) or any(
            k in _HEADER_KEYS or not _NAME_RE.fullmatch(k) for k in keys
        ):
            raise ValueError(f"bad or repeated extra header names: {keys!r}")

    @classmethod
    def now(
        cls, target: str, tls_mode: TlsMode = "plain", description: str | None = None
    ) -> Header:
        """A header for a recording that starts now."""
        recorded = datetime.now(UTC).replace(microsecond=0)
        return cls(FORMAT_VERSION, target, recorded, f"smtpshell {__version__}", tls_mode,
                   description)


@dataclass(frozen=True)
class Send:
    """Client lines sent back to back (pipelined, or a DATA body when ``body``)."""

    lines: tuple[ClientLine | Elided, ...]
    body: bool = False


@dataclass(frozen=True)
class Expect:
    """One reply: continuation lines, then the final line (missing if the file was cut)."""

    lines: tuple[ServerLine, ...]

    @property
    def complete(self) -> bool:
        return bool(self.lines) and self.lines[-1].final

    @property
    def code(self) -> int | None:
        return self.lines[-1].code if self.lines else None

    @property
    def lineno(self) -> int | None:
        return self.lines[0].lineno if self.lines else None


Step: TypeAlias = Send | Expect | Event


@dataclass(frozen=True)
class Transcript:
    header: Header
    entries: tuple[Entry, ...] = ()
    source: str = field(default="<string>", compare=False)

    def steps(self) -> list[Step]:
        """The session as a flat walk: Send, Expect (one per reply) and Event; no comments.

        Replies are paired with commands in order (pipelining included); the client lines
        after a DATA command's 354 reply, up to and including ``.``, form a ``body`` Send.
        """
        out: list[Step] = []
        send: list[ClientLine | Elided] = []
        reply: list[ServerLine] = []
        pending: deque[bool] = deque()  # one per command awaiting a reply: is it DATA?
        in_body = False

        def flush() -> None:
            if send:
                out.append(Send(tuple(send), in_body))
                send.clear()
            if reply:
                out.append(Expect(tuple(reply)))
                reply.clear()

        for entry in self.entries:
            if isinstance(entry, Comment):
                continue
            if isinstance(entry, ClientLine | Elided):
                if reply:
                    flush()
                send.append(entry)
                if in_body and isinstance(entry, ClientLine) and entry.text == ".":
                    flush()
                    in_body = False
                    pending.append(False)
                elif not in_body and isinstance(entry, ClientLine):
                    pending.append(entry.text.strip().upper() == "DATA")
            elif isinstance(entry, ServerLine):
                if send:
                    flush()
                reply.append(entry)
                if entry.final:
                    flush()
                    was_data = pending.popleft() if pending else False
                    in_body = in_body or (was_data and entry.code == 354)
            else:
                flush()
                out.append(entry)
        flush()
        return out


# --------------------------------------------------------------------------- helpers

_NAME_RE = re.compile(r"[a-z][a-z0-9-]*", re.ASCII)
_ENV_RE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_SECRET_VALUE_RE = re.compile(r'[^\s"\\{}]+')
_REPLY_RE = re.compile(r"([0-9]{3})(?:([ -])|$)", re.ASCII)
_ENHANCED_RE = re.compile(r"[0-9]{3}[ -]([245]\.[0-9]{1,3}\.[0-9]{1,3})(?= |$)", re.ASCII)
_HEX64_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)
_HEADER_KEYS = ("target", "recorded", "tool", "tls", "description")
_HEADER_RE = re.compile(r"([a-z][a-z0-9-]*):(?: (.*))?", re.ASCII)
_HEADER_START_RE = re.compile(r"[a-z][a-z0-9-]*:", re.ASCII)
_VERSION_RE = re.compile(r"# smtpshell transcript v([0-9]+)", re.ASCII)
_UNICODE_ESCAPE_RE = re.compile(r"\{([0-9a-fA-F]{1,6})\}")
_ANNOTATION_RE = re.compile(r"~([a-z]+)")
_FIELD_NAME_RE = re.compile(r"([a-z][a-z0-9-]*)=", re.ASCII)
_BARE_VALUE_RE = re.compile(r'[^\s"\\]*')


def reply_parts(text: str) -> tuple[int | None, bool, str | None]:
    """(code, final, enhanced) of a reply line; code None if it isn't a reply line."""
    m = _REPLY_RE.match(text)
    if not m:
        return None, True, None
    enhanced = _ENHANCED_RE.match(text)
    return int(m[1]), m[2] != "-", enhanced[1] if enhanced else None


def wire_bytes(text: str) -> bytes:
    """A line's bytes on the wire (without CRLF): UTF-8, raw bytes kept by surrogateescape."""
    return text.encode("utf-8", "surrogateescape")


def _is_control(c: str) -> bool:
    return ord(c) < 0x20 or c == "\x7f"


def _unwritable(c: str) -> bool:
    """Control characters and surrogates: they can't appear raw in the file."""
    return _is_control(c) or 0xD800 <= ord(c) <= 0xDFFF


def _field_text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _check_parts(parts: Sequence[object], *, secrets: bool) -> None:
    prev_str = False
    for part in parts:
        if isinstance(part, str):
            if not part or prev_str:
                raise ValueError("text parts must be non-empty and not adjacent")
            prev_str = True
            continue
        prev_str = False
        if isinstance(part, SecretRef) and not secrets:
            raise ValueError("secret placeholders are for client lines only")
        if not isinstance(part, Volatile | SecretRef):
            raise ValueError(f"not a line part: {part!r}")
    if sum(isinstance(p, SecretRef) for p in parts) > 1:
        raise ValueError("at most one secret per line")


def _volatile_problem(kind: str, literal: str) -> str | None:
    if kind not in VOLATILE_KINDS:
        known = ", ".join(VOLATILE_KINDS)
        return f"unknown placeholder kind {kind!r} (known: {known}, secret)"
    if not re.fullmatch(VOLATILE_KINDS[kind], literal, re.DOTALL):
        return f"{{{{{kind}:…}}}}: recorded text {literal!r} does not look like a {kind}"
    return None


def _secret_problem(mech: str, params: Sequence[tuple[str, str]]) -> str | None:
    if mech not in SECRET_MECHS:
        return f"unknown secret mechanism {mech!r} (known: {', '.join(SECRET_MECHS)})"
    required, optional = SECRET_MECHS[mech]
    names = [k for k, _ in params]
    for name, value in params:
        if name not in required + optional:
            return f"secret {mech}: unknown parameter {name!r}"
        if not _SECRET_VALUE_RE.fullmatch(value) or not value.isprintable():
            return f"secret {mech}: {name}= needs a value without spaces, quotes or braces"
        if name in SECRET_PARAMS and not _ENV_RE.fullmatch(value):
            return f"secret {mech}: {name}= must name an environment variable ($NAME)"
    if len(set(names)) != len(names):
        return f"secret {mech}: a parameter is given twice"
    missing = [n for n in required if n not in names]
    if missing:
        return f"secret {mech}: missing {', '.join(missing)}="
    if mech == "login" and len(names) != 1:
        return "secret login: give exactly one of user= or password="
    return None


def _elided_problem(lines: int, nbytes: int, sha256: str, file: str | None) -> str | None:
    if lines < 1 or nbytes < 2 * lines:
        return "elided: needs lines >= 1 and bytes >= 2 * lines (each line ends in CRLF)"
    if not _HEX64_RE.fullmatch(sha256):
        return "elided: sha256= must be 64 lowercase hex digits"
    if file is not None and (not file or any(not c.isprintable() for c in file)):
        return "elided: file= must be a printable path"
    return None


def _pattern_problem(kind: str, pattern: str) -> str | None:
    if not pattern or pattern != pattern.rstrip(" \t") or any(map(_unwritable, pattern)):
        return f"~{kind} pattern: not empty, no control characters, no trailing blanks"
    if kind == "re":
        try:
            re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            return f"bad regular expression in ~re: {exc}"
    return None


# --------------------------------------------------------------------------- secrets


def resolve_secrets(
    line: ClientLine, env: Mapping[str, str], *, challenge: str | None = None
) -> str:
    """The text to send for ``line``, its secret (if any) computed from ``env``.

    ``challenge`` is the base64 text of the server's last ``334`` line; CRAM-MD5 needs it.
    Raises :class:`TranscriptError` (with the line number) for a missing variable.
    """
    out: list[str] = []
    for part in line.parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Volatile):
            out.append(part.literal)
        else:
            out.append(_resolve_one(part, env, challenge, line.lineno))
    return "".join(out)


def _resolve_one(
    ref: SecretRef, env: Mapping[str, str], challenge: str | None, lineno: int | None
) -> str:
    def value(name: str) -> str:
        raw = ref.get(name) or ""
        if not raw.startswith("$"):
            return raw
        if raw[1:] not in env:
            raise TranscriptError(
                f"environment variable {raw[1:]} is not set (needed for the {ref.mech} secret)",
                lineno,
            )
        return env[raw[1:]]

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    if ref.mech == "plain":
        authzid = value("authzid") if ref.get("authzid") else ""
        return b64(sasl.plain_blob(value("user"), value("password"), authzid))
    if ref.mech == "login":
        return b64(wire_bytes(value("user") if ref.get("user") else value("password")))
    if ref.mech == "xoauth2":
        return b64(sasl.xoauth2_blob(value("user"), value("token")))
    if ref.mech == "cram-md5":
        if challenge is None:
            raise TranscriptError("CRAM-MD5 needs the server's 334 challenge", lineno)
        try:
            data = base64.b64decode(challenge.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise TranscriptError("the server's CRAM-MD5 challenge is not base64", lineno) from None
        return b64(sasl.cram_md5_answer(value("user"), value("password"), data))
    return value("value")  # raw


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


def escape_text(text: str) -> str:
    """Plain text (a header value, a got line in a diff) in the file's escaped form."""
    out = [escape_char(c) for c in text]
    if out and out[-1] == " ":
        out[-1] = "\\x20"
    return "".join(out)


def _render_parts(parts: Sequence[str | Volatile | SecretRef]) -> str:
    out: list[str] = []
    for idx, part in enumerate(parts):
        if isinstance(part, SecretRef):
            out.append(part.placeholder())
        elif isinstance(part, Volatile):
            lit = part.literal
            inner = [
                "\\}" if c == "}" and (j + 1 == len(lit) or lit[j + 1] == "}") else escape_char(c)
                for j, c in enumerate(lit)
            ]
            out.append("{{" + part.kind + ":" + "".join(inner) + "}}")
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
    if out and out[-1] == " ":
        out[-1] = "\\x20"
    return "".join(out)


# --------------------------------------------------------------------------- dump


def _render_value(value: str) -> str:
    if value and all(c.isprintable() and not c.isspace() and c not in '"\\' for c in value):
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


class _Parser:
    """Parses one line at a time; every problem becomes a TranscriptError with a line number."""

    def __init__(self, lineno: int):
        self.lineno = lineno

    def fail(self, message: str) -> TranscriptError:
        return TranscriptError(message, self.lineno)

    def check_raw(self, c: str) -> None:
        if _is_control(c):
            raise self.fail(
                f"raw control character U+{ord(c):04X}: write it as an escape (\\t, \\xHH)"
            )

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
        out: list[str] = []
        i = 0
        while i < len(s):
            if s[i] == "\\":
                c, i = self.unescape_at(s, i)
                out.append(c)
            else:
                self.check_raw(s[i])
                out.append(s[i])
                i += 1
        return "".join(out)

    def body(self, body: str, *, client: bool) -> tuple[list[str | Volatile | SecretRef], str]:
        """Split a line body into parts and the raw annotation (empty if none)."""
        parts: list[str | Volatile | SecretRef] = []
        buf: list[str] = []
        i, annotation = 0, ""
        while i < len(body):
            c = body[i]
            if c == "\\":
                ch, i = self.unescape_at(body, i)
                buf.append(ch)
            elif body.startswith("{{", i):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                part, i = self.placeholder(body, i, client=client)
                parts.append(part)
            elif body.startswith("  ~", i):
                annotation = body[i + 2 :]
                break
            else:
                self.check_raw(c)
                buf.append(c)
                i += 1
        if buf:
            parts.append("".join(buf))
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
            if j >= len(s):
                raise self.fail(f"placeholder {{{{{kind}:… is not closed with }}}}")
            if s[j] == "\\":
                ch, j = self.unescape_at(s, j)
                buf.append(ch)
            elif s.startswith("}}", j):
                break
            else:
                self.check_raw(s[j])
                buf.append(s[j])
                j += 1
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
                    if i >= len(s):
                        raise self.fail("quoted value is not closed")
                    if s[i] == "\\":
                        ch, i = self.unescape_at(s, i)
                        buf.append(ch)
                    elif s[i] == '"':
                        i += 1
                        break
                    else:
                        self.check_raw(s[i])
                        buf.append(s[i])
                        i += 1
                value = "".join(buf)
            else:
                vm = _BARE_VALUE_RE.match(s, i)
                assert vm is not None  # matches the empty string at worst
                value, i = vm[0], vm.end()
                for c in value:
                    self.check_raw(c)
            if any(k == m[1] for k, _ in out):
                raise self.fail(f"field {m[1]}= given twice")
            out.append((m[1], value))
            if i < len(s) and not s[i].isspace():
                raise self.fail(f"fields are separated by spaces: {s[i:i + 20]!r}")
            while i < len(s) and s[i] == " ":
                i += 1
        return out

    def event(self, text: str) -> Event | Elided:
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
        try:
            lines, nbytes = int(got.get("lines", "")), int(got.get("bytes", ""))
        except ValueError:
            raise self.fail("elided: needs lines=N and bytes=N") from None
        if got.get("tls") not in ("yes", "no"):
            raise self.fail("elided: needs tls=yes or tls=no")
        problem = _elided_problem(lines, nbytes, got.get("sha256", ""), got.get("file"))
        if problem:
            raise self.fail(problem)
        return Elided(lines, nbytes, got["sha256"], got["tls"] == "yes", got.get("file"),
                      self.lineno)

    def entry(self, line: str) -> Entry:
        if line.startswith("#"):
            text = line[2:] if line.startswith("# ") else line[1:]
            for c in text:
                if c != "\t":
                    self.check_raw(c)
                if 0xD800 <= ord(c) <= 0xDFFF:
                    raise self.fail(f"U+{ord(c):04X} (a lone surrogate) in a comment")
            return Comment(text, self.lineno)
        for c in line:
            self.check_raw(c)
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
            if sum(isinstance(p, SecretRef) for p in parts) > 1:
                raise self.fail("one secret per line")
            return ClientLine(tuple(parts), marker == "~>", rule, self.lineno)
        sparts = tuple(p for p in parts if not isinstance(p, SecretRef))  # none: body() checks
        text = "".join(p if isinstance(p, str) else p.literal for p in sparts)
        if (optional or repeat) and reply_parts(text)[1]:
            raise self.fail("~optional/~repeat are for continuation lines (250-...) only")
        return ServerLine(sparts, marker == "<~", rule, optional, repeat, self.lineno)

    def header(self, lines: list[str]) -> Header:
        version = self.version(lines[0] if lines else "")
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
                f"written by a newer smtpshell: v{version}; this one reads v{FORMAT_VERSION}"
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
        entries.append(parser.entry(line))
    return Transcript(header, tuple(entries), source)


def load(path: str | os.PathLike[str]) -> Transcript:
    """Read and parse a transcript file; unreadable or non-UTF-8 files raise TranscriptError."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
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


# --------------------------------------------------------------------------- writer


class TranscriptWriter:
    """Writes a transcript line by line, each line reaching the file as it is written.

    The file is created with mode 0600. Whatever was written when the process dies (even by
    SIGKILL) is a transcript that parses. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self, path: str | os.PathLike[str], header: Header, *, overwrite: bool = False
    ) -> None:
        self.path = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        flags |= os.O_TRUNC if overwrite else os.O_EXCL
        self._fd: int | None = os.open(self.path, flags, 0o600)
        self.lineno = 0  # lines written so far
        try:
            if overwrite and hasattr(os, "fchmod"):
                os.fchmod(self._fd, 0o600)
            for line in format_header(header):
                self._write_line(line)
        except BaseException:
            self.close()
            raise

    def _write_line(self, line: str) -> int:
        if self._fd is None:
            raise ValueError("transcript writer is closed")
        data = (line + "\n").encode("utf-8")
        while data:
            data = data[os.write(self._fd, data) :]
        self.lineno += 1
        return self.lineno

    def write(self, entry: _E) -> _E:
        """Write any entry; returns it with its line number."""
        lineno = self._write_line(format_entry(entry))
        return replace(entry, lineno=lineno)

    def client(self, text: str, tls: bool, secret: SecretRef | None = None) -> ClientLine:
        """A client line; with ``secret``, ``text`` is what precedes it (``"AUTH PLAIN "``)."""
        return self.write(ClientLine.of(text, tls, secret))

    def server(self, text: str, tls: bool) -> ServerLine:
        return self.write(ServerLine.of(text, tls))

    def event(self, kind: str, **fields: str | int | bool | None) -> Event:
        """``== kind k=v …``; see :meth:`Event.make` for the keyword names."""
        return self.write(Event.make(kind, **fields))

    def elided(self, lines: Iterable[str], tls: bool, *, file: str | None = None) -> Elided:
        """Stand in for ``lines`` (never the final ``.``) with one ``== elided`` line."""
        return self.write(Elided.of(lines, tls=tls, file=file))

    def comment(self, text: str) -> None:
        """``# text``; several lines become several comments, control characters escaped."""
        for piece in text.splitlines() or [""]:
            clean = "".join(c if c == "\t" or not _unwritable(c) else escape_char(c)
                            for c in piece)
            self.write(Comment(clean.rstrip(" \t")))

    @property
    def closed(self) -> bool:
        return self._fd is None

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> TranscriptWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and self._fd is not None:
            try:
                self.event("warning", message=f"recording interrupted ({exc_type.__name__})")
            except OSError:
                pass
        self.close()

