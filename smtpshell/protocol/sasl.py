"""SASL for SMTP AUTH (RFC 4954), pure and sans-IO.

What is here:

* escapes (``unescape``/``show_bytes``) and strict base64 (``b64``/``decode_b64``);
* the mechanisms PLAIN (RFC 4616), LOGIN (MS-XLOGIN), CRAM-MD5 (RFC 2195) and XOAUTH2
  (Google) as step machines: ``start()`` gives the ``AUTH`` line, ``step(challenge)``
  answers each ``334``, ``cancel()`` gives ``*``;
* the teaching view: ``describe_challenge``, ``analyze_client_line`` (hand-typed AUTH),
  ``auth_outcome``;
* redaction: every secret-carrying line has a ``redacted`` form built from
  ``placeholder(kind)``; ``Redactor`` is the second line of defence for free text.

Placeholders look like ``<secret:KIND>``.  KIND is a mechanism name (``PLAIN``, ``LOGIN``,
``XOAUTH2``: the exact base64 response of that mechanism that carries the secret),
``password``/``token`` (the raw secret) or ``password-base64``/``token-base64`` (base64
text that contains the secret).  ``expand_placeholders`` rebuilds them from credentials.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

# --------------------------------------------------------------------------- escapes

_ESCAPES = {"0": b"\0", "n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\"}
_SHOW = {"\0": "\\0", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def unescape(text: str) -> bytes:
    r"""Bytes from text with ``\0 \n \r \t \\ \xNN`` escapes; ValueError names the position."""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            try:
                out += ch.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"character at position {i + 1} is not valid Unicode") from None
            i += 1
            continue
        if i + 1 >= len(text):
            raise ValueError(f"lone backslash at position {i + 1} (write \\\\ for a backslash)")
        code = text[i + 1]
        if code in _ESCAPES:
            out += _ESCAPES[code]
            i += 2
        elif code == "x":
            digits = text[i + 2 : i + 4]
            if len(digits) != 2 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError(f"\\x at position {i + 1} needs two hex digits, e.g. \\x01")
            out.append(int(digits, 16))
            i += 4
        else:
            raise ValueError(
                f"invalid escape \\{code} at position {i + 1} "
                "(known: \\0 \\n \\r \\t \\\\ \\xNN)"
            )
    return bytes(out)


def show_bytes(data: bytes) -> str:
    r"""Bytes for display: printable text as is, ``\0 \n \r \t \\``, anything else ``\xNN``.

    ``unescape(show_bytes(data)) == data`` for all data.
    """
    out: list[str] = []
    for ch in data.decode("utf-8", errors="surrogateescape"):
        if ch in _SHOW:
            out.append(_SHOW[ch])
        elif "\udc80" <= ch <= "\udcff":
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append("".join(f"\\x{b:02x}" for b in ch.encode("utf-8")))
    return "".join(out)


def _quoted(data: bytes) -> str:
    return f'"{show_bytes(data)}"'


# --------------------------------------------------------------------------- base64

_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_B64_TOKEN_CHARS = _B64_CHARS | {"="}
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
        elif ch in _B64_CHARS:
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


def _lenient_b64(text: str) -> bytes | None:
    """Best-effort decoding (whitespace and padding repaired), for showing meaning only."""
    body = "".join(text.split()).rstrip("=")
    if len(body) % 4 == 1 or any(ch not in _B64_CHARS for ch in body):
        return None
    try:
        return base64.b64decode(body + _PADDING[len(body) % 4], validate=True)
    except (binascii.Error, ValueError):
        return None


# --------------------------------------------------------------------------- placeholders

PLACEHOLDER_RE = re.compile(r"<secret:([A-Za-z0-9][A-Za-z0-9_.-]*)>")
"""Matches a placeholder; group 1 is its kind."""
MASK = b"****"
"""What a masked secret looks like in the teaching view (fixed length: no length leak)."""


def placeholder(kind: str) -> str:
    """The placeholder that stands for a secret of ``kind`` in history and transcripts."""
    return f"<secret:{kind}>"


def plain_blob(user: str, password: str, authzid: str = "") -> bytes:
    """RFC 4616: authzid NUL authcid NUL passwd (before base64)."""
    return f"{authzid}\0{user}\0{password}".encode("utf-8", "surrogateescape")


def xoauth2_blob(user: str, token: str) -> bytes:
    """Google's XOAUTH2 string (before base64)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode("utf-8", "surrogateescape")


def cram_md5_answer(user: str, password: str, challenge: bytes) -> bytes:
    """RFC 2195: user SP lowercase-hex HMAC-MD5(password, challenge) (before base64)."""
    import hashlib  # here, not at the top: only CRAM-MD5 needs it (start-up time)
    import hmac

    key = password.encode("utf-8", "surrogateescape")
    digest = hmac.new(key, challenge, hashlib.md5).hexdigest()
    return f"{user} {digest}".encode("utf-8", "surrogateescape")




def expand_placeholders(
    text: str,
    *,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    authzid: str = "",
) -> tuple[str, tuple[str, ...]]:
    """Fill placeholders from credentials; returns the text and the kinds left unfilled."""
    missing: list[str] = []

    def value(kind: str) -> str | None:
        if kind == "password" or kind == "token":
            return password if kind == "password" else token
        if kind in ("password-base64", "LOGIN") and password is not None:
            return b64(password.encode())
        if kind == "token-base64" and token is not None:
            return b64(token.encode())
        if kind == "PLAIN" and user is not None and password is not None:
            return b64(plain_blob(user, password, authzid))
        if kind == "XOAUTH2" and user is not None and token is not None:
            return b64(xoauth2_blob(user, token))
        return None

    def fill(m: re.Match[str]) -> str:
        filled = value(m.group(1))
        if filled is None:
            if m.group(1) not in missing:
                missing.append(m.group(1))
            return m.group(0)
        return filled

    return PLACEHOLDER_RE.sub(fill, text), tuple(missing)


# --------------------------------------------------------------------------- mechanisms

MAX_COMMAND_LINE = 512
"""RFC 5321 §4.5.3.1.4, octets including CRLF; RFC 4954 drops the initial response beyond it."""
MAX_RESPONSE_LINE = 12288
"""RFC 4954 §4: servers should accept AUTH response lines at least this long."""


@dataclass(frozen=True)
class ClientStep:
    """One line for the client to send during AUTH.

    ``line`` is the exact text (no CRLF); ``shown`` is for the teaching view (secret
    masked, with the decoded meaning); ``redacted`` is for history and transcripts;
    ``note`` explains anything unusual (a dropped initial response, a server error...).
    ``credential`` says what the base64 in the line is built from, for a recorder that
    writes rebuildable references: ``plain``, ``login:user``, ``login:password``,
    ``cram-md5``, ``xoauth2`` (None for lines without credentials).
    """

    line: str
    shown: str
    redacted: str
    secret: bool = False
    note: str = ""
    credential: str | None = None


@dataclass(frozen=True)
class _Answer:
    data: bytes
    masked: bytes
    secret: bool
    note: str = ""
    credential: str | None = None


def _shown(prefix: str, data: bytes) -> str:
    """``prefix + base64  → "meaning"`` (data is already masked)."""
    if not data:
        return f"{prefix}(empty line)" if not prefix else prefix.rstrip()
    return f'{prefix}{b64(data)}  → {_quoted(data)}'


def credential_problem(mechanism: str, user: str, secret: str) -> str | None:
    """Why these credentials cannot be used with ``mechanism``, or None.  Check before use."""
    mech = mechanism.upper()
    if mech not in MECHANISMS:
        return f"unsupported mechanism {mechanism!r} (known: {', '.join(MECHANISMS)})"
    what = "token" if mech == "XOAUTH2" else "password"
    if not user:
        return "the user name is empty"
    if not secret:
        return f"the {what} is empty"
    if mech == "PLAIN" and ("\0" in user or "\0" in secret):
        return "PLAIN credentials cannot contain a NUL byte (RFC 4616)"
    if mech == "XOAUTH2" and ("\x01" in user or "\x01" in secret):
        return "XOAUTH2 user and token cannot contain \\x01"
    return None


class Mechanism:
    """A client SASL mechanism as a step machine.  Subclasses fill in the answers."""

    name: ClassVar[str]
    secret_kind: ClassVar[str] = "password"

    def __init__(self, user: str, secret: str) -> None:
        problem = credential_problem(self.name, user, secret)
        if problem:
            raise ValueError(problem)
        self.user = user
        self._secret = secret
        self.answers = 0
        """Answers sent so far (the initial response counts)."""
        self.use_initial_response = True

    # -- what subclasses provide
    def _initial_response(self) -> _Answer | None:
        return None

    def _respond(self, challenge: bytes) -> _Answer | str:
        """The answer to a decoded challenge, or a reason to cancel."""
        raise NotImplementedError

    def products(self) -> dict[str, str]:
        """Exact base64 this mechanism sends that carries the secret -> its placeholder."""
        return {}

    # -- the steps
    def start(self, initial_response_allowed: bool = True) -> ClientStep:
        """The ``AUTH`` command, with the initial response when allowed and short enough."""
        command = f"AUTH {self.name}"
        ir = self._initial_response() if self.use_initial_response else None
        if ir is None or not initial_response_allowed:
            return ClientStep(command, command, command)
        line = f"{command} {b64(ir.data) or '='}"
        if len(line.encode()) + 2 > MAX_COMMAND_LINE:
            note = (
                f"initial response left out: the line would pass {MAX_COMMAND_LINE} octets; "
                "it follows the server's empty 334 challenge (RFC 4954 §4)"
            )
            return ClientStep(command, command, command, note=note)
        self.answers += 1
        redacted = f"{command} {placeholder(self.name)}" if ir.secret else line
        shown = _shown(f"{command} ", ir.masked) if ir.data else f"{command} =  → (empty)"
        return ClientStep(line, shown, redacted, ir.secret, ir.note, ir.credential)

    def step(self, challenge_b64: str) -> ClientStep:
        """The answer to a ``334`` whose text (after ``334 ``) is ``challenge_b64``."""
        decoded = decode_b64(challenge_b64)
        if decoded.data is None:
            return self.cancel(f"the server's challenge is not valid base64: {decoded.error}")
        answer = self._respond(decoded.data)
        if isinstance(answer, str):
            return self.cancel(answer)
        self.answers += 1
        line = b64(answer.data)
        redacted = placeholder(self.name) if answer.secret else line
        note = "; ".join(n for n in (*decoded.warnings, answer.note) if n)
        shown = _shown("", answer.masked)
        return ClientStep(line, shown, redacted, answer.secret, note, answer.credential)

    def cancel(self, reason: str = "") -> ClientStep:
        """``*``: abandon the exchange (the server answers 501)."""
        why = f"cancel: {reason}" if reason else "cancel the exchange"
        return ClientStep("*", f"*  ({why}; the server answers 501)", "*", False, reason)


class Plain(Mechanism):
    """RFC 4616: base64(authzid NUL user NUL password), as initial response or after ``334 ``."""

    name = "PLAIN"

    def __init__(
        self, user: str, password: str, authzid: str = "", *, initial_response: bool = True
    ) -> None:
        super().__init__(user, password)
        if "\0" in authzid:
            raise ValueError("PLAIN credentials cannot contain a NUL byte (RFC 4616)")
        self.authzid = authzid
        self.use_initial_response = initial_response

    def _creds(self) -> _Answer:
        masked = plain_blob(self.user, MASK.decode(), self.authzid)
        data = plain_blob(self.user, self._secret, self.authzid)
        return _Answer(data, masked, True, credential="plain")

    def _initial_response(self) -> _Answer:
        return self._creds()

    def _respond(self, challenge: bytes) -> _Answer | str:
        if self.answers:
            return "the server sent another challenge after the PLAIN credentials"
        creds = self._creds()
        if challenge:
            note = f"PLAIN expects an empty challenge, got {_quoted(challenge)}"
            return _Answer(creds.data, creds.masked, True, note, creds.credential)
        return creds

    def products(self) -> dict[str, str]:
        return {b64(self._creds().data): placeholder(self.name)}


class Login(Mechanism):
    """MS-XLOGIN: the user name, then the password, each answering a ``334`` (counted)."""

    name = "LOGIN"

    def __init__(self, user: str, password: str, *, initial_response: bool = False) -> None:
        super().__init__(user, password)
        self.use_initial_response = initial_response

    def _user(self, note: str = "") -> _Answer:
        return _Answer(self.user.encode(), self.user.encode(), False, note, "login:user")

    def _initial_response(self) -> _Answer:
        return self._user()

    def _respond(self, challenge: bytes) -> _Answer | str:
        prompt = challenge.lower()
        if self.answers == 0:
            note = ""
            if b"pass" in prompt:
                note = f"server prompt {_quoted(challenge)}, but LOGIN sends the user name first"
            return self._user(note)
        if self.answers == 1:
            note = ""
            if b"user" in prompt:
                note = f"server prompt {_quoted(challenge)}, but LOGIN sends the password second"
            return _Answer(self._secret.encode(), MASK, True, note, "login:password")
        return "LOGIN has only two answers, yet the server sent a third challenge"

    def products(self) -> dict[str, str]:
        return {b64(self._secret.encode()): placeholder(self.name)}


class CramMd5(Mechanism):
    """RFC 2195: base64(user SP lowercase-hex HMAC-MD5(password, challenge))."""

    name = "CRAM-MD5"

    def _respond(self, challenge: bytes) -> _Answer | str:
        if self.answers:
            return "CRAM-MD5 has one answer, yet the server sent another challenge"
        if not challenge:
            return "CRAM-MD5 needs a challenge from the server, got an empty one"
        data = cram_md5_answer(self.user, self._secret, challenge)
        return _Answer(data, data, False, credential="cram-md5")


class XOAuth2(Mechanism):
    """Google's XOAUTH2: base64("user=" U ^A "auth=Bearer " T ^A ^A).

    On failure the server sends a ``334`` with base64 JSON; the client answers an empty
    line and the server then sends the final error.  The JSON is kept in ``error``.
    """

    name = "XOAUTH2"
    secret_kind = "token"

    def __init__(self, user: str, token: str, *, initial_response: bool = True) -> None:
        super().__init__(user, token)
        self.use_initial_response = initial_response
        self.error: object = None
        """The decoded JSON error the server sent, if any."""

    def _creds(self) -> _Answer:
        data = xoauth2_blob(self.user, self._secret)
        return _Answer(data, xoauth2_blob(self.user, MASK.decode()), True, credential="xoauth2")

    def _initial_response(self) -> _Answer:
        return self._creds()

    def _respond(self, challenge: bytes) -> _Answer | str:
        if self.answers == 0:
            creds = self._creds()
            if challenge:
                note = f"XOAUTH2 expects an empty challenge, got {_quoted(challenge)}"
                return _Answer(creds.data, creds.masked, True, note, creds.credential)
            return creds
        if self.answers == 1:
            parsed = _json_object(challenge)
            if parsed is None:
                note = f"server error (not JSON): {_quoted(challenge)}"
            else:
                self.error = parsed
                note = f"server error {_compact_json(parsed)}"
            note += "; answering an empty line, the final reply follows"
            return _Answer(b"", b"", False, note)
        return "the server kept challenging after the XOAUTH2 error acknowledgement"

    def products(self) -> dict[str, str]:
        return {b64(self._creds().data): placeholder(self.name)}


MECHANISMS: Mapping[str, type[Mechanism]] = {
    "CRAM-MD5": CramMd5,
    "PLAIN": Plain,
    "LOGIN": Login,
    "XOAUTH2": XOAuth2,
}
"""Implemented mechanisms; each class takes ``(user, secret)``."""
_PASSWORD_PREFERENCE = ("CRAM-MD5", "PLAIN", "LOGIN")


def advertised_mechanisms(source: Mapping[str, str] | Iterable[str] | str) -> tuple[str, ...]:
    """Mechanisms from EHLO keywords (``{"AUTH": "PLAIN LOGIN"}``) or EHLO lines.

    Lines may carry the reply code (``250-AUTH PLAIN``) and may use the legacy
    ``AUTH=LOGIN`` form.  Names are upper-cased, in order, without duplicates.
    """
    words: list[str] = []
    if isinstance(source, Mapping):
        for key, params in source.items():
            upper = key.upper()
            if upper == "AUTH":
                words += params.split()
            elif upper.startswith("AUTH="):
                words += [key[5:], *params.split()]
    else:
        lines = [source] if isinstance(source, str) else source
        for line in lines:
            text = re.sub(r"^\d{3}[ -]?", "", line.strip())
            keyword, _, params = text.partition(" ")
            if keyword.upper() == "AUTH":
                words += params.split()
            elif keyword.upper().startswith("AUTH="):
                words += [keyword[5:], *params.split()]
    seen: list[str] = []
    for word in words:
        if word and word.upper() not in seen:
            seen.append(word.upper())
    return tuple(seen)


def choose_mechanism(advertised: Iterable[str], *, token: bool = False) -> str | None:
    """The strongest advertised mechanism we implement (CRAM-MD5 > PLAIN > LOGIN).

    With ``token=True`` only XOAUTH2 qualifies.
    """
    offered = {m.upper() for m in advertised}
    for name in ("XOAUTH2",) if token else _PASSWORD_PREFERENCE:
        if name in offered:
            return name
    return None


# --------------------------------------------------------------------------- teaching view


def _compact_json(value: object) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def _json_object(data: bytes) -> object | None:
    """The JSON object in ``data`` (XOAUTH2 error challenges), or None."""
    if not data.lstrip().startswith(b"{"):
        return None
    import json  # here, not at the top: only XOAUTH2 errors are JSON (start-up time)

    try:
        parsed: object = json.loads(data.decode("utf-8"))
    except ValueError:
        return None
    return parsed


def describe_challenge(b64text: str) -> str:
    """What a ``334`` challenge says, e.g. ``→ "Username:"``."""
    decoded = decode_b64(b64text)
    if decoded.data is None:
        return f"→ (not valid base64: {decoded.error})"
    data = decoded.data
    if not data:
        text = "→ (empty challenge: send your response)"
    elif (parsed := _json_object(data)) is not None:
        compact = _compact_json(parsed)
        text = f"→ JSON error {compact}: answer with an empty line; the final reply follows"
    else:
        text = f"→ {_quoted(data)}"
    return text + "".join(f"  (note: {w})" for w in decoded.warnings)


@dataclass(frozen=True)
class Analysis:
    """What a hand-typed AUTH line means.

    ``shown`` is the masked meaning for the teaching view (``""`` when there is nothing
    to say), ``redacted`` the line as history and transcripts keep it, ``secret`` whether
    the line carries one, ``mechanism`` the mechanism the line starts or belongs to.
    """

    redacted: str
    shown: str = ""
    warnings: tuple[str, ...] = ()
    secret: bool = False
    mechanism: str | None = None


_NEWLINE_HINT = (
    "the decoded text ends with a newline: the `echo` mistake; encode with "
    "printf '%s' (or echo -n) so the newline is not part of the {what}"
)


def _newline_tail(data: bytes) -> bytes:
    """The CR/LF bytes at the end of ``data`` (the `echo` mistake leaves one)."""
    return data[len(data.rstrip(b"\r\n")) :]


def _mask_plain(data: bytes, warnings: list[str]) -> bytes:
    fields = data.split(b"\0")
    if len(fields) != 3:
        warnings.append(
            f"PLAIN needs authzid\\0user\\0password (two NUL bytes); found {len(fields) - 1}"
        )
        if b"\\0" in data and len(fields) == 1:
            warnings.append("a literal backslash-zero is not a NUL byte: use printf, not echo")
    keep = fields[: min(2, len(fields) - 1)]
    tail = _newline_tail(data)
    if tail:
        warnings.append(_NEWLINE_HINT.format(what="password"))
    if len(fields) == 3 and not fields[1]:
        warnings.append("the user name (second field) is empty")
    return b"\0".join([*keep, MASK]) + tail


def _mask_xoauth2(data: bytes, warnings: list[str]) -> bytes:
    if not data.startswith(b"user="):
        warnings.append('XOAUTH2 text should start with "user="')
    if b"auth=Bearer " not in data:
        warnings.append('XOAUTH2 text should contain "\\x01auth=Bearer <token>"')
    if not data.endswith(b"\x01\x01"):
        warnings.append("XOAUTH2 text should end with two \\x01 bytes")
        if data.endswith(b"\n"):
            warnings.append(_NEWLINE_HINT.format(what="token"))
    marker = data.find(b"auth=")
    if marker < 0:
        if data.startswith(b"user=") and b"\x01" in data:
            return data.split(b"\x01", 1)[0] + b"\x01" + MASK
        return MASK
    start = marker + (12 if data[marker:].startswith(b"auth=Bearer ") else 5)
    end = data.find(b"\x01", start)
    return data[:start] + MASK + (data[end:] if end >= 0 else b"")


def _payload(
    mech: str | None, data: bytes, index: int | None, warnings: list[str]
) -> tuple[bytes | None, bool]:
    """(masked data or None if nothing may be shown, secret?) for one decoded answer."""
    if mech == "PLAIN":
        return _mask_plain(data, warnings), True
    if mech == "XOAUTH2":
        return _mask_xoauth2(data, warnings), True
    if mech == "LOGIN":
        if index is not None and index >= 2:
            warnings.append("LOGIN has only two answers (user name, then password)")
        tail = _newline_tail(data)
        if tail:
            warnings.append(_NEWLINE_HINT.format(what="user name" if index == 0 else "password"))
        if index == 0:
            return data, False
        return MASK + tail, True
    if mech == "CRAM-MD5":
        if not re.fullmatch(rb"\S+ [0-9a-f]{32}", data):
            warnings.append("a CRAM-MD5 answer is 'user <32 lowercase hex digits>'")
        return data, False
    return None, True


def _analyze_b64(
    mech: str | None, text: str, index: int | None, warnings: list[str]
) -> tuple[str, bool]:
    decoded = decode_b64(text)
    warnings.extend(decoded.warnings)
    data = decoded.data
    if data is None:
        warnings.append(f"not valid base64: {decoded.error}")
        data = _lenient_b64(text)
        if data is None:
            return "→ (not valid base64; the server will answer 501)", True
    if not data:
        return "→ (empty response)", False
    masked, secret = _payload(mech, data, index, warnings)
    if masked is None:
        return f"→ ({len(data)} bytes, not shown: unknown mechanism)", secret
    return f"→ {_quoted(masked)}", secret


def analyze_client_line(
    line: str, *, in_auth: bool, mechanism: str | None, answer_index: int | None = None
) -> Analysis:
    """Explain and redact a hand-typed ``AUTH MECH [b64]`` or a base64 answer during AUTH.

    ``answer_index`` counts the answers already given in this exchange (an initial
    response counts); LOGIN needs it to tell the user name (0) from the password (1).
    Unknown positions and mechanisms are treated as secret.  Never raises.
    """
    mech = mechanism.upper() if mechanism else None
    warnings: list[str] = []
    words = line.split()
    is_auth = bool(words) and words[0].upper() == "AUTH"
    if in_auth:
        if is_auth:
            warnings.append(
                "inside an AUTH exchange this line is taken as a base64 answer; send * to cancel"
            )
        if line.strip() == "*":
            return Analysis(line, "→ cancels the exchange (the server answers 501)", mechanism=mech)
        if len(line.encode("utf-8", "surrogatepass")) + 2 > MAX_RESPONSE_LINE:
            warnings.append(f"answer line longer than the {MAX_RESPONSE_LINE} octets servers allow")
        shown, secret = _analyze_b64(mech, line, answer_index, warnings)
        redacted = placeholder(mech or "AUTH") if secret and line.strip() else line
        return Analysis(redacted, shown, tuple(warnings), secret and bool(line.strip()), mech)
    if not is_auth:
        return Analysis(line)
    head = re.match(r"\s*\S+\s+(\S+)", line)
    if head is None:
        return Analysis(line, "", ("AUTH needs a mechanism name, e.g. AUTH PLAIN",))
    mech = head.group(1).upper()
    prefix = line[: head.end()]
    args = words[2:]
    if not args:
        return Analysis(line, "", (), False, mech)
    if len(args) > 1:
        warnings.append(f"AUTH takes one initial response; found {len(args)} words after {mech}")
    if mech == "CRAM-MD5":
        warnings.append("CRAM-MD5 has no initial response: the server's challenge comes first")
    if len(line.encode("utf-8", "surrogatepass")) + 2 > MAX_COMMAND_LINE:
        warnings.append(
            f"the AUTH line passes {MAX_COMMAND_LINE} octets: send AUTH {mech} alone and "
            "answer the empty 334 challenge (RFC 4954 §4)"
        )
    shown, secret = _analyze_b64(mech, args[0], 0, warnings)
    secret = secret or len(args) > 1
    redacted = f"{prefix} {placeholder(mech)}" if secret else line
    return Analysis(redacted, shown, tuple(warnings), secret, mech)


_OUTCOMES: Mapping[int, tuple[str, str]] = {
    235: ("authenticated", "RFC 4954 §6"),
    432: ("a password transition is needed: change the password first", "RFC 4954 §6"),
    454: ("temporary authentication failure: try again later", "RFC 4954 §6"),
    500: ("AUTH not recognised, or an AUTH line too long for the server", "RFC 4954 §6"),
    501: ("cancelled, or the base64 was malformed", "RFC 4954 §4"),
    502: ("AUTH not implemented: this server does not offer authentication", "RFC 5321 §4.2.4"),
    503: ("bad sequence: already authenticated, or AUTH inside a mail transaction", "RFC 4954 §4"),
    504: ("mechanism not supported: pick one the EHLO reply advertises", "RFC 4954 §4"),
    530: ("authentication required (some servers mean: use STARTTLS first)", "RFC 4954 §6"),
    534: ("mechanism too weak for this server: try another one, or an app password", "RFC 4954 §6"),
    535: ("credentials rejected: check user name and password", "RFC 4954 §6"),
    538: ("encryption required for this mechanism: use STARTTLS first", "RFC 4954 §6"),
}


def auth_outcome(code: int, enhanced: str | None, user: str | None) -> str:
    """The final AUTH reply in words, with the RFC section that defines it."""
    status = f"{code} {enhanced}" if enhanced else str(code)
    if code == 334:
        return f"the server wants another answer ({status}, RFC 4954 §4)"
    known = _OUTCOMES.get(code)
    if known is None:
        kind = "succeeded" if 200 <= code < 300 else "failed"
        return f"AUTH {kind} with an unexpected reply ({status}; see RFC 4954 §6)"
    words, reference = known
    if code == 235 and user:
        words = f"authenticated as {user}"
    elif code == 535 and (user is None or "@" not in user):
        words += "; some servers want the full address (user@domain) as the user name"
    return f"{words} ({status}, {reference})"


# --------------------------------------------------------------------------- redaction

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
    """Replaces secrets, their base64, and base64 words carrying them with placeholders.

    The second line of defence for history files and transcripts: feed it the secrets
    (``add_secret``) and the mechanisms in use (``add_mechanism``), then ``redact`` text.
    """

    def __init__(self) -> None:
        self._raw: dict[str, str] = {}
        self._b64: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self._raw or self._b64)

    def add_secret(self, secret: str, kind: str = "password") -> None:
        """Redact ``secret`` itself and any base64 word that contains it."""
        if not secret:
            return
        if len(secret) >= MIN_RAW_SECRET:
            self._raw.setdefault(secret, placeholder(kind))
        data = secret.encode("utf-8", "surrogatepass")
        self._b64.setdefault(b64(data), placeholder(f"{kind}-base64"))
        for core in _cores(data):
            self._b64.setdefault(core, placeholder(f"{kind}-base64"))

    def add_literal(self, literal: str, replacement: str) -> None:
        """Redact the base64 word containing ``literal`` as ``replacement``."""
        if literal:
            self._b64[literal] = replacement

    def add_mechanism(self, mechanism: Mechanism) -> None:
        """Register a mechanism's secret and the exact base64 it sends."""
        for literal, replacement in mechanism.products().items():
            self.add_literal(literal, replacement)
        self.add_secret(mechanism._secret, mechanism.secret_kind)

    def redact(self, text: str) -> str:
        spans: list[tuple[int, int, str]] = []
        for literal, replacement in self._raw.items():
            spans += [(s, s + len(literal), replacement) for s in _find_all(text, literal)]
        for literal, replacement in self._b64.items():
            for s in _find_all(text, literal):
                start, end = s, s + len(literal)
                while start > 0 and text[start - 1] in _B64_TOKEN_CHARS:
                    start -= 1
                while end < len(text) and text[end] in _B64_TOKEN_CHARS:
                    end += 1
                spans.append((start, end, replacement))
        taken = [m.span() for m in PLACEHOLDER_RE.finditer(text)]
        spans = [s for s in spans if not any(s[0] < e and b < s[1] for b, e in taken)]
        if not spans:
            return text
        spans.sort(key=lambda span: (span[0], -span[1]))
        out: list[str] = []
        pos = 0
        current: tuple[int, int, str] | None = None
        for start, end, replacement in spans:
            if current is not None and start < current[1]:
                current = (current[0], max(current[1], end), current[2])
                continue
            if current is not None:
                out += [text[pos : current[0]], current[2]]
                pos = current[1]
            current = (start, end, replacement)
        assert current is not None
        out += [text[pos : current[0]], current[2], text[current[1] :]]
        return "".join(out)

    def contains_secret(self, text: str) -> bool:
        return self.redact(text) != text


def _find_all(text: str, literal: str) -> list[int]:
    found = []
    start = text.find(literal)
    while start >= 0:
        found.append(start)
        start = text.find(literal, start + 1)
    return found
