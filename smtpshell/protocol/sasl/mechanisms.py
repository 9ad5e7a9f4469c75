"""SASL mechanisms for SMTP AUTH (RFC 4954) as pure step machines.

PLAIN (RFC 4616), LOGIN (MS-XLOGIN), CRAM-MD5 (RFC 2195) and XOAUTH2 (Google):
``start()`` gives the ``AUTH`` line, ``step(challenge)`` answers each ``334``, ``cancel()``
gives ``*``.  Each step says what its base64 is built from (a ``Credential``), so the one
redaction point (``redact``) can show, record and replay it without the secret.
``response()`` computes one answer from a credential; transcript replay uses it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from ...escapes import format_escapes
from ..connection import MAX_COMMAND_LINE
from .b64 import b64, decode_b64

MAX_RESPONSE_LINE = 12288
"""RFC 4954 §4: servers should accept AUTH response lines at least this long."""

CredentialKind = Literal["plain", "login:user", "login:password", "cram-md5", "xoauth2"]


@dataclass(frozen=True)
class Credential:
    """What the base64 of one client line is built from: enough to rebuild it, no secret.

    ``kind``: ``plain`` (authzid NUL user NUL password), ``login:user``, ``login:password``,
    ``cram-md5`` (user and the HMAC of the live challenge), ``xoauth2`` (user and token).
    ``user`` is None when it is not known (a LOGIN password).
    """

    kind: CredentialKind
    user: str | None = None
    authzid: str = ""

    @property
    def secret(self) -> bool:
        """Whether the line gives the secret away (or, for CRAM-MD5, a dictionary attack)."""
        return self.kind != "login:user"


def _quoted(data: bytes) -> str:
    return f'"{format_escapes(data)}"'


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


def response(
    kind: CredentialKind, *, user: str, secret: str, authzid: str = "", challenge: bytes = b""
) -> bytes:
    """The answer (before base64) that a credential of ``kind`` stands for.

    The one place answers are computed: the mechanisms below and transcript replay use it.
    """
    if kind == "plain":
        return plain_blob(user, secret, authzid)
    if kind == "login:user":
        return user.encode("utf-8", "surrogateescape")
    if kind == "login:password":
        return secret.encode("utf-8", "surrogateescape")
    if kind == "cram-md5":
        return cram_md5_answer(user, secret, challenge)
    return xoauth2_blob(user, secret)


def json_object(data: bytes) -> object | None:
    """The JSON object in ``data`` (XOAUTH2 error challenges), or None."""
    if not data.lstrip().startswith(b"{"):
        return None
    import json  # here, not at the top: only XOAUTH2 errors are JSON (start-up time)

    try:
        parsed: object = json.loads(data.decode("utf-8"))
    except ValueError:
        return None
    return parsed


def compact_json(value: object) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class ClientStep:
    """One line for the client to send during AUTH.

    ``line`` is the exact text (no CRLF).  ``credential`` says what its base64 is built
    from (None for lines without credentials: ``AUTH X``, ``*``, an empty answer);
    ``secret`` whether the line gives a secret away; ``meaning`` the decoded answer of a
    line that carries no secret (for the teaching view); ``note`` explains anything
    unusual (a dropped initial response, a server error...).
    """

    line: str
    credential: Credential | None = None
    note: str = ""
    meaning: bytes | None = None

    @property
    def secret(self) -> bool:
        return self.credential is not None and self.credential.secret


class _Answer:
    """What a mechanism answers to one challenge, before base64.

    A plain class, not a dataclass: a private value, one fewer class to build at start-up.
    """

    __slots__ = ("credential", "data", "note")

    def __init__(self, data: bytes, credential: Credential | None, note: str = "") -> None:
        self.data = data
        self.credential = credential
        self.note = note


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

    def _answer(self, kind: CredentialKind, challenge: bytes = b"", note: str = "") -> _Answer:
        authzid = getattr(self, "authzid", "")
        data = response(kind, user=self.user, secret=self._secret, authzid=authzid,
                        challenge=challenge)
        user = None if kind == "login:password" else self.user
        return _Answer(data, Credential(kind, user, authzid), note)

    def products(self) -> dict[str, Credential]:
        """Exact base64 this mechanism sends that carries the secret -> what it is."""
        return {}

    @property
    def secret(self) -> str:
        """The password or token (for the redactor's second line of defence)."""
        return self._secret

    # -- the steps
    def start(self, initial_response_allowed: bool = True) -> ClientStep:
        """The ``AUTH`` command, with the initial response when allowed and short enough."""
        command = f"AUTH {self.name}"
        ir = self._initial_response() if self.use_initial_response else None
        if ir is None or not initial_response_allowed:
            return ClientStep(command)
        line = f"{command} {b64(ir.data) or '='}"
        if len(line.encode()) + 2 > MAX_COMMAND_LINE:
            note = (
                f"initial response left out: the line would pass {MAX_COMMAND_LINE} octets; "
                "it follows the server's empty 334 challenge (RFC 4954 §4)"
            )
            return ClientStep(command, note=note)
        self.answers += 1
        return _step(line, ir)

    def step(self, challenge_b64: str) -> ClientStep:
        """The answer to a ``334`` whose text (after ``334 ``) is ``challenge_b64``."""
        decoded = decode_b64(challenge_b64)
        if decoded.data is None:
            return self.cancel(f"the server's challenge is not valid base64: {decoded.error}")
        answer = self._respond(decoded.data)
        if isinstance(answer, str):
            return self.cancel(answer)
        self.answers += 1
        note = "; ".join(n for n in (*decoded.warnings, answer.note) if n)
        return _step(b64(answer.data), _Answer(answer.data, answer.credential, note))

    def cancel(self, reason: str = "") -> ClientStep:
        """``*``: abandon the exchange (the server answers 501)."""
        return ClientStep("*", note=reason)


def _step(line: str, answer: _Answer) -> ClientStep:
    secret = answer.credential is not None and answer.credential.secret
    return ClientStep(line, answer.credential, answer.note, None if secret else answer.data)


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

    def _initial_response(self) -> _Answer:
        return self._answer("plain")

    def _respond(self, challenge: bytes) -> _Answer | str:
        if self.answers:
            return "the server sent another challenge after the PLAIN credentials"
        note = f"PLAIN expects an empty challenge, got {_quoted(challenge)}" if challenge else ""
        return self._answer("plain", note=note)

    def products(self) -> dict[str, Credential]:
        answer = self._answer("plain")
        assert answer.credential is not None
        return {b64(answer.data): answer.credential}


class Login(Mechanism):
    """MS-XLOGIN: the user name, then the password, each answering a ``334`` (counted)."""

    name = "LOGIN"

    def __init__(self, user: str, password: str, *, initial_response: bool = False) -> None:
        super().__init__(user, password)
        self.use_initial_response = initial_response

    def _initial_response(self) -> _Answer:
        return self._answer("login:user")

    def _respond(self, challenge: bytes) -> _Answer | str:
        prompt = challenge.lower()
        if self.answers == 0:
            note = ""
            if b"pass" in prompt:
                note = f"server prompt {_quoted(challenge)}, but LOGIN sends the user name first"
            return self._answer("login:user", note=note)
        if self.answers == 1:
            note = ""
            if b"user" in prompt:
                note = f"server prompt {_quoted(challenge)}, but LOGIN sends the password second"
            return self._answer("login:password", note=note)
        return "LOGIN has only two answers, yet the server sent a third challenge"

    def products(self) -> dict[str, Credential]:
        return {b64(self._secret.encode()): Credential("login:password")}


class CramMd5(Mechanism):
    """RFC 2195: base64(user SP lowercase-hex HMAC-MD5(password, challenge)).

    The answer is no password, but with the challenge it allows an offline dictionary
    attack: it is redacted like one.
    """

    name = "CRAM-MD5"

    def _respond(self, challenge: bytes) -> _Answer | str:
        if self.answers:
            return "CRAM-MD5 has one answer, yet the server sent another challenge"
        if not challenge:
            return "CRAM-MD5 needs a challenge from the server, got an empty one"
        return self._answer("cram-md5", challenge)


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

    def _initial_response(self) -> _Answer:
        return self._answer("xoauth2")

    def _respond(self, challenge: bytes) -> _Answer | str:
        if self.answers == 0:
            note = (
                f"XOAUTH2 expects an empty challenge, got {_quoted(challenge)}" if challenge else ""
            )
            return self._answer("xoauth2", note=note)
        if self.answers == 1:
            parsed = json_object(challenge)
            if parsed is None:
                note = f"server error (not JSON): {_quoted(challenge)}"
            else:
                self.error = parsed
                note = f"server error {compact_json(parsed)}"
            note += "; answering an empty line, the final reply follows"
            return _Answer(b"", None, note)
        return "the server kept challenging after the XOAUTH2 error acknowledgement"

    def products(self) -> dict[str, Credential]:
        answer = self._answer("xoauth2")
        assert answer.credential is not None
        return {b64(answer.data): answer.credential}


MECHANISMS: Mapping[str, type[Mechanism]] = {
    "CRAM-MD5": CramMd5,
    "PLAIN": Plain,
    "LOGIN": Login,
    "XOAUTH2": XOAuth2,
}
"""Implemented mechanisms; each class takes ``(user, secret)``."""
_PASSWORD_PREFERENCE = ("CRAM-MD5", "PLAIN", "LOGIN")


def choose_mechanism(advertised: Iterable[str], *, token: bool = False) -> str | None:
    """The strongest advertised mechanism we implement (CRAM-MD5 > PLAIN > LOGIN).

    With ``token=True`` only XOAUTH2 qualifies.
    """
    offered = {m.upper() for m in advertised}
    for name in ("XOAUTH2",) if token else _PASSWORD_PREFERENCE:
        if name in offered:
            return name
    return None
