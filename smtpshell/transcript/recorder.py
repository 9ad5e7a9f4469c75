"""The recorder: a session observer that writes the transcript, line by line.

Secrets never reach it in clear: every line arrives classified by the one redaction
point (``Sent.out``, ``protocol.sasl.redact``); a credential is written as a
``{{secret:…}}`` reference that replay rebuilds from an environment variable
(docs/transcript-format.md), typed by hand or sent by /auth alike.
DATA bodies are recorded as sent on the wire (dot-stuffed); with ``elide_above``
a body larger than that many bytes is replaced by one ``== elided`` line.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from ..protocol.events import Closed, Notice, ProtocolError, Reply
from ..protocol.sasl.b64 import lenient_b64
from ..protocol.sasl.mechanisms import Credential
from ..protocol.sasl.redact import (
    DEFAULT_PASSWORD_ENV,
    DEFAULT_TOKEN_ENV,
    Outgoing,
    newline_name,
)
from ..session import Connected, MailCheck, Sent, SessionEvent, TlsEstablished, TlsFailed
from .model import (
    ClientLine,
    Comment,
    Elided,
    Event,
    Header,
    SecretRef,
    ServerLine,
    TlsMode,
    TranscriptError,
    Volatile,
    resolve_secrets,
)
from .writer import TranscriptWriter

__all__ = ["DEFAULT_PASSWORD_ENV", "DEFAULT_TOKEN_ENV", "Recorder", "secret_ref", "unfaithful"]


def secret_ref(
    credential: Credential, password_env: str, token_env: str = DEFAULT_TOKEN_ENV
) -> SecretRef | None:
    """The replayable reference for a line built from ``credential``, or None when it
    cannot be written as one (a user name with spaces, quotes or braces)."""
    user = credential.user
    try:
        if credential.kind == "login:password":
            return SecretRef.login_password(password_env)
        if user is None or user.startswith("$") or credential.authzid.startswith("$"):
            return None  # written as itself, replay would read it as a variable's name
        if credential.kind == "plain":
            return SecretRef.plain(user, password_env, credential.authzid or None)
        if credential.kind == "login:user":
            return SecretRef.login_user(user)
        if credential.kind == "cram-md5":
            return SecretRef.cram_md5(user, password_env)
        return SecretRef.xoauth2(user, token_env)
    except ValueError:
        return None


def unfaithful(out: Outgoing, ref: SecretRef, environ: Mapping[str, str], tls: bool = False
               ) -> str | None:
    """Why ``ref`` would not replay as the line ``out`` that was sent, or None when it does.

    With its variables set in ``environ`` the reference is rebuilt and compared (decoded)
    with what was sent; without, a secret ending in CR or LF cannot be said by a
    ``$NAME`` (nobody sets a variable to a value ending in a newline). CRAM-MD5 answers
    depend on the challenge: they are taken as they are. Nothing here is written out.
    """
    if ref.mech == "cram-md5" or out.redaction is None:
        return None
    sent = lenient_b64(out.line[len(out.redaction.prefix):].strip())
    if sent is None:
        return None
    names = [v[1:] for _, v in ref.params if v.startswith("$")]
    if names and all(n in environ for n in names):
        try:
            rebuilt = resolve_secrets(ClientLine.of(out.redaction.prefix, tls, ref), environ)
        except TranscriptError:
            return None
        if lenient_b64(rebuilt[len(out.redaction.prefix):].strip()) != sent:
            return (f"the credential sent here differs from what ${' $'.join(names)} "
                    "rebuild")
        return None
    secret = sent
    if ref.mech == "plain":
        secret = sent.split(b"\0")[-1]
    elif ref.mech == "xoauth2":
        if not sent.endswith(b"\x01\x01"):
            return "the XOAUTH2 answer sent here does not end in two ^A bytes"
        secret = sent[:-2]
    tail = secret[len(secret.rstrip(b"\r\n")):]
    if not tail:
        return None
    what = {"plain": "password", "xoauth2": "token"}.get(ref.mech, "answer")
    if ref.mech == "login":
        what = "user name" if ref.get("user") else "password"
    return (f"the {what} sent here ends in {newline_name(tail)} (probably echo without -n),"
            f" which a ${names[0] if names else 'NAME'} reference cannot carry")


_CRAM_MD5 = re.compile(r"AUTH[ \t]+CRAM-MD5[ \t]*", re.IGNORECASE)
_BDAT = re.compile(r"BDAT +([0-9]{1,12})(?: +LAST)? *", re.IGNORECASE | re.ASCII)
_RAW_TAIL_KEPT = 64 * 1024  # raw bytes without a line end held for the rest of their line


class Recorder:
    """Observer: ``session.subscribe(recorder)``; ``close()`` when done."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        header: Header,
        *,
        password_env: str | None = None,
        token_env: str | None = None,
        elide_above: int | None = None,
        overwrite: bool = False,
        on_error: Callable[[str], None] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.environ: Mapping[str, str] = environ if environ is not None else {}
        """The variables replay would read, to check a reference against what was sent."""
        self._raw_refs = 0  # lines written as raw secrets (SMTPSHELL_RAW_1, _2, …)
        self.on_error = on_error
        self.error: str | None = None
        """Why recording stopped early (a write failed: disk full…); None while it works."""
        self.writer = TranscriptWriter(path, header, overwrite=overwrite)
        self.password_env = password_env or DEFAULT_PASSWORD_ENV
        self.token_env = token_env or password_env or DEFAULT_TOKEN_ENV
        self.elide_above = elide_above
        self._body_tls = False
        self._body: list[str] | None = None
        self._body_size = 0
        self._raw_tail = b""
        self._raw_tls = False
        self._opaque = 0  # BDAT chunk bytes still to come: recorded as exact bytes (->>)
        self._chunk_digest: hashlib._Hash | None = None  # a chunk elided as it goes out
        self._chunk_size = 0
        self._cram = False  # the last command was AUTH CRAM-MD5: its 334 is a challenge

    @staticmethod
    def header(target: str, tls_mode: TlsMode, description: str | None = None) -> Header:
        return Header.now(target, tls_mode, description)

    @property
    def closed(self) -> bool:
        return self.writer.closed

    def close(self) -> None:
        try:
            if not self.writer.closed:
                self._flush_body()
                self._flush_raw()
                self._end_chunk()
        except OSError as exc:
            self._failed(exc)
        self.writer.close()

    def __call__(self, event: SessionEvent) -> None:
        if self.writer.closed:
            return
        try:
            self._record(event)
        except OSError as exc:  # disk full, file removed: stop recording, never crash
            self._failed(exc)

    def write_entry(self, entry: Elided | Comment | Event) -> None:
        """An entry no event stands for (``transcript.backlog``: a body elided before
        /record, a note), written after any body lines held; an error stops recording."""
        if self.writer.closed:
            return
        try:
            self._flush_body()
            if isinstance(entry, Elided):
                self.writer.write(entry)
            elif isinstance(entry, Comment):
                self.writer.write(entry)
            else:
                self.writer.write(entry)
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        self.writer.close()
        self.error = exc.strerror or str(exc)
        if self.on_error is not None:
            self.on_error(f"recording to {self.path} stopped: {self.error}")

    def _record(self, event: SessionEvent) -> None:
        w = self.writer
        if isinstance(event, Reply | Connected | Closed | TlsEstablished | TlsFailed) or (
                isinstance(event, Sent) and not event.raw):
            self._flush_raw()  # raw bytes left without a line end went out before this
        if isinstance(event, Connected):
            self._opaque = 0
            w.event("connect", address=event.target, tls=event.tls_mode)
        elif isinstance(event, Reply):
            self._flush_body()
            for raw in event.raw:
                self._server(raw.decode("utf-8", "surrogateescape"), event.tls)
        elif isinstance(event, Sent):
            self._sent(event)
        elif isinstance(event, TlsEstablished):
            report = event.report
            w.event(
                "tls",
                via="implicit" if event.implicit else "starttls",
                protocol=report.version,
                cipher=report.cipher,
                cert_sha256=report.peer.sha256 if report.peer else None,
                verified="yes" if report.verified else "no",
                error=None if report.verified else report.verification,
            )
        elif isinstance(event, TlsFailed):
            w.event("warning", message=f"TLS failed: {event.message}")
        elif isinstance(event, MailCheck):  # == mx / dane / mta-sts: what DNS and HTTPS said
            w.event(event.kind, **dict(event.fields))
        elif isinstance(event, Closed):
            self._flush_body()
            self._end_chunk()
            self._opaque = 0
            by = "server" if "server" in event.reason else "client"
            w.event("closed", by=by, reason=event.reason)
        elif isinstance(event, Notice) and event.warning:
            w.event("warning", message=event.message)
        elif isinstance(event, ProtocolError):
            w.event("warning", message=f"protocol error: {event.message}")

    def _server(self, text: str, tls: bool) -> None:
        """A reply line; the challenge of a CRAM-MD5 ``334`` (new every time) is written as a
        ``{{b64:…}}`` placeholder, which matches any challenge a live server sends."""
        cram, self._cram = self._cram, False
        if cram and text.startswith("334 ") and text[4:]:
            try:
                line = ServerLine(("334 ", Volatile("b64", text[4:])), tls)
            except ValueError:  # not base64: a broken server's text is recorded as it is
                pass
            else:
                self.writer.write(line)
                return
        self.writer.server(text, tls)

    def _command(self, text: str, tls: bool) -> None:
        self.writer.client(text, tls)
        self._cram = _CRAM_MD5.fullmatch(text) is not None
        bdat = _BDAT.fullmatch(text)
        if bdat is not None:  # its chunk follows: that many bytes, recorded exactly
            self._opaque = int(bdat[1])
            self._chunk_size = 0
            big = self.elide_above is not None and self._opaque > self.elide_above
            self._chunk_digest = hashlib.sha256() if big else None

    def _sent(self, event: Sent) -> None:
        out = event.out
        if out.secret or out.credential is not None:
            self._flush_body()
            self._cram = False
            for part in out.parts or (out,):
                self._classified(part, event.tls)
            return
        if event.raw:
            self._raw(event)
            return
        self._opaque = max(0, self._opaque - len(event.data))  # a typed line after BDAT n
        text = event.data.decode("utf-8", "surrogateescape").removesuffix("\r\n")
        if event.in_data:
            self._body_line(text, event.tls)
        else:
            self._flush_body()
            self._command(text, event.tls)

    def _classified(self, out: Outgoing, tls: bool) -> None:
        """A line that carries a credential: a replayable reference, or its redacted text.

        A reference is written only when replay rebuilds from it what was sent: else (a
        password ending in a newline, one that differs from its variable's value, a secret
        no reference can say) a ``== warning`` says why, and the line becomes a ``raw``
        secret whose variable must hold the base64 answer itself; replay stops, naming
        the variable, while it is not set, instead of sending another credential.
        """
        cred = out.credential
        ref = secret_ref(cred, self.password_env, self.token_env) if cred else None
        redaction = out.redaction
        if redaction is None or not (out.secret or ref is not None):
            self.writer.client(out.text, tls)
            return
        why = None if ref is None else unfaithful(out, ref, self.environ, tls)
        if ref is not None and why is None:
            self.writer.client(redaction.prefix, tls, ref)
            return
        self._raw_refs += 1
        name = f"SMTPSHELL_RAW_{self._raw_refs}"
        what = why or "no secret reference can rebuild this answer"
        self.writer.event("warning", message=(
            f"not replayable as a reference: {what}; replay sends ${name} as it is (set it"
            " to the base64 that was sent here) and stops, naming it, while it is unset"))
        self.writer.client(redaction.prefix, tls, SecretRef.raw(name))

    def _raw(self, event: Sent) -> None:
        """Exact bytes (a /raw payload, a message chunk, BDAT and its chunk): CRLF-ended
        lines become lines, a BDAT chunk's bytes ``->>`` entries (or one elision), and
        bytes without a line end wait for the rest of their line (the next raw bytes) or
        are written as ``->>`` when anything else happens first."""
        data = self._raw_tail + event.data
        self._raw_tail, self._raw_tls = b"", event.tls
        in_data = event.in_data
        pos = 0
        while pos < len(data):
            if self._opaque:
                n = min(self._opaque, len(data) - pos)
                self._chunk_bytes(data[pos : pos + n], event.tls)
                self._opaque -= n
                pos += n
                if not self._opaque:
                    self._end_chunk()
                continue
            end = data.find(b"\r\n", pos)
            if end < 0:
                self._raw_tail = data[pos:]
                if len(self._raw_tail) > _RAW_TAIL_KEPT:
                    self._flush_raw()
                return
            text = data[pos:end].decode("utf-8", "surrogateescape")
            pos = end + 2
            if in_data:
                self._body_line(text, event.tls)
                in_data = text != "."
            else:
                self._command(text, event.tls)

    def _chunk_bytes(self, data: bytes, tls: bool) -> None:
        self._flush_body()
        if self._chunk_digest is not None:
            self._chunk_digest.update(data)
            self._chunk_size += len(data)
            self._raw_tls = tls
        else:
            self.writer.client_bytes(data, tls)

    def _end_chunk(self) -> None:
        """A chunk elided as it went out (bigger than ``elide_above``): its one line."""
        digest, self._chunk_digest = self._chunk_digest, None
        if digest is not None and self._chunk_size:
            self.writer.elided_bytes(self._chunk_size, digest.hexdigest(), self._raw_tls)

    def _flush_raw(self) -> None:
        """Raw bytes that had no line end when something else happened: ``->>``."""
        tail, self._raw_tail = self._raw_tail, b""
        if tail:
            self._flush_body()
            self.writer.client_bytes(tail, self._raw_tls)

    def _body_line(self, text: str, tls: bool) -> None:
        if text == ".":
            self._flush_body()
            self.writer.client(".", tls)
            return
        if self.elide_above is None:
            self.writer.client(text, tls)
            return
        if self._body is None:
            self._body, self._body_size, self._body_tls = [], 0, tls
        self._body.append(text)
        self._body_size += len(text) + 2

    def _flush_body(self) -> None:
        body, self._body = self._body, None
        if not body:
            return
        if self.elide_above is not None and self._body_size > self.elide_above:
            # keep the message header lines, elide the rest
            split = body.index("") + 1 if "" in body else 0
            for line in body[:split]:
                self.writer.client(line, self._body_tls)
            if body[split:]:
                self.writer.elided(body[split:], self._body_tls)
        else:
            for line in body:
                self.writer.client(line, self._body_tls)
