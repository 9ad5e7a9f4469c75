"""ShellCore: what the REPL and batch mode share.

It owns the ``Session`` (re-created by /reconnect), routes each input line to a
meta-command or to the server, runs the connect-time steps (--starttls), and keeps
the settings the meta-commands change.  It never touches a socket itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..escapes import parse_escapes
from ..explain import Facts, diagnose, hint_for
from ..explain.auth import auth_outcome
from ..protocol.events import Reply
from ..protocol.sasl.redact import (
    DEFAULT_PASSWORD_ENV,
    DEFAULT_TOKEN_ENV,
    REDACTED,
    Classifier,
    Outgoing,
    Redactor,
)
from ..protocol.state import Stage
from ..session import (
    Connected,
    ConnectOptions,
    Observer,
    Session,
    SessionError,
    SessionEvent,
    SessionFactory,
)
from ..status import STAGE_STATUS, VERB_STATUS, ExitStatus
from ..transcript.backlog import Backlog, backlog_body_limit
from . import pipeline
from .commands import Kind, lookup, split_meta
from .commands.auth import AUTH_AFTER_REFUSED_STARTTLS
from .commands.record import stop_recording
from .render import Renderer

if TYPE_CHECKING:
    from ..transcript.recorder import Recorder


class Prompter(Protocol):
    """How the core asks the human something; batch mode never asks."""

    async def text(self, label: str) -> str | None: ...
    async def secret(self, label: str) -> str | None: ...
    async def confirm(self, question: str) -> bool: ...


class NoPrompter:
    """Batch mode: never waits for a human; every question has the safe answer."""

    async def text(self, label: str) -> str | None:
        return None

    async def secret(self, label: str) -> str | None:
        return None

    async def confirm(self, question: str) -> bool:
        return False


@dataclass
class Settings:
    """The shell's settings from the command line (and /set): hints, TLS and AUTH rules."""

    hints: bool = True
    require_tls: bool = False
    """Refuse to send AUTH or MAIL on a connection that is not TLS."""
    allow_plain_auth: bool = False
    """AUTH over a connection that is not TLS without asking (--auth-in-clear)."""
    user: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    auth: str | None = None
    """--auth: the mechanism (or "auto") to authenticate with right after connecting."""
    environ: Mapping[str, str] = field(default_factory=dict)
    elide_data: int | None = None
    """Transcripts: elide DATA bodies larger than this many bytes (--elide-data)."""
    show_data: bool = False
    """Batch mode: show every message line piped after DATA, not the first few and a
    count (--show-data)."""


class ShellCore:
    def __init__(
        self,
        options: ConnectOptions,
        renderer: Renderer,
        *,
        prompter: Prompter | None = None,
        settings: Settings | None = None,
        observers: list[Observer] | None = None,
        interactive: bool = False,
        session_factory: SessionFactory = Session,
    ) -> None:
        self.options = options
        self.session_factory = session_factory
        """Makes each connection's Session (tests pass one whose opener is a MockStream)."""
        self.renderer = renderer
        renderer.hint = self.hint
        self.prompter: Prompter = prompter or NoPrompter()
        self.settings = settings or Settings()
        self.observers: list[Observer] = observers or []
        self.backlog = Backlog(body_limit=backlog_body_limit(self.settings.elide_data))
        """The connection so far, for a /record typed after connecting."""
        self.session = session_factory(
            options, [renderer, self._watch, self.backlog, *self.observers]
        )
        self.last_replies: list[Reply] = []
        self.quit_requested = False
        self.left_inside_data = False
        """/quit (or Ctrl-D) came while a message was being typed: it was never sent."""
        self.status = ExitStatus.OK
        self.interactive = interactive
        self.redactor = Redactor()
        """Known secrets (a password given to /auth, $SMTPSHELL_PASSWORD): every line's
        second look at the redaction point (``session.classifier``)."""
        for name in (DEFAULT_PASSWORD_ENV, DEFAULT_TOKEN_ENV):
            if self.settings.environ.get(name):
                self.redactor.add_secret(self.settings.environ[name])
        self.recording_name: str | None = None
        """The transcript file being written, for the toolbar (None when not recording)."""
        self.recorder: Recorder | None = None
        self._starttls_refused = False
        """STARTTLS was refused on this connection: AUTH is not sent in clear after it."""
        self._skip_answers: str | None = None
        """Why the answers lined up after an AUTH line are not sent (it was not sent, or
        the server ended its exchange), or None."""

    # ---- connecting ------------------------------------------------------------------
    async def connect(self) -> ExitStatus:
        """Connect (and STARTTLS when asked); return OK or the failed stage's status."""
        self.session = self.session_factory(
            self.options, [self.renderer, self._watch, self.backlog, *self.observers]
        )
        try:
            await self.session.connect()
        except SessionError as exc:
            self.renderer.error(exc.message)
            if exc.tls_failure is not None:
                self.renderer.tls_advice(exc.tls_failure)
            elif exc.no_greeting and self.options.tls_mode != "implicit":
                self.renderer.info("no greeting: if this port expects TLS from the first byte"
                                   " (implicit TLS, as on port 465), connect with --tls")
            return STAGE_STATUS.get(exc.stage, ExitStatus.ERROR)
        if self.options.tls_mode == "starttls":
            status = await self.force_starttls()
            if status is not ExitStatus.OK:
                return status
        if self.settings.auth:
            from .commands.auth import authenticate

            if not await authenticate(self, self.settings.auth, None):
                await self.session.close()
                return ExitStatus.AUTH
        return ExitStatus.OK

    async def force_starttls(self) -> ExitStatus:
        """EHLO, STARTTLS, EHLO; any refusal is a TLS-stage failure (RFC 3207 §4)."""
        session = self.session
        ehlo = await session.ehlo()
        if ehlo is None or ehlo.code // 100 != 2:
            self.renderer.error("--starttls: EHLO failed, so STARTTLS cannot be negotiated")
            await session.close()
            return ExitStatus.TLS
        if session.capabilities is None or "STARTTLS" not in session.capabilities:
            self.renderer.error("--starttls: the server does not offer STARTTLS; not continuing")
            await session.close()
            return ExitStatus.TLS
        reply = await session.starttls()
        if reply is None or reply.code != 220 or not session.is_tls:
            if session.connected:
                self.renderer.error("--starttls: STARTTLS was refused; not continuing in clear")
            await session.close()
            return ExitStatus.TLS
        await session.ehlo()
        return ExitStatus.OK

    # ---- lines -----------------------------------------------------------------------
    async def handle_text(self, text: str) -> None:
        """What the prompt returned: one line, or several when the user pasted them."""
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if len(lines) == 1:
            await self.handle_line(lines[0])
            return
        if lines and lines[-1] == "":
            lines.pop()
        await self.handle_paste(lines)

    async def handle_paste(self, lines: list[str]) -> None:
        """Pasted lines go out in order; with PIPELINING, commands go as groups (RFC 2920).

        ``pipeline.group`` decides which lines go out together (the same policy as batch
        mode); each reply is then shown beside the command it answers.
        """
        queue = deque(lines)

        def more() -> str | None:
            return queue.popleft() if queue else None

        while queue and not self.quit_requested:
            group = pipeline.group(queue.popleft(), self.pipeline_policy(), more,
                                   queue.appendleft)  # fmt: skip
            if len(group) == 1:
                await self.handle_line(group[0])
                continue
            replies = await self.session.send_lines(group)
            self.last_replies = replies
            for command_line, reply in zip(group, replies, strict=False):
                self.renderer.write(f"  {command_line}  →  {reply.lines[-1]}")

    # ---- batch mode: pipelined groups and message lines ---------------------------------
    def pipeline_policy(self) -> pipeline.Policy:
        """What ``pipeline.group`` needs to know about this session, now."""
        session = self.session
        caps = session.capabilities
        return pipeline.Policy(
            pipelining=(caps is not None and "PIPELINING" in caps
                        and not session.in_data and not session.in_auth),
            is_tls=session.is_tls,
            require_tls=self.settings.require_tls,
            has_secret=lambda line: bool(self.redactor) and self.redactor.redact(line) != line,
        )  # fmt: skip

    def message_line(self, line: str) -> bool:
        """Can this line of a message (after 354) go out with others in one write?"""
        return (self.session.in_data and "\r" not in line
                and split_meta(line, in_data=True) is None
                and (not self.redactor or self.redactor.redact(line) == line))

    async def send_pipelined(self, lines: Sequence[str]) -> None:
        """Send a group of commands in one write (RFC 2920) and wait for every reply.

        The screen shows each command followed by its reply, as if they had been sent one
        by one; observers other than the renderer (a transcript) see the real order.
        """
        self.last_replies = await self._send_deferred(lines)

    async def send_message_lines(self, lines: Sequence[str]) -> None:
        """Send lines of a message in one write; the final "." (if there) gets its reply."""
        self.last_replies = await self.session.send_lines(lines)

    async def _send_deferred(self, lines: Sequence[str]) -> list[Reply]:
        session = self.session
        observers = session.observers
        if self.renderer not in observers:
            return await session.send_lines(lines)
        held: list[SessionEvent] = []
        hold = held.append
        observers[observers.index(self.renderer)] = hold
        try:
            replies = await session.send_lines(lines)
        finally:
            observers[observers.index(hold)] = self.renderer
            for event in pipeline.interleave(held):
                self.renderer(event)
        return replies

    async def handle_line(self, line: str) -> None:
        """One line of input: a meta-command, or a line for the server."""
        meta = split_meta(line, in_data=self.session.in_data)
        if meta is not None:
            await self.run_meta(*meta)
            return
        if not line and not (self.session.in_auth or self.session.in_data):
            return
        if not await self.allowed(line):
            return
        session = self.session
        out = self.classifier().line(line, in_data=session.in_data, in_auth=session.in_auth)
        for warning in out.warnings:
            self.renderer.warn(warning)
        self.last_replies = await session.send(out)
        last = self.last_replies[-1] if self.last_replies else None
        if last is not None and last.command == "AUTH" and last.code != 334:
            outcome = self.explain_refusal(last) or auth_outcome(
                last.code, last.enhanced, None)
            (self.renderer.info if last.code == 235 else self.renderer.error)(outcome)

    def classifier(self) -> Classifier:
        """This connection's redaction point, with the shell's known secrets."""
        classifier = self.session.classifier
        classifier.redactor = self.redactor
        return classifier

    def analyze(self, line: str) -> Outgoing:
        """How ``line`` would be classified if it were sent now (nothing changes)."""
        session = self.session
        return self.classifier().line(line, in_data=session.in_data, in_auth=session.in_auth,
                                      commit=False)

    def redact_for_history(self, text: str) -> str:
        """What the history file keeps of what was typed now, before it is sent: a line or
        a paste.  SMTP lines as the redaction point classifies them; /raw with its payload
        classified; a command that takes a secret (/b64, /unb64) without its argument."""
        session = self.session
        classifier = self.classifier()
        kept: list[str] = []
        smtp: list[str] = []

        def flush() -> None:
            if smtp:
                kept.append(classifier.history("\n".join(smtp), in_data=session.in_data,
                                               in_auth=session.in_auth))
                smtp.clear()

        # answers lined up for an AUTH that was not sent or that the server ended: not
        # sent (``allowed``), and not kept either
        skipping = bool(self._skip_answers) and not (session.in_auth or session.in_data)
        for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            meta = split_meta(line, in_data=session.in_data)
            if meta is None:
                if skipping and is_lined_up_answer(line):
                    flush()
                    kept.append(REDACTED)
                    continue
                skipping = skipping and not line.strip()
                smtp.append(line)
                continue
            flush()
            kept.append(self._meta_for_history(line, *meta))
        flush()
        return "\n".join(kept)

    def _meta_for_history(self, line: str, name: str, args: str) -> str:
        meta = lookup(name)
        start = line[: line.index(name) + len(name)]
        if meta is None:  # nothing ran; a mistyped /b64 may still carry a password
            return f"{start} {REDACTED}" if args else line
        if any(arg.kind is Kind.SECRET for arg in meta.args):
            return f"{start} {REDACTED}" if args else start
        if meta.name == "raw" and args:
            session = self.session
            try:
                data = parse_escapes(args)
            except ValueError:
                if "AUTH" in args.upper() or session.in_auth:
                    return f"{start} {REDACTED}"
                return self.redactor.redact(line)
            out = self.classifier().raw(data, in_data=session.in_data,
                                        in_auth=session.in_auth, commit=False)
            return f"{start} {out.text}" if out.secret else self.redactor.redact(line)
        return self.redactor.redact(line)

    @property
    def starttls_refused(self) -> bool:
        """The server refused STARTTLS on this connection: AUTH is not sent in clear."""
        return self._starttls_refused

    def _watch(self, event: SessionEvent) -> None:
        """Observer: a refused STARTTLS (RFC 3207 §4: 454 and the like) on this connection."""
        if isinstance(event, Reply) and event.command == "STARTTLS" and event.code >= 400:
            self._starttls_refused = True
        elif isinstance(event, Reply) and event.command == "AUTH" and event.code >= 400:
            # the server ended the exchange: a password lined up after a refused user
            # name would otherwise go out as a command, in clear, recorded verbatim
            self._skip_answers = "it answers an AUTH exchange the server ended"
        elif isinstance(event, Connected):
            self._starttls_refused = False
            self._skip_answers = None

    async def allowed(self, line: str) -> bool:
        """Policy checks before a line goes out (require-TLS, AUTH in clear).

        AUTH on a plain connection after the server refused STARTTLS is not sent unless
        --auth-in-clear (/set auth-in-clear on) allows it: a refused STARTTLS is how a
        downgrade looks.  When an AUTH line is not sent, the answers typed after it (one
        word each: base64, ``=``, ``*``) are not sent either.
        """
        session = self.session
        if session.in_data or session.in_auth:
            return True
        words = line.split()
        if self._skip_answers:
            if is_lined_up_answer(line):
                self.renderer.error(f"not sent: {self._skip_answers}")
                return False
            self._skip_answers = None
        if session.is_tls:
            return True
        verb = words[0].upper() if words else ""
        if self.settings.require_tls and verb in ("AUTH", "MAIL"):
            self.renderer.error(f"require-TLS is on: not sending {verb} on a plain connection "
                                "(STARTTLS first, or /set require-tls off)")
            self._skip_answers = _NOT_SENT if verb == "AUTH" else None
            return False
        if verb == "AUTH" and self._starttls_refused and not self.settings.allow_plain_auth:
            self.renderer.error(AUTH_AFTER_REFUSED_STARTTLS)
            self._skip_answers = _NOT_SENT
            return False
        return True

    async def run_meta(self, name: str, args: str) -> None:
        meta = lookup(name)
        if meta is None:
            self.renderer.error(f"unknown command /{name} (try /help)")
            return
        await meta.handler(self, args)

    # ---- diagnoses ---------------------------------------------------------------------
    def facts(self) -> Facts:
        """What the connection knows now, for diagnoses."""
        snap = self.session.snapshot()
        return Facts(tls=snap.tls, implicit_tls=self.options.tls_mode == "implicit",
                     capabilities=snap.capabilities, authenticated=snap.authenticated,
                     in_transaction=snap.stage is not Stage.NONE,
                     recipient_accepted=snap.stage in _RECIPIENT_STAGES)  # fmt: skip

    def explain_refusal(self, reply: Reply) -> str | None:
        """The true reason for a refusal when the session's state tells it, else None."""
        return diagnose(reply.command or "", reply.code, self.facts())

    def hint(self, reply: Reply) -> str | None:
        """The hint the renderer prints under a refusal: the state's reason first."""
        return self.explain_refusal(reply) or hint_for(reply.code, reply.enhanced, reply.text)

    def exit_status(self) -> ExitStatus:
        """Batch mode: success when the last reply was 2xx/3xx."""
        if self.status is not ExitStatus.OK:
            return self.status
        if not self.last_replies:
            return ExitStatus.OK
        last = self.last_replies[-1]
        if last.code // 100 in (2, 3):
            return ExitStatus.OK
        return VERB_STATUS.get(last.command or "", ExitStatus.ERROR)

    async def close(self) -> None:
        await self.session.close()
        if self.recorder is not None:
            stop_recording(self)


_ONE_WORD_VERBS = frozenset({"QUIT", "RSET", "NOOP", "DATA", "HELP", "STARTTLS", "EHLO",
                             "HELO", "TURN"})
"""Commands typed alone on a line: never taken for the answer to an AUTH not sent."""
_NOT_SENT = "it answers an AUTH line that was not sent"
_RECIPIENT_STAGES = frozenset({Stage.RCPT, Stage.DATA, Stage.BDAT})
"""Stages reached only after a RCPT TO was accepted (a refused one leaves the stage)."""


def is_lined_up_answer(line: str) -> bool:
    """Could ``line`` be an answer typed for an AUTH exchange (one word, not a command)?"""
    words = line.split()
    return (len(words) == 1 and split_meta(line, in_data=False) is None
            and words[0].upper() not in _ONE_WORD_VERBS)
