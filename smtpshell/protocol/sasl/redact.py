"""The one redaction point: every line the client sends is classified once, here.

An ``Outgoing`` is a line on its way to the server with everything the sinks may read:

* ``line`` (and ``raw`` for exact bytes): what goes on the wire, for the session only;
* ``text``: the redacted form, for the history file, transcripts, replay and mock reports.
  A credential becomes a ``{{secret:…}}`` placeholder (the transcript syntax, one system):
  ``AUTH PLAIN {{secret:plain user=alice password=$SMTPSHELL_PASSWORD}}`` when it can be
  rebuilt from the environment, ``{{secret:redacted}}`` when it cannot;
* ``shown``: the screen form, the line as sent or, for a secret, a mask that cannot be
  mistaken for wire bytes (``AUTH PLAIN <credential redacted: \\0alice\\0 + password>``),
  with the decoded ``meaning`` of base64 that carries no secret (``→ "alice"``).

``Classifier`` classifies hand-typed lines (typed, pasted, batch, /raw payloads), following
a hand-typed AUTH exchange to tell a LOGIN user name from its password; ``from_step`` does
the same for the lines /auth sends.  Any spelling a server accepts counts: case, leading
and trailing blanks, tabs, initial responses, ``=``, ``*``.  ``Redactor`` is the second line
of defence for free text (a known password or its base64 inside any line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from ...escapes import format_escapes
from ..connection import MAX_COMMAND_LINE
from .b64 import B64_TOKEN_CHARS, b64, decode_b64, lenient_b64
from .mechanisms import MAX_RESPONSE_LINE, ClientStep, Credential

Origin = Literal["user", "shell"]

DEFAULT_PASSWORD_ENV = "SMTPSHELL_PASSWORD"
"""Where a password is read from when no other source is given, and what placeholders name."""
DEFAULT_TOKEN_ENV = "SMTPSHELL_TOKEN"
"""The same for XOAUTH2 tokens."""
REDACTED = "{{secret:redacted}}"
"""Stands for a secret that cannot be rebuilt (malformed base64, an unknown mechanism)."""
MASK = "<credential redacted>"
"""The screen's and the reports' mask for a secret."""

_MARKED = re.compile(r"\{\{secret:[^}]*\}\}|<credential redacted[^>]*>")
"""A placeholder or a mask already in a text."""
_PARAM_RE = re.compile(r'[^\s"\\{}]+')


def _param_ok(value: str | None) -> bool:
    return bool(value) and value is not None and bool(_PARAM_RE.fullmatch(value)) \
        and value.isprintable()


def placeholder(
    credential: Credential | None,
    *,
    password_env: str = DEFAULT_PASSWORD_ENV,
    token_env: str = DEFAULT_TOKEN_ENV,
) -> str:
    """The ``{{secret:…}}`` placeholder for a credential (``REDACTED`` if not rebuildable)."""
    if credential is None:
        return REDACTED
    kind, user = credential.kind, credential.user
    if kind == "login:password":
        return "{{secret:login password=$" + password_env + "}}"
    if not _param_ok(user):
        return REDACTED
    if kind == "login:user":
        return "{{secret:login user=" + f"{user}" + "}}"
    if kind == "plain":
        extra = ""
        if credential.authzid:
            if not _param_ok(credential.authzid):
                return REDACTED
            extra = f" authzid={credential.authzid}"
        return "{{secret:plain user=" + f"{user} password=${password_env}{extra}" + "}}"
    if kind == "cram-md5":
        return "{{secret:cram-md5 user=" + f"{user} password=${password_env}" + "}}"
    return "{{secret:xoauth2 user=" + f"{user} token=${token_env}" + "}}"


def rebuildable(credential: Credential | None) -> bool:
    """Whether ``placeholder`` gives a reference replay can rebuild."""
    return placeholder(credential) != REDACTED


def mask(credential: Credential | None) -> str:
    """What the screen shows instead of a secret: never base64, never wire-like."""
    if credential is None:
        return MASK
    user = credential.user or ""
    if credential.kind == "plain":
        fields = format_escapes(f"{credential.authzid}\0{user}\0".encode("utf-8",
                                                                        "surrogateescape"))
        return f"<credential redacted: {fields} + password>"
    if credential.kind == "login:password":
        return "<credential redacted: password>"
    if credential.kind == "cram-md5":
        return f"<credential redacted: {format_escapes(user.encode())} + HMAC-MD5 digest>"
    if credential.kind == "xoauth2":
        return f"<credential redacted: user={format_escapes(user.encode())} + token>"
    return MASK


@dataclass(frozen=True, kw_only=True)
class Redaction:
    """How a line that needs care is recorded and shown.

    ``text`` is for history, transcripts and reports; ``shown`` for the screen; ``prefix``
    the part of the line before the secret token (``AUTH PLAIN ``), so a recorder can write
    a replayable reference after it; ``credential`` what the base64 is built from;
    ``meaning`` the decoded content where it carries no secret; ``warnings`` teach.
    """

    text: str
    shown: str
    secret: bool = False
    credential: Credential | None = None
    prefix: str = ""
    mechanism: str | None = None
    meaning: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outgoing:
    """A line on its way to the server, classified once (see the module docstring).

    ``raw`` holds exact bytes (raw mode, a message chunk) when the line is not one line plus
    CRLF; ``line`` is then their escaped text.  ``parts`` are the classified lines of a raw
    payload that carries a secret (a recorder writes them one by one).
    """

    line: str
    redaction: Redaction | None = None
    origin: Origin = "user"
    raw: bytes | None = None
    parts: tuple[Outgoing, ...] = field(default=(), repr=False)

    @classmethod
    def clear(cls, line: str, origin: Origin = "user") -> Outgoing:
        """A line that carries no secret by construction (the shell's own commands)."""
        return cls(line, None, origin)

    @property
    def text(self) -> str:
        """The redacted form: history, transcripts, replay and mock reports."""
        return self.redaction.text if self.redaction else self.line

    @property
    def shown(self) -> str:
        """The screen form: the line as sent, or a mask that is not wire bytes."""
        return self.redaction.shown if self.redaction else self.line

    @property
    def secret(self) -> bool:
        return self.redaction is not None and self.redaction.secret

    @property
    def credential(self) -> Credential | None:
        return self.redaction.credential if self.redaction else None

    @property
    def meaning(self) -> str:
        return self.redaction.meaning if self.redaction else ""

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.redaction.warnings if self.redaction else ()

    @property
    def display(self) -> str:
        """The line with its meaning, for a screen that shows what was sent."""
        return f"{self.shown}  {self.meaning}" if self.meaning else self.shown

    @property
    def teaching(self) -> str:
        """What to say under a line the user typed (they see their own text already)."""
        if self.secret:
            return self.shown
        return self.meaning


# --------------------------------------------------------------------------- answers

def newline_name(tail: bytes) -> str:
    """How a line end at the end of a decoded answer is named: ``a newline``, ``CR LF``…"""
    names = {b"\n": "a newline", b"\r\n": "CR LF", b"\r": "a carriage return"}
    return names.get(tail, "line-end bytes " + format_escapes(tail))


def _newline_hint(tail: bytes, what: str) -> str:
    """One line, at once, under a hand-typed answer whose decoded ``what`` ends in ``tail``
    (never the value itself)."""
    return (f"the base64 answer decodes to a {what} ending in {newline_name(tail)}, sent"
            " as part of it (probably `echo` without -n; use `printf '%s'` or /b64)")


def _newline_tail(data: bytes) -> bytes:
    return data[len(data.rstrip(b"\r\n")) :]


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class _Answer:
    """How one line of a hand-typed AUTH exchange is classified.

    A plain class, not a dataclass: a private value, one fewer class to build at start-up.
    """

    __slots__ = ("credential", "meaning", "secret", "user")

    def __init__(self, secret: bool, credential: Credential | None = None, meaning: str = "",
                 user: str | None = None) -> None:
        self.secret = secret
        self.credential = credential
        self.meaning = meaning
        self.user = user


def _plain(data: bytes, warnings: list[str]) -> _Answer:
    fields = data.split(b"\0")
    if len(fields) != 3:
        warnings.append(
            f"PLAIN needs authzid\\0user\\0password (two NUL bytes); found {len(fields) - 1}"
        )
        if b"\\0" in data and len(fields) == 1:
            warnings.append("a literal backslash-zero is not a NUL byte: use printf, not echo")
        return _Answer(True)
    if _newline_tail(data):
        warnings.append(_newline_hint(_newline_tail(data), "password"))
    if not fields[1]:
        warnings.append("the user name (second field) is empty")
    user, authzid = _text(fields[1]), _text(fields[0])
    if user is None or authzid is None:
        return _Answer(True)
    return _Answer(True, Credential("plain", user, authzid), user=user)


def _xoauth2(data: bytes, warnings: list[str]) -> _Answer:
    if not data.startswith(b"user="):
        warnings.append('XOAUTH2 text should start with "user="')
    if b"auth=Bearer " not in data:
        warnings.append('XOAUTH2 text should contain "\\x01auth=Bearer <token>"')
    if not data.endswith(b"\x01\x01"):
        warnings.append("XOAUTH2 text should end with two \\x01 bytes")
        if data.endswith(b"\n"):
            warnings.append(_newline_hint(_newline_tail(data), "token"))
    m = re.match(rb"user=([^\x01]*)\x01auth=Bearer ", data)
    user = _text(m.group(1)) if m else None
    if user is None:
        return _Answer(True)
    return _Answer(True, Credential("xoauth2", user), user=user)


def _answer(mech: str | None, text: str, index: int, user: str | None,
            warnings: list[str]) -> _Answer:
    """Classify one base64 answer (or initial response) of an exchange of ``mech``."""
    decoded = decode_b64(text)
    warnings.extend(decoded.warnings)
    data = decoded.data
    if data is None:
        warnings.append(f"not valid base64: {decoded.error}")
        data = lenient_b64(text)
        if data is None:
            return _Answer(True, meaning="→ (not valid base64; the server will answer 501)")
    if not data:
        return _Answer(False, meaning="→ (empty response)")
    if mech == "PLAIN":
        return _plain(data, warnings)
    if mech == "XOAUTH2":
        if index == 0:
            return _xoauth2(data, warnings)
        return _Answer(True)
    if mech == "LOGIN":
        tail = _newline_tail(data)
        if tail:
            warnings.append(_newline_hint(tail, "user name" if index == 0 else "password"))
        if index == 0:
            name = _text(data)
            quoted = f'→ "{format_escapes(data)}"'
            if name is None:
                return _Answer(False, meaning=quoted)
            return _Answer(False, Credential("login:user", name), quoted, user=name)
        if index == 1:
            return _Answer(True, Credential("login:password", None))
        warnings.append("LOGIN has only two answers (user name, then password)")
        return _Answer(True)
    if mech == "CRAM-MD5":
        m = re.fullmatch(rb"(\S+) [0-9a-f]{32}", data)
        if m is None or index != 0:
            warnings.append("a CRAM-MD5 answer is 'user <32 lowercase hex digits>'")
            return _Answer(True)
        name = _text(m.group(1))
        if name is None:
            return _Answer(True)
        return _Answer(True, Credential("cram-md5", name), user=name)
    return _Answer(True)


# --------------------------------------------------------------------------- lines


@dataclass(frozen=True)
class Exchange:
    """A hand-typed AUTH exchange in progress: its mechanism and the answers given."""

    mechanism: str | None
    answers: int = 0
    user: str | None = None


def _line(
    line: str, *, in_data: bool, in_auth: bool, exchange: Exchange | None, origin: Origin
) -> tuple[Outgoing, Exchange | None]:
    """Classify one line; returns it and the exchange after it was sent."""
    if in_data:
        return Outgoing(line, None, origin), exchange
    words = line.split()
    is_auth = bool(words) and words[0].upper() == "AUTH"
    warnings: list[str] = []
    if in_auth:
        mech = exchange.mechanism if exchange else None
        index = exchange.answers if exchange else 0
        after = Exchange(mech, index + 1, exchange.user if exchange else None)
        if line.strip() == "*":
            meaning = "→ cancels the exchange (the server answers 501)"
            return Outgoing(line, Redaction(text=line, shown=line, meaning=meaning,
                                            mechanism=mech), origin), None
        if is_auth:
            warnings.append(
                "inside an AUTH exchange this line is taken as a base64 answer; send * to cancel"
            )
        if len(line.encode("utf-8", "surrogateescape")) + 2 > MAX_RESPONSE_LINE:
            warnings.append(f"answer line longer than the {MAX_RESPONSE_LINE} octets servers allow")
        ans = _answer(mech, line, index, after.user, warnings)
        if ans.user is not None:
            after = replace(after, user=ans.user)
        prefix = line[: len(line) - len(line.lstrip())]
        return _outgoing(line, prefix, ans, mech, warnings, origin), after
    if not is_auth:
        return Outgoing(line, None, origin), None
    head = re.match(r"\s*\S+\s+(\S+)", line)
    if head is None:
        warnings.append("AUTH needs a mechanism name, e.g. AUTH PLAIN")
        return _with(line, warnings, None, origin), Exchange(None)
    mech = head.group(1).upper()
    rest = line[head.end() :]
    if not rest.strip():
        return _with(line, warnings, mech, origin), Exchange(mech)
    args = rest.split()
    if len(args) > 1:
        warnings.append(f"AUTH takes one initial response; found {len(args)} words after {mech}")
    if mech == "CRAM-MD5":
        warnings.append("CRAM-MD5 has no initial response: the server's challenge comes first")
    if len(line.encode("utf-8", "surrogateescape")) + 2 > MAX_COMMAND_LINE:
        warnings.append(
            f"the AUTH line passes {MAX_COMMAND_LINE} octets: send AUTH {mech} alone and "
            "answer the empty 334 challenge (RFC 4954 §4)"
        )
    prefix = line[: head.end() + len(rest) - len(rest.lstrip())]
    ans = _answer(mech, args[0], 0, None, warnings)
    if len(args) > 1:
        ans = _Answer(True)
    return _outgoing(line, prefix, ans, mech, warnings, origin), Exchange(mech, 1, ans.user)


def _with(line: str, warnings: list[str], mech: str | None, origin: Origin) -> Outgoing:
    if not warnings and mech is None:
        return Outgoing(line, None, origin)
    return Outgoing(line, Redaction(text=line, shown=line, mechanism=mech,
                                    warnings=tuple(warnings)), origin)


def _outgoing(line: str, prefix: str, ans: _Answer, mech: str | None, warnings: list[str],
              origin: Origin) -> Outgoing:
    if not ans.secret:
        redaction = Redaction(text=line, shown=line, credential=ans.credential, prefix=prefix,
                              mechanism=mech, meaning=ans.meaning, warnings=tuple(warnings))
        return Outgoing(line, redaction, origin)
    redaction = Redaction(
        text=prefix + placeholder(ans.credential),
        shown=prefix + mask(ans.credential),
        secret=True,
        credential=ans.credential,
        prefix=prefix,
        mechanism=mech,
        warnings=tuple(warnings),
    )
    return Outgoing(line, redaction, origin)


# --------------------------------------------------------------------------- the classifier


_ANSWERS = {"PLAIN": 1, "LOGIN": 2, "CRAM-MD5": 1, "XOAUTH2": 1}
"""How many answers a mechanism's exchange takes (a paste in the history is simulated)."""
_ONE_WORD_VERBS = frozenset({"QUIT", "RSET", "NOOP", "DATA", "HELP", "STARTTLS", "TURN"})
"""Commands typed alone on a line: never taken for an answer in a pasted exchange."""


def lined_up_answer(line: str) -> bool:
    """Could ``line`` be an answer written for an AUTH exchange (one word, not a command)?

    After the server ended an exchange (535 to a user name), such a line is not sent: it
    would go out as a command, in clear, and be recorded verbatim.
    """
    words = line.split()
    return len(words) == 1 and words[0].upper() not in _ONE_WORD_VERBS | {"EHLO", "HELO"}


class Classifier:
    """Classifies the lines of one connection, following hand-typed AUTH exchanges.

    ``line()`` and ``raw()`` are called once per line as it is sent (``commit=True``) or
    to look ahead (the history file sees a line before it is sent).  ``in_data`` and
    ``in_auth`` come from the connection's state when the line is sent.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.redactor = redactor if redactor is not None else Redactor()
        self.exchange: Exchange | None = None

    def line(
        self, line: str, *, in_data: bool, in_auth: bool, origin: Origin = "user",
        commit: bool = True,
    ) -> Outgoing:
        out, after = _line(line, in_data=in_data, in_auth=in_auth, exchange=self.exchange,
                           origin=origin)
        if commit and not in_data:
            self.exchange = after
        return self._second_look(out)

    def raw(
        self, data: bytes, *, in_data: bool, in_auth: bool, origin: Origin = "user",
        commit: bool = True,
    ) -> Outgoing:
        """Exact bytes (a /raw payload): each CRLF-ended line classified in turn."""
        exchange = self.exchange
        parts: list[Outgoing] = []
        texts: list[str] = []
        shown: list[str] = []
        auth = in_auth
        pieces = data.split(b"\n")
        for i, piece in enumerate(pieces):
            end = b"" if i == len(pieces) - 1 else b"\n"
            body = piece.removesuffix(b"\r") if end else piece
            eol = piece[len(body) :] + end
            text = body.decode("utf-8", "surrogateescape")
            if not eol and not body:
                break  # nothing after the last CRLF: not a line, not an answer
            out, exchange = _line(text, in_data=in_data, in_auth=auth, exchange=exchange,
                                  origin=origin)
            out = self._second_look(out)
            if exchange is not None and eol:
                auth = True  # after an AUTH line the next line is taken as an answer
            if eol or body:
                parts.append(out)
            texts.append(_escaped(out.text) + format_escapes(eol))
            shown.append(_escaped(out.shown) + format_escapes(eol))
        if commit and not in_data:
            self.exchange = exchange
        line = format_escapes(data)
        if not any(p.secret for p in parts):
            return Outgoing(line, None, origin, data)
        warnings = tuple(w for p in parts for w in p.warnings)
        redaction = Redaction(text="".join(texts), shown="".join(shown), secret=True,
                              warnings=warnings)
        return Outgoing(line, redaction, origin, data, tuple(parts))

    def from_step(self, step: ClientStep, mechanism: str, *, first: bool = False) -> Outgoing:
        """A line /auth sends: the mechanism knows what it is built from."""
        cred = step.credential
        if first:
            self.exchange = Exchange(mechanism, 0 if step.line == f"AUTH {mechanism}" else 1)
        elif self.exchange is not None:
            self.exchange = replace(self.exchange, answers=self.exchange.answers + 1)
        if step.line == "*":
            why = f"cancel: {step.note}" if step.note else "cancel the exchange"
            meaning = f"({why}; the server answers 501)"
            return Outgoing("*", Redaction(text="*", shown="*", meaning=meaning), "shell")
        if step.meaning is not None and not step.secret:
            meaning = f'→ "{format_escapes(step.meaning)}"' if step.meaning else "→ (empty)"
            if not step.meaning and not step.line:
                meaning = "(empty line)"
            return Outgoing(step.line, Redaction(text=step.line, shown=step.line,
                                                 credential=cred, meaning=meaning,
                                                 mechanism=mechanism), "shell")
        if not step.secret:
            return Outgoing.clear(step.line, "shell")
        prefix = step.line.rsplit(" ", 1)[0] + " " if " " in step.line else ""
        redaction = Redaction(text=prefix + placeholder(cred), shown=prefix + mask(cred),
                              secret=True, credential=cred, prefix=prefix, mechanism=mechanism)
        return Outgoing(step.line, redaction, "shell")

    def history(self, text: str, *, in_data: bool, in_auth: bool) -> str:
        """What the history file keeps of SMTP lines typed or pasted now (not yet sent).

        In a paste, a one-word line after an AUTH line is taken as its answer: better a
        command redacted in the history than a password kept.
        """
        exchange, auth = self.exchange, in_auth
        kept: list[str] = []
        for line in text.split("\n"):
            if auth and line.strip().upper() in _ONE_WORD_VERBS:
                auth, exchange = False, None
            out, exchange = _line(line, in_data=in_data, in_auth=auth, exchange=exchange,
                                  origin="user")
            kept.append(self._second_look(out).text)
            if exchange is None:
                auth = False
            elif auth:
                auth = len(line.split()) <= 1
            else:
                auth = True  # an AUTH line: its answers follow
            if auth and exchange is not None:
                expected = _ANSWERS.get(exchange.mechanism or "")
                auth = expected is None or exchange.answers < expected
        return "\n".join(kept)

    def _second_look(self, out: Outgoing) -> Outgoing:
        """The redactor's pass: a known secret, or its base64, anywhere in the line."""
        if not self.redactor:
            return out
        text = self.redactor.redact(out.text, REDACTED)
        if text == out.text:
            return out
        shown = self.redactor.redact(out.shown, MASK)
        base = out.redaction or Redaction(text=out.line, shown=out.line)
        return replace(out, redaction=replace(base, text=text, shown=shown, secret=True,
                                              credential=None, meaning=""))


def _escaped(text: str) -> str:
    """A classified line's text in /raw's escapes, keeping placeholders and masks readable."""
    out: list[str] = []
    pos = 0
    for m in _MARKED.finditer(text):
        out += [format_escapes(text[pos : m.start()].encode("utf-8", "surrogateescape")),
                m.group()]
        pos = m.end()
    out.append(format_escapes(text[pos:].encode("utf-8", "surrogateescape")))
    return "".join(out)


# --------------------------------------------------------------------------- reports


def for_report(line: str) -> str:
    """A client line as a replay or mock report prints it: a credential masked.

    Reports see lines that came from a peer or a file, not through a ``Classifier``: the
    initial response of an AUTH line becomes ``MASK`` (``AUTH PLAIN <credential
    redacted>``); a transcript arrow before it (``->``, ``~>``) and a ``{{secret:…}}``
    placeholder (which holds no secret) stay.  A base64 answer on a line of its own needs
    the exchange's state: the caller masks it with ``mask_answer``.
    """
    m = re.match(r"(\s*(?:[-~]>\s+)?AUTH\s+\S+)(\s+)(\S.*)$", line, re.IGNORECASE | re.DOTALL)
    if m is None or m.group(3).startswith("{{secret:"):
        return line
    return f"{m.group(1)}{m.group(2)}{MASK}"


def mask_answer(line: str) -> str:
    """A line sent inside an AUTH exchange, for a report: ``*`` and empty lines as they are."""
    if line.strip() in ("", "*", "="):
        return line
    return MASK


# --------------------------------------------------------------------------- redactor

MIN_RAW_SECRET = 3
"""Raw secrets shorter than this are not searched for in free text (too many false hits)."""
MIN_CORE = 6
"""Shortest base64 fragment of a secret that marks a base64 word as carrying it."""


def _cores(secret: bytes) -> list[str]:
    """The base64 characters that depend only on ``secret``, for each of the 3 alignments."""
    cores = []
    for k in range(3):
        encoded = b64(b"\0" * k + secret)
        start, end = -(-8 * k // 6), (8 * (k + len(secret))) // 6
        if end - start >= MIN_CORE:
            cores.append(encoded[start:end])
    return cores


class Redactor:
    """Finds known secrets, their base64 and base64 words carrying them, in free text.

    The second line of defence: feed it the secrets (``add_secret``: a password given to
    /auth, ``$SMTPSHELL_PASSWORD``) and the exact base64 a mechanism sends
    (``add_literal``); ``redact(text, mask)`` replaces each hit with ``mask``.
    """

    def __init__(self) -> None:
        self._raw: set[str] = set()
        self._b64: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self._raw or self._b64)

    def add_secret(self, secret: str) -> None:
        """Redact ``secret`` itself and any base64 word that contains it."""
        if not secret:
            return
        if len(secret) >= MIN_RAW_SECRET:
            self._raw.add(secret)
        data = secret.encode("utf-8", "surrogateescape")
        self._b64.add(b64(data))
        self._b64.update(_cores(data))

    def add_literal(self, literal: str) -> None:
        """Redact the base64 word containing ``literal``."""
        if literal:
            self._b64.add(literal)

    def literals(self) -> tuple[str, ...]:
        """What ``redact`` looks for: a text without any of these is left as it is (a quick
        test before classifying lines one by one, for a message streamed in chunks)."""
        return (*self._raw, *self._b64)

    def redact(self, text: str, mask: str = REDACTED) -> str:
        spans: list[tuple[int, int]] = []
        for literal in self._raw:
            spans += [(s, s + len(literal)) for s in _find_all(text, literal)]
        for literal in self._b64:
            for s in _find_all(text, literal):
                start, end = s, s + len(literal)
                while start > 0 and text[start - 1] in B64_TOKEN_CHARS:
                    start -= 1
                while end < len(text) and text[end] in B64_TOKEN_CHARS:
                    end += 1
                spans.append((start, end))
        taken = [m.span() for m in _MARKED.finditer(text)]
        spans = [s for s in spans if not any(s[0] < e and b < s[1] for b, e in taken)]
        if not spans:
            return text
        spans.sort(key=lambda span: (span[0], -span[1]))
        out: list[str] = []
        pos = 0
        current: tuple[int, int] | None = None
        for start, end in spans:
            if current is not None and start < current[1]:
                current = (current[0], max(current[1], end))
                continue
            if current is not None:
                out += [text[pos : current[0]], mask]
                pos = current[1]
            current = (start, end)
        assert current is not None
        out += [text[pos : current[0]], mask, text[current[1] :]]
        return "".join(out)


def _find_all(text: str, literal: str) -> list[int]:
    found = []
    start = text.find(literal)
    while start >= 0:
        found.append(start)
        start = text.find(literal, start + 1)
    return found
