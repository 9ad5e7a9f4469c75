"""The smtpshell transcript format (v2; v1 files are read too): the data model.

The format is specified in ``docs/transcript-format.md``. This module holds the frozen
dataclasses, the constants and :func:`resolve_secrets`; :mod:`smtpshell.transcript.syntax`
reads and writes the text, :mod:`smtpshell.transcript.writer` writes files crash-safely.
Standard library only. Replay, the mock server and the pytest plugin build on
:func:`~smtpshell.transcript.syntax.parse` / :func:`~smtpshell.transcript.syntax.load`,
:meth:`Transcript.steps` and :mod:`smtpshell.transcript.matching`.

One concern, so one module past 500 lines: what a transcript is (its entries, their
invariants, secret references, and the walk of steps), independent of any text or I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypeAlias

from smtpshell import __version__
from smtpshell.protocol import sasl
from smtpshell.protocol.replies import parse_reply_line

FORMAT_VERSION = 2
"""The version this smtpshell writes; it reads every version from 1 up to this one."""
BYTES_VERSION = 2
"""The first version with exact-bytes entries (``->>``/``~>>``) and byte elisions."""
MAX_BYTES_ENTRY = 64 * 1024
"""The writer starts a new ``->>`` entry after this many bytes of a run without a line feed
(an entry ends after each line feed anyway): every file line stays well below 4 MiB."""
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
SECRET_ENV_PREFIX = "SMTPSHELL_"
"""Replay and the mock read a secret's ``$NAME`` only from variables with this prefix (the
defaults ``SMTPSHELL_PASSWORD``/``SMTPSHELL_TOKEN`` among them), or ones the user allows by
name: a transcript from someone else must not send ``$AWS_SECRET_ACCESS_KEY`` anywhere."""
#: Events that script the mock as a fake server (a pause, a split write, a dropped
#: connection); steps leave them out, so they never cut a reply in two for replay.
SCRIPT_EVENTS = frozenset({"pause", "split", "drop"})


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

    def filler(self) -> Iterator[str]:
        """Stand-in lines for replay: same line count and byte count, all ``X`` (made one
        at a time: an elided body may stand for a gigabyte)."""
        base, extra = divmod(self.nbytes - 2 * self.lines, self.lines)
        return ("X" * (base + (1 if i < extra else 0)) for i in range(self.lines))


@dataclass(frozen=True)
class ClientBytes:
    """Exact bytes the client sent, no CRLF added (``->>``/``~>>``, format v2): a BDAT
    chunk, a /raw payload's last bytes without a line end, a smuggling probe. Consecutive
    entries are one run of bytes; where the writes on the wire were split is not kept."""

    data: bytes
    tls: bool = False
    lineno: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("a bytes entry holds at least one byte")

    @property
    def text(self) -> str:
        """The bytes as text (UTF-8, other bytes kept by surrogateescape)."""
        return self.data.decode("utf-8", "surrogateescape")

    @classmethod
    def split(cls, data: bytes, tls: bool = False) -> list[ClientBytes]:
        """``data`` as the writer writes it: one entry per line (ending after each LF), and
        a run without LF cut every :data:`MAX_BYTES_ENTRY` bytes."""
        out: list[ClientBytes] = []
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos, pos + MAX_BYTES_ENTRY)
            end = nl + 1 if nl >= 0 else min(len(data), pos + MAX_BYTES_ENTRY)
            out.append(cls(data[pos:end], tls))
            pos = end
        return out


@dataclass(frozen=True)
class ElidedBytes:
    """Exact bytes left out of the file (a big BDAT chunk): ``== elided bytes=N sha256=…``
    without ``lines=`` (format v2). Replay sends ``file=`` bytes or ``N`` filler bytes."""

    nbytes: int
    sha256: str
    tls: bool = False
    file: str | None = None
    lineno: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        problem = _elided_bytes_problem(self.nbytes, self.sha256, self.file)
        if problem:
            raise ValueError(problem)

    @classmethod
    def of(cls, data: bytes, *, tls: bool = False, file: str | None = None) -> ElidedBytes:
        return cls(len(data), hashlib.sha256(data).hexdigest(), tls, file)

    def matches(self, data: bytes) -> bool:
        return len(data) == self.nbytes and hashlib.sha256(data).hexdigest() == self.sha256

    def filler(self, block: int = MAX_BYTES_ENTRY) -> Iterator[bytes]:
        """Stand-in bytes for replay: ``nbytes`` of ``X``, a block at a time."""
        left = self.nbytes
        while left > 0:
            n = min(block, left)
            yield b"X" * n
            left -= n


@dataclass(frozen=True)
class Comment:
    text: str
    lineno: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        text = self.text
        if _COMMENT_UNWRITABLE_RE.search(text) or text != text.rstrip(" \t"):
            raise ValueError("comment text: one line, no control characters or trailing blanks")


Entry: TypeAlias = ClientLine | ClientBytes | ServerLine | Event | Elided | ElidedBytes | Comment
ClientEntry: TypeAlias = ClientLine | ClientBytes | Elided | ElidedBytes
"""What a client sent: lines, exact bytes, and elisions of either."""


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
            raise ValueError(f"this smtpshell reads transcript v1 to v{FORMAT_VERSION}")
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
    """Client lines sent back to back (pipelined, or a DATA body when ``body``), with any
    exact bytes (``->>``) among them in their place."""

    lines: tuple[ClientEntry, ...]
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
        return list(iter_steps(self.entries))


def iter_steps(entries: Iterable[Entry], *, body_chunk: int | None = None) -> Iterator[Step]:
    """:meth:`Transcript.steps` one by one, for entries read as a stream; with
    ``body_chunk``, a message body comes as several ``body`` Sends of at most that many
    lines, so a streamed replay never holds a whole body."""
    send: list[ClientEntry] = []
    reply: list[ServerLine] = []
    pending: deque[bool] = deque()  # one per command awaiting a reply: is it DATA?
    in_body = False

    def flush() -> Iterator[Step]:
        if send:
            yield Send(tuple(send), in_body)
            send.clear()
        if reply:
            yield Expect(tuple(reply))
            reply.clear()

    for entry in entries:
        if isinstance(entry, Comment) or (isinstance(entry, Event)
                                           and entry.kind in SCRIPT_EVENTS):
            continue
        if isinstance(entry, ClientLine | Elided | ClientBytes | ElidedBytes):
            if reply:
                yield from flush()
            send.append(entry)
            if in_body and isinstance(entry, ClientLine) and entry.text == ".":
                yield from flush()
                in_body = False
                pending.append(False)
            elif not in_body and isinstance(entry, ClientLine):
                pending.append(entry.text.strip().upper() == "DATA")
            elif in_body and body_chunk is not None and len(send) >= body_chunk:
                yield from flush()
        elif isinstance(entry, ServerLine):
            if send:
                yield from flush()
            reply.append(entry)
            if entry.final:
                yield from flush()
                was_data = pending.popleft() if pending else False
                in_body = in_body or (was_data and entry.code == 354)
        else:
            yield from flush()
            if entry.kind == "connect":  # a new connection: no reply or body carries over
                pending.clear()
                in_body = False
            yield entry
    yield from flush()


# --------------------------------------------------------------------------- helpers

_NAME_RE = re.compile(r"[a-z][a-z0-9-]*", re.ASCII)
_ENV_RE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_SECRET_VALUE_RE = re.compile(r'[^\s"\\{}]+')
_HEX64_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)
_HEADER_KEYS = ("target", "recorded", "tool", "tls", "description")
_UNWRITABLE_RE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # see _unwritable
_COMMENT_UNWRITABLE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")  # tab is fine
_LONE_SURROGATE_RE = re.compile("[\ud800-\udc7f\udd00-\udfff]")
"""Surrogates that stand for no byte (U+DC80-DCFF are raw bytes, kept by surrogateescape)."""
_VOLATILE_RES = {kind: re.compile(pattern, re.DOTALL) for kind, pattern in VOLATILE_KINDS.items()}



def reply_parts(text: str) -> tuple[int | None, bool, str | None]:
    """(code, final, enhanced) of a reply line; code None if it isn't a reply line.

    Read with the client's own grammar (``protocol.replies``), so a transcript, the mock
    and the live parser agree on what a reply line is.
    """
    line = parse_reply_line(text)
    if line is None:
        return None, True, None
    return line.code, line.final, line.enhanced


def wire_bytes(text: str) -> bytes:
    """A line's bytes on the wire (without CRLF): UTF-8, raw bytes kept by surrogateescape.

    A surrogate that stands for no byte (``\\u{d800}`` in a transcript) is not a character;
    it goes out as the three bytes Python's "surrogatepass" gives it, never as a traceback.
    """
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return b"".join(c.encode("utf-8", "surrogateescape" if 0xDC80 <= ord(c) <= 0xDCFF
                                 else "surrogatepass") for c in text)


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
    if len(parts) > 1 and sum(isinstance(p, SecretRef) for p in parts) > 1:
        raise ValueError("at most one secret per line")


def _volatile_problem(kind: str, literal: str) -> str | None:
    if kind not in VOLATILE_KINDS:
        known = ", ".join(VOLATILE_KINDS)
        return f"unknown placeholder kind {kind!r} (known: {known}, secret)"
    if not _VOLATILE_RES[kind].fullmatch(literal):
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


MAX_ELIDED_BYTES = 1 << 30
"""An elided body stands for at most 1 GiB: replay sends that much filler, no more."""


def _elided_problem(lines: int, nbytes: int, sha256: str, file: str | None) -> str | None:
    """What is wrong with an elision of lines (``lines=``), or None."""
    if lines < 1 or nbytes < 2 * lines:
        return "elided: needs lines >= 1 and bytes >= 2 * lines (each line ends in CRLF)"
    return _elided_bytes_problem(nbytes, sha256, file)


def _elided_bytes_problem(nbytes: int, sha256: str, file: str | None) -> str | None:
    """What is wrong with an elision's size, digest and file (of bytes or lines), or None."""
    if nbytes < 1:
        return "elided: bytes= must be at least 1"
    if nbytes > MAX_ELIDED_BYTES:
        return f"elided: bytes= is at most {MAX_ELIDED_BYTES} (1 GiB)"
    if not _HEX64_RE.fullmatch(sha256):
        return "elided: sha256= must be 64 lowercase hex digits"
    if file is not None and (not file or not file.isprintable()):
        return "elided: file= must be a printable path"
    return None


def _pattern_problem(kind: str, pattern: str) -> str | None:
    if not pattern or pattern != pattern.rstrip(" \t") or _UNWRITABLE_RE.search(pattern):
        return f"~{kind} pattern: not empty, no control characters, no trailing blanks"
    if kind == "re":
        try:
            re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            return f"bad regular expression in ~re: {exc}"
    return None


# --------------------------------------------------------------------------- numbers

_COUNT_RE = re.compile(r"[0-9]+", re.ASCII)
_DECIMAL_RE = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", re.ASCII)


def parse_count(text: str | None) -> int | None:
    """``text`` as a count (ASCII digits only), else None: ``int()`` would also take
    ``1_0``, `` 12``, ``+3`` and other scripts' digits, which a transcript never means."""
    if text is None or not _COUNT_RE.fullmatch(text):
        return None
    return int(text)


def parse_decimal(text: str | None) -> float | None:
    """``text`` as a plain decimal number (ASCII digits and at most one dot), else None:
    ``float()`` would also take ``1_0``, ``1e3``, ``inf``, ``nan`` and blanks."""
    if text is None or not _DECIMAL_RE.fullmatch(text):
        return None
    return float(text)


# --------------------------------------------------------------------------- secrets


def secret_env_problem(name: str, allowed: Iterable[str] = (),
                       option: str = "--secret-env") -> str | None:
    """Why replay or the mock may not read the variable ``name`` for a secret (its name has
    no ``SMTPSHELL_`` prefix and the user did not allow it), else None; ``option`` is how
    the user allows one (the front end's spelling)."""
    if name.startswith(SECRET_ENV_PREFIX) or name in allowed:
        return None
    return (f"the transcript reads a secret from the environment variable {name}, which "
            f"is not a {SECRET_ENV_PREFIX}* variable; nothing was sent (allow it by name "
            f"if you trust this transcript: {option} {name})")


def secret_env_names(line: ClientLine) -> Iterator[str]:
    """The variables (without ``$``) the secret on ``line`` (if any) is built from."""
    secret = line.secret
    for _, value in secret.params if secret else ():
        if value.startswith("$"):
            yield value[1:]


def check_secret_env(entries: Iterable[Entry], allowed: Iterable[str] = (),
                     option: str = "--secret-env") -> None:
    """Raise :class:`TranscriptError` (with the line number) at the first secret whose
    variable :func:`secret_env_problem` refuses; ``option`` is how the user allows one."""
    allowed = frozenset(allowed)
    for entry in entries:
        if not isinstance(entry, ClientLine):
            continue
        for name in secret_env_names(entry):
            problem = secret_env_problem(name, allowed, option)
            if problem:
                raise TranscriptError(problem, entry.lineno)


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

    # The mechanisms compute every answer (protocol.sasl.mechanisms.response): one place.
    if ref.mech == "plain":
        authzid = value("authzid") if ref.get("authzid") else ""
        data = sasl.response("plain", user=value("user"), secret=value("password"),
                             authzid=authzid)
    elif ref.mech == "login":
        if ref.get("user"):
            data = sasl.response("login:user", user=value("user"), secret="")
        else:
            data = sasl.response("login:password", user="", secret=value("password"))
    elif ref.mech == "xoauth2":
        data = sasl.response("xoauth2", user=value("user"), secret=value("token"))
    elif ref.mech == "cram-md5":
        if challenge is None:
            raise TranscriptError("CRAM-MD5 needs the server's 334 challenge", lineno)
        decoded = sasl.decode_b64(challenge.strip())
        if decoded.data is None:
            raise TranscriptError("the server's CRAM-MD5 challenge is not base64", lineno)
        data = sasl.response("cram-md5", user=value("user"), secret=value("password"),
                             challenge=decoded.data)
    else:
        return value("value")  # raw
    return sasl.b64(data)

