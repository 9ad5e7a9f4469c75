"""The async driver: pumps the transport into the sans-IO core and publishes events.

Every front end (the REPL, batch mode, replay) talks to the server through a
``Session``.  Observers (the renderer, the transcript recorder) receive every
event in order: what was sent, each reply, TLS results, notices, the close.

STARTTLS is transparent: when the core reports ``StartTlsReady`` (the server said
220), the reader task discards any plaintext that followed the 220, runs the
handshake on the same connection, and only then completes the STARTTLS command.

The network is swappable: ``Session(options, observers, opener=…)`` opens its stream
with ``opener`` (``transport.open_stream`` by default; tests pass
``transport.MockStream(chunks).opener()``).

An interrupt (the task awaiting a send is cancelled) leaves a known state: during the
TLS handshake, or while a message or a line is only partly sent, the session closes
the connection (it can neither go on in plain text nor finish a half-sent line) and
publishes a ``Closed`` saying why; a wait for a reply that is merely interrupted keeps
the connection (the reply is published when it comes).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from . import tls
from .protocol.connection import ClientConnection, LineError, RepliesOwed
from .protocol.events import Closed, Event, Notice, ProtocolError, Reply, ReplyKind, StartTlsReady
from .protocol.replies import Capabilities
from .protocol.sasl.mechanisms import MECHANISMS, choose_mechanism, credential_problem
from .protocol.sasl.redact import Classifier, Origin, Outgoing, lined_up_answer
from .protocol.state import ClientState, Stage
from .tls import TlsReport
from .transport import NetworkStream, Opener, TransportError, format_address, open_stream

TlsMode = Literal["plain", "starttls", "implicit"]

DEFAULT_CONNECT_TIMEOUT = 15.0
DEFAULT_REPLY_TIMEOUT = 60.0
QUIT_CLOSE_GRACE = 0.5
"""Seconds ``close()`` waits, after a QUIT went out, for the server to close first."""
"""Interactive default; RFC 5321 §4.5.3.2 suggests minutes for unattended clients."""


@dataclass(frozen=True, kw_only=True)
class ConnectOptions:
    """Where and how to connect: the target, the TLS mode and options, the timeouts."""

    host: str = "127.0.0.1"
    port: int = 25
    tls_mode: TlsMode = "plain"
    tls: tls.TlsOptions = field(default_factory=tls.TlsOptions)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    reply_timeout: float = DEFAULT_REPLY_TIMEOUT
    send_timeout: float = DEFAULT_REPLY_TIMEOUT
    unix_path: str | None = None
    family: int = 0
    local_addr: tuple[str, int] | None = None
    lmtp: bool = False
    ehlo_name: str = field(default_factory=socket.gethostname)
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)
    """A context already made from ``tls`` (replays share one: loading the CA file for
    every transcript was a tenth of replay's CPU); None: made on first use."""
    route: tuple[Hop, ...] = ()
    """MX hosts to try in order (``--mx``): the first that answers is used, each attempt is
    said; empty: connect to ``host``."""
    lookups: tuple[MailCheck, ...] = ()
    """What DNS and the MTA-STS policy said before connecting (``--mx``): published as
    events when the session connects, so the screen and a transcript show them."""
    peer_check: PeerCheck | None = field(default=None, compare=False, repr=False)
    """Checks of the server's certificate chain after every handshake (DANE, MTA-STS),
    computed by the front end from its lookups; an enforced failure fails the handshake."""
    resolver: tuple[str, int] | None = None
    """The DNS server the lookups asked (``--resolver``), for ``/mx`` in the shell."""

    @property
    def target(self) -> str:
        return self.unix_path or format_address(self.host, self.port)


@dataclass(frozen=True, kw_only=True)
class Hop:
    """One MX host to try (``--mx``): connect to ``address``; SNI and verification use
    ``name`` (RFC 7672 §3.2.2, RFC 8461 §4.1: the MX host name, not the domain)."""

    name: str
    address: str
    preference: int | None = None
    dane: bool = False
    """``--dane`` with validated, usable TLSA records: no PKIX check during the handshake
    (RFC 7672 §3.1.1: a DANE-EE certificate may be self-signed or expired); the session's
    ``peer_check`` decides right after it."""

    def describe(self, port: int) -> str:
        pref = f" (preference {self.preference})" if self.preference is not None else ""
        return f"{self.name}{pref} at {format_address(self.address, port)}"


# ---- session events (in addition to the protocol's) ---------------------------------
@dataclass(frozen=True, kw_only=True)
class MailCheck:
    """What DNS or a policy said, or a check made from it: an MX lookup, a DANE (TLSA)
    lookup or verdict, an MTA-STS policy or verdict.  The renderer shows ``lines`` (outside
    text: escaped when shown); the recorder writes ``== KIND fields…``."""

    kind: str
    """``mx``, ``dane`` or ``mta-sts``: the transcript event's name."""
    lines: tuple[str, ...]
    fields: tuple[tuple[str, str], ...] = ()
    failure: str | None = None
    """Why the connection must not be used: an enforced check failed (a TLS-stage
    failure, exit status 4); None when it passed or is information only."""
    warning: bool = False
    """Worth a warning on screen (a check that failed without being enforced)."""
    report_line: str | None = None
    """The line this check adds to the TLS report (after ``verify``)."""
    authenticates: str | None = None
    """The server's identity was established by this check (a DANE match): the TLS
    report's verify line in words; None otherwise."""


PeerCheck = Callable[[str, int, "tls.TlsReport"], Sequence[MailCheck]]
"""``check(mx_host, port, report) -> checks``, called after every handshake; the report's
``sent`` holds the chain the server sent."""


@dataclass(frozen=True, kw_only=True)
class Connected:
    """The TCP connection is up (the greeting has not been read yet)."""

    target: str
    tls_mode: TlsMode


@dataclass(frozen=True, kw_only=True)
class Sent:
    """A line (or raw bytes) went to the server.

    ``out`` is the line as classified by the one redaction point (``protocol.sasl.redact``):
    observers record ``out.text`` and show ``out.shown``, never the wire line of a secret.
    ``data`` is what was written, ``b""`` when the line carried a secret.
    """

    out: Outgoing
    data: bytes
    tls: bool
    in_data: bool = False

    @property
    def text(self) -> str:
        """The redacted form (history, transcripts, reports)."""
        return self.out.text

    @property
    def origin(self) -> Origin:
        return self.out.origin

    @property
    def secret(self) -> bool:
        return self.out.secret

    @property
    def raw(self) -> bool:
        """Bytes from ``send_raw`` (raw mode, a streamed message chunk), not one line."""
        return self.out.raw is not None


@dataclass(frozen=True, kw_only=True)
class TlsEstablished:
    """The TLS handshake succeeded (STARTTLS or implicit TLS), with its report."""

    report: tls.TlsReport
    implicit: bool


@dataclass(frozen=True, kw_only=True)
class TlsFailed:
    """The TLS handshake failed, in one line of words."""

    message: str
    failure: tls.TlsFailure | None = None
    """The details: for a refused certificate its fingerprint and the ways forward."""


@dataclass(frozen=True, kw_only=True)
class ObserverFailed:
    """An observer (the screen, the recorder) raised while handling an event.

    Published to every observer once (a failure while handling this one is dropped);
    the renderer prints it.  The session goes on, and the other observers got the event.
    """

    observer: str
    event: str
    error: str

    @property
    def message(self) -> str:
        return f"internal error in {self.observer} while handling {self.event}: {self.error}"


SessionEvent = (Event | Connected | Sent | TlsEstablished | TlsFailed | ObserverFailed
                | MailCheck)
Observer = Callable[[SessionEvent], None]


@dataclass(frozen=True, kw_only=True)
class SessionSnapshot:
    """A frozen view of the session for the prompt, the toolbar, /status and hints."""

    target: str
    connected: bool
    mode: ClientState
    stage: Stage
    tls: bool
    tls_report: TlsReport | None
    """The report of this connection's handshake (None when it is not encrypted)."""
    authenticated: bool
    auth_user: str | None
    capabilities: Capabilities | None
    closed_reason: str | None
    """Why the connection ended (None while it is open)."""
    line_open: bool
    """Part of a line went out and the rest did not (raw bytes without CRLF)."""

    @property
    def in_data(self) -> bool:
        return self.mode is ClientState.DATA

    @property
    def in_auth(self) -> bool:
        return self.mode is ClientState.AUTH

    @property
    def tls_summary(self) -> str | None:
        """``TLSv1.3 TLS_AES_256_GCM_SHA384``, or None when not encrypted."""
        if self.tls_report is None:
            return None
        return f"{self.tls_report.version} {self.tls_report.cipher}"


class SessionError(Exception):
    """A failure that ends an attempt (connect, TLS), with a stage for exit codes."""

    def __init__(
        self,
        stage: str,
        message: str,
        *,
        tls_failure: tls.TlsFailure | None = None,
        no_greeting: bool = False,
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message
        self.tls_failure = tls_failure
        """A failed handshake's details (fingerprint, ways forward), when that failed."""
        self.no_greeting = no_greeting
        """Connected, but the server said nothing (or closed) before a greeting."""


SessionFactory = Callable[[ConnectOptions, Sequence[Observer]], "Session"]
"""What a front end makes its sessions with: ``Session``, or in tests
``lambda options, observers: Session(options, observers, opener=stream.opener())``."""


INTERRUPTED_TLS = (
    "interrupted during the TLS handshake: the connection is closed (it cannot go on "
    "in plain text once the handshake began)"
)
INTERRUPTED_SENDING = (
    "interrupted while sending: the connection is closed (a message or line sent only "
    "in part cannot be finished)"
)


def _crosses_auth(data: bytes, in_auth: bool) -> bool:
    """Does a /raw payload take part in an AUTH exchange (answers, or an AUTH line)?"""
    if in_auth:
        return True
    return any(line.split()[:1] == [b"AUTH"] for line in data.upper().split(b"\n"))


class Session:
    def __init__(
        self,
        options: ConnectOptions,
        observers: Sequence[Observer] = (),
        *,
        opener: Opener = open_stream,
    ) -> None:
        self.options = options
        self.observers: list[Observer] = list(observers)
        self.conn = ClientConnection(lmtp=options.lmtp)
        self.tls_report: tls.TlsReport | None = None
        self.greeting: Reply | None = None
        self.closed_reason: str | None = None
        self._stream: NetworkStream | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiters: deque[asyncio.Future[Reply | None]] = deque()
        self._owed_to: list[asyncio.Future[Reply | None]] = []
        """The futures the latest ``_wait`` goes through; lines a DATA reply releases
        (``RepliesOwed``) add theirs to it, so that wait covers them too."""
        self._greeting_future: asyncio.Future[Reply | None] | None = None
        self._context: ssl.SSLContext | None = None
        self.classifier = Classifier()
        """Classifies every line sent (``Outgoing``); follows hand-typed AUTH exchanges."""
        self._opener = opener
        self.mail_checks: list[MailCheck] = []
        """Every MX, DANE and MTA-STS result published on this session, in order."""
        self._hop: Hop | None = None
        """The MX host of ``route`` being tried or used (its name, not ``--sni``'s, is what
        DANE and MTA-STS check)."""

    # ---- state, for the prompt and toolbar ------------------------------------------
    def snapshot(self) -> SessionSnapshot:
        conn = self.conn
        connected = self.connected
        return SessionSnapshot(
            target=self.options.target,
            connected=connected,
            mode=conn.state,
            stage=conn.stage,
            tls=conn.tls,
            tls_report=self.tls_report if conn.tls else None,
            authenticated=conn.authenticated,
            auth_user=conn.auth_user,
            capabilities=conn.capabilities,
            closed_reason=None if connected else self.closed_reason,
            line_open=conn.line_open,
        )

    @property
    def connected(self) -> bool:
        return self._stream is not None and self.conn.state is not ClientState.CLOSED

    @property
    def is_tls(self) -> bool:
        return self.conn.tls

    @property
    def in_data(self) -> bool:
        return self.conn.state is ClientState.DATA

    @property
    def in_auth(self) -> bool:
        return self.conn.state is ClientState.AUTH

    @property
    def stage(self) -> Stage:
        return self.conn.stage

    @property
    def capabilities(self) -> Capabilities | None:
        return self.conn.capabilities

    @property
    def authenticated(self) -> bool:
        return self.conn.authenticated

    @property
    def auth_user(self) -> str | None:
        """Who authenticated (the core learns it from the AUTH exchange)."""
        return self.conn.auth_user

    def subscribe(self, observer: Observer) -> None:
        self.observers.append(observer)

    def unsubscribe(self, observer: Observer) -> None:
        if observer in self.observers:
            self.observers.remove(observer)

    def publish(self, event: SessionEvent) -> None:
        failures: list[ObserverFailed] = []
        for observer in list(self.observers):
            try:
                observer(event)
            except Exception as exc:  # one observer's bug must not end the session
                if isinstance(event, ObserverFailed):
                    continue  # reporting a failure failed: nothing more to say
                name = getattr(observer, "__qualname__", type(observer).__name__)
                failures.append(ObserverFailed(
                    observer=name, event=type(event).__name__,
                    error=f"{type(exc).__name__}: {exc}",
                ))
        for failure in failures:
            self.publish(failure)

    # ---- connecting ------------------------------------------------------------------
    def tls_context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = self.options.ssl_context or tls.make_client_context(self.options.tls)
        return self._context

    async def connect(self) -> Reply:
        """Connect, do implicit TLS if asked, and wait for the greeting.

        With a ``route`` (``--mx``), try its hosts in order until one answers: a host that
        cannot be reached or sends no greeting is said as a warning and the next is tried
        (RFC 5321 §5.1); a TLS failure ends the attempt.  The lookups made before
        connecting are published first.

        Raises ``SessionError`` (stage "connect" or "tls") with a one-line message.
        """
        for check in self.options.lookups:
            self.publish_check(check)
        if not self.options.route:
            return await self._connect_one()
        base = self.options
        failures: list[str] = []
        for index, hop in enumerate(base.route):
            tls_options = replace(base.tls, server_name=base.tls.server_name or hop.name,
                                  dane=hop.dane)
            self.options = replace(base, host=hop.address, route=(), lookups=(),
                                   tls=tls_options, ssl_context=None)
            self._context = None
            self._hop = hop
            self.publish(Notice(kind="mx-try", message=f"trying {hop.describe(base.port)}"))
            try:
                return await self._connect_one()
            except SessionError as exc:
                if exc.stage != "connect":
                    raise
                failures.append(f"{hop.name}: {exc.message}")
                if index + 1 < len(base.route):
                    self.publish(Notice(kind="mx-failed", warning=True,
                                        message=f"{hop.name}: {exc.message}; trying the next"
                                                " MX host"))
        count = len(base.route)
        raise SessionError("connect", failures[0] if count == 1 else
                           f"none of the {count} MX hosts answered ({'; '.join(failures)})")

    def publish_check(self, check: MailCheck) -> None:
        """Publish what DNS or a policy said, and keep it for ``/dane`` and ``/mta-sts``."""
        self.mail_checks.append(check)
        self.publish(check)

    async def _connect_one(self) -> Reply:
        opts = self.options
        implicit = opts.tls_mode == "implicit"
        ctx = None
        if implicit:
            try:
                ctx = self.tls_context()
            except tls.TlsConfigError as exc:
                raise SessionError("tls", str(exc)) from exc
        hostname = tls.server_hostname(opts.tls, opts.host) if implicit else None
        try:
            with tls.capture_handshakes() as handshakes:
                stream = await self._opener(
                    host=opts.host,
                    port=opts.port,
                    unix_path=opts.unix_path,
                    timeout=opts.connect_timeout,
                    ssl_context=ctx,
                    server_hostname=hostname,
                    family=opts.family,
                    local_addr=opts.local_addr,
                )
        except TransportError as exc:
            raise SessionError("connect", str(exc)) from exc
        except (ssl.SSLError, ConnectionError) as exc:
            failed = tls.describe_failure(exc, opts.host, opts.tls, captured=handshakes)
            raise SessionError("tls", failed.message, tls_failure=failed) from exc
        self._stream = stream
        self.conn = ClientConnection(lmtp=opts.lmtp, tls=implicit)
        self.publish(Connected(target=opts.target, tls_mode=opts.tls_mode))
        if implicit:
            failure = self._after_handshake(stream, implicit=True)
            if failure:
                await self.close()
                raise SessionError("tls", failure)
        loop = asyncio.get_running_loop()
        self._greeting_future = loop.create_future()
        self._reader = asyncio.create_task(self._read_loop())
        try:
            greeting = await asyncio.wait_for(
                asyncio.shield(self._greeting_future), opts.reply_timeout
            )
        except TimeoutError:
            await self.close()
            raise SessionError(
                "connect",
                f"no greeting from {opts.target} within {opts.reply_timeout:g}s",
                no_greeting=True,
            ) from None
        if greeting is None:
            raise SessionError(
                "connect",
                self.closed_reason or f"{opts.target} closed before its greeting",
                no_greeting=True,
            )
        self.greeting = greeting
        return greeting

    def _after_handshake(self, stream: NetworkStream, *, implicit: bool) -> str | None:
        """Build the TLS report, check pins; return a failure message or None."""
        sslobj = stream.ssl_object
        if sslobj is None:
            canned = getattr(stream, "tls_report", None)  # a MockStream's
            if canned is None:
                return "TLS handshake finished but no TLS session is present"
            self.tls_report = canned
            self.publish(TlsEstablished(report=canned, implicit=implicit))
            return None
        report = tls.build_report(sslobj, self.options.tls, self.options.host)
        if self.options.tls.pins:
            der = sslobj.getpeercert(binary_form=True)
            problem = tls.check_pins(der or b"", self.options.tls.pins)
            if problem:
                return problem
        if self.options.peer_check is not None:
            report, problem = self._peer_checks(report)
            if problem:
                return problem
        self.tls_report = report
        self.publish(TlsEstablished(report=report, implicit=implicit))
        return None

    def _peer_checks(self, report: TlsReport) -> tuple[TlsReport, str | None]:
        """DANE and MTA-STS on the finished handshake: publish each result, add its line
        to the report; return the report and why the connection must not be used, or None.
        A check that crashes fails closed when DANE replaced the PKIX check."""
        opts = self.options
        assert opts.peer_check is not None
        name = self._hop.name if self._hop else (tls.server_hostname(opts.tls, opts.host)
                                                  or opts.host)
        try:
            checks = tuple(opts.peer_check(name, opts.port, report))
        except Exception as exc:  # a bug in a check must not let an unchecked peer through
            message = f"internal error in the certificate check: {type(exc).__name__}: {exc}"
            if opts.tls.dane:
                return report, message
            self.publish(Notice(kind="check-failed", message=message, warning=True))
            return report, None
        for check in checks:
            self.publish_check(check)
        lines = tuple(c.report_line for c in checks if c.report_line)
        report = replace(report, checks=report.checks + lines)
        proof = next((c.authenticates for c in checks if c.authenticates), None)
        if proof is not None:
            report = replace(report, verified=True, verification=proof)
        failures = [c.failure for c in checks if c.failure]
        if failures:
            return report, "; ".join(failures)
        if opts.tls.dane and proof is None:
            return report, "DANE: no check established the server's identity"
        return report, None

    # ---- the reader ------------------------------------------------------------------
    async def _read_loop(self) -> None:
        try:
            while self.conn.state is not ClientState.CLOSED and self._stream is not None:
                try:
                    data = await self._stream.read()
                except TransportError as exc:
                    self.conn.connection_lost(str(exc))
                else:
                    self.conn.receive_data(data)
                await self._dispatch()
        finally:
            self._fail_waiters()

    async def _dispatch(self) -> None:
        resolved: list[tuple[asyncio.Future[Reply | None], Reply]] = []
        while (event := self.conn.next_event()) is not None:
            if isinstance(event, RepliesOwed):  # for the driver, not the observers
                self._owe(event.count)
                continue
            if isinstance(event, Reply):
                if event.kind is ReplyKind.GREETING:
                    if self._greeting_future and not self._greeting_future.done():
                        self._greeting_future.set_result(event)
                elif event.kind is ReplyKind.RESPONSE and self._waiters:
                    resolved.append((self._waiters.popleft(), event))
            self.publish(event)
            if isinstance(event, StartTlsReady):
                await self._starttls_handshake()
            elif isinstance(event, Closed):
                self.closed_reason = event.reason
                await self._close_stream()
            elif isinstance(event, ProtocolError) and event.fatal:
                self.conn.connection_lost(event.message)
        for fut, reply in resolved:
            if not fut.done():
                fut.set_result(reply)

    def _owe(self, count: int) -> None:
        """Lines sent after DATA, released by its reply, expect ``count`` replies: wait
        for them in the same wait as the DATA line (``ClientConnection.send_raw``)."""
        loop = asyncio.get_running_loop()
        for _ in range(count):
            fut: asyncio.Future[Reply | None] = loop.create_future()
            self._waiters.append(fut)
            self._owed_to.append(fut)

    async def _starttls_handshake(self) -> None:
        assert self._stream is not None
        self.conn.discard_injected(self._stream.take_buffered())
        opts = self.options
        failed: tls.TlsFailure | None = None
        handshakes: list[ssl.SSLObject | ssl.SSLSocket] = []
        try:
            ctx = self.tls_context()
            with tls.capture_handshakes() as handshakes:
                new = await self._stream.start_tls(
                    ctx, tls.server_hostname(opts.tls, opts.host), opts.connect_timeout
                )
        except tls.TlsConfigError as exc:
            message = str(exc)
        except (ssl.SSLError, OSError, TimeoutError, TransportError) as exc:
            failed = tls.describe_failure(exc, opts.host, opts.tls, captured=handshakes)
            message = failed.message
        else:
            self._stream = new
            failure = self._after_handshake(new, implicit=False)
            if failure is None:
                self.conn.tls_started()
                return
            self.publish(TlsFailed(message=failure))
            # the TlsFailed line says why; nothing more goes over this connection
            self.conn.connection_lost("the certificate was refused after the handshake, so"
                                      " the connection is closed: nothing more is sent",
                                      unexpected=False)
            return
        self.publish(TlsFailed(message=message, failure=failed))
        # The TlsFailed line already says why; the close reason need not repeat it.
        self.conn.connection_lost("the TLS handshake failed, so the connection is closed")

    def _fail_waiters(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
        if self._greeting_future and not self._greeting_future.done():
            self._greeting_future.set_result(None)

    # ---- sending ---------------------------------------------------------------------
    async def send(
        self,
        out: Outgoing | str,
        *,
        origin: Origin = "user",
        dot_stuff: bool = True,
        wait: bool = True,
    ) -> list[Reply]:
        """Send one line; wait for the replies it asks for (none inside DATA).

        ``out`` comes classified (``protocol.sasl.redact``); a plain ``str`` is classified
        here as it is sent (with ``origin``), so no line escapes the redaction point.
        Returns the replies that arrived in time; a timeout or a close is published as an
        event, never raised.
        """
        return await self._send([out], origin=origin, dot_stuff=dot_stuff, wait=wait)

    async def send_lines(
        self,
        lines: Sequence[Outgoing | str],
        *,
        origin: Origin = "user",
        dot_stuff: bool = True,
        wait: bool = True,
    ) -> list[Reply]:
        """Send several lines in one write (pipelining), then wait for every reply."""
        return await self._send(lines, origin=origin, dot_stuff=dot_stuff, wait=wait)

    async def _send(
        self,
        items: Sequence[Outgoing | str],
        *,
        origin: Origin,
        dot_stuff: bool,
        wait: bool,
    ) -> list[Reply]:
        if not self.connected or self._stream is None:
            self.publish(Notice(kind="not-connected", message="not connected"))
            return []
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Reply | None]] = []
        chunks: list[bytes] = []
        for item in items:
            in_data = self.in_data
            out = item if isinstance(item, Outgoing) else self.classifier.line(
                item, in_data=in_data, in_auth=self.in_auth, origin=origin
            )
            before = len(self.conn.pending)
            try:
                user = out.credential.user if out.credential is not None else None
                data = self.conn.send_line(out.line, dot_stuff=dot_stuff, user=user)
            except LineError as exc:
                self.publish(Notice(kind="bad-line", message=str(exc), warning=True))
                break
            for _ in range(len(self.conn.pending) - before):
                fut: asyncio.Future[Reply | None] = loop.create_future()
                self._waiters.append(fut)
                futures.append(fut)
            self._flush_notices()  # a warning (AUTH in clear) is said before the line goes
            self.publish(
                Sent(out=out, data=b"" if out.secret else data, tls=self.is_tls, in_data=in_data)
            )
            chunks.append(data)
        if chunks and not await self._write(b"".join(chunks)):
            return []
        if not wait:
            return []
        return await self._wait(futures)

    async def send_raw(
        self,
        data: bytes | Outgoing,
        *,
        shown: str | None = None,
        origin: Origin = "user",
    ) -> list[Reply]:
        """Send exact bytes (a /raw payload, a streamed message body); wait for the
        replies the complete command lines in them ask for (the core follows the bytes).

        ``data`` may come classified (an ``Outgoing`` with ``raw`` bytes).  Bytes without
        ``shown`` are a /raw payload, classified here at the redaction point; with it they
        are a message chunk that ``shown`` describes ("" for the chunks after the first).
        The core knows which lines wait for a reply.  An interrupt while a message or a
        line is partly sent closes the connection.
        """
        if not self._can_send():
            return []
        if isinstance(data, Outgoing):
            out = data
            raw = out.raw if out.raw is not None else out.line.encode("utf-8", "surrogateescape")
        elif shown is None and not self.in_data and _crosses_auth(data, self.in_auth):
            return await self._send_raw_steps(data, origin)
        else:
            out, raw = self._raw_outgoing(data, shown, origin), data
        return await self._send_bytes(lambda: self.conn.send_raw(raw), out)

    async def _send_raw_steps(self, data: bytes, origin: Origin) -> list[Reply]:
        """A /raw payload that takes part in an AUTH exchange, one line at a time.

        Each line waits for its reply, so the connection's state and the classifier follow
        the exchange exactly: a line is an answer only while the server says 334, a non-334
        ends the exchange, and "authenticated" needs a 235.  Lines written as answers for an
        exchange the server ended (one word, not a command) are not sent.
        """
        pieces = data.split(b"\n")
        lines = [piece + b"\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
        replies: list[Reply] = []
        ended = skipped = 0
        for i, line in enumerate(lines):
            if not self._can_send():
                break
            if self.in_data:  # a message: the rest goes out in one write, as before
                return await self._send_raw_chunk(b"".join(lines[i:]), origin)
            text = line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
            if ended and lined_up_answer(text):
                skipped += 1
                continue
            ended = 0
            words = text.split()
            in_exchange = self.in_auth or (bool(words) and words[0].upper() == "AUTH")
            replies = await self._send_raw_chunk(line, origin)
            if line.endswith(b"\n") and not replies:
                if i + 1 < len(lines):
                    self.publish(Notice(kind="not-sent", warning=True, message=(
                        "the rest of the /raw payload was not sent: no reply to the line "
                        "before it")))
                break
            if in_exchange and not self.in_auth and replies and replies[-1].code >= 400:
                ended = 1
        if skipped:
            self.publish(Notice(kind="not-sent", warning=True, message=(
                f"not sent: {skipped} line(s) of the /raw payload answer an AUTH exchange "
                "the server ended")))
        return replies

    async def send_bdat(
        self, data: bytes, *, last: bool, shown: str, origin: Origin = "shell"
    ) -> list[Reply]:
        """``BDAT <size> [LAST]`` and the chunk (RFC 3030); wait for the reply.

        An interrupt before the reply to a chunk that is not the last closes the
        connection: the message is half sent.
        """
        if not self._can_send():
            return []
        head = f"BDAT {len(data)}{' LAST' if last else ''}\r\n".encode("ascii")
        out = Outgoing(shown, None, origin, head + data)
        return await self._send_bytes(
            lambda: self.conn.send_bdat(data, last=last), out, closes=not last
        )

    async def _send_raw_chunk(self, chunk: bytes, origin: Origin) -> list[Reply]:
        out = self._raw_outgoing(chunk, None, origin)
        return await self._send_bytes(lambda: self.conn.send_raw(chunk), out)

    def _raw_outgoing(self, data: bytes, shown: str | None, origin: Origin) -> Outgoing:
        if shown is None:
            return self.classifier.raw(data, in_data=self.in_data, in_auth=self.in_auth,
                                       origin=origin)
        return Outgoing(shown, None, origin, data)

    def _can_send(self) -> bool:
        if not self.connected or self._stream is None:
            self.publish(Notice(kind="not-connected", message="not connected"))
            return False
        return True

    async def _send_bytes(
        self, encode: Callable[[], bytes], out: Outgoing, *, closes: bool = False
    ) -> list[Reply]:
        in_data = self.in_data
        before = len(self.conn.pending)
        try:
            data = encode()
        except LineError as exc:
            self.publish(Notice(kind="bad-line", message=str(exc), warning=True))
            return []
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Reply | None]] = []
        for _ in range(len(self.conn.pending) - before):
            fut: asyncio.Future[Reply | None] = loop.create_future()
            self._waiters.append(fut)
            futures.append(fut)
        self._flush_notices()  # a warning (AUTH in clear) is said before the bytes go
        self.publish(Sent(out=out, data=b"" if out.secret else data, tls=self.is_tls,
                          in_data=in_data))
        try:
            if not await self._write(data):
                return []
            return await self._wait(futures)
        except asyncio.CancelledError:
            if self.connected and (closes or self.in_data or self.conn.line_open):
                self.abort(INTERRUPTED_SENDING)
            raise

    async def _write(self, data: bytes) -> bool:
        assert self._stream is not None
        try:
            # asyncio.timeout, not wait_for: no task per write (wait_for made one for every
            # line sent, a few percent of a replay's CPU)
            async with asyncio.timeout(self.options.send_timeout):
                await self._stream.write(data)
        except TimeoutError:
            self.conn.connection_lost(
                f"send timed out after {self.options.send_timeout:g}s: "
                "the server is not reading what we send"
            )
            await self._dispatch()
            return False
        except (TransportError, OSError) as exc:
            self.conn.connection_lost(str(exc))
            await self._dispatch()
            return False
        return True

    async def _wait(self, futures: list[asyncio.Future[Reply | None]]) -> list[Reply]:
        replies: list[Reply] = []
        timeout = self.options.reply_timeout
        self._owed_to = futures  # _owe appends while we wait; the loop sees the new ones
        for fut in futures:
            try:
                async with asyncio.timeout(timeout):
                    reply = await asyncio.shield(fut)  # a late reply still resolves fut
            except TimeoutError:
                self.publish(
                    Notice(
                        kind="timeout",
                        message=f"no reply within {timeout:g}s (it will be shown if it comes)",
                        warning=True,
                    )
                )
                break
            except asyncio.CancelledError:
                if self.conn.state is ClientState.TLS_HANDSHAKE:
                    self.abort(INTERRUPTED_TLS)
                raise
            if reply is None:
                break
            replies.append(reply)
        return replies

    def abort(self, reason: str) -> None:
        """Close at once, dropping what is not yet sent, and publish ``Closed(reason)``.

        For an interrupt: it needs no ``await`` (the task that was cancelled calls it).
        """
        if self.conn.state is not ClientState.CLOSED:
            self.conn.connection_lost(reason, unexpected=False)
            self.closed_reason = reason
        self._flush_notices()
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.abort()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        self._fail_waiters()

    def _flush_notices(self) -> None:
        while (event := self.conn.next_event()) is not None:
            if isinstance(event, RepliesOwed):
                self._owe(event.count)
            else:
                self.publish(event)

    # ---- helpers used by front ends -------------------------------------------------
    async def ehlo(self) -> Reply | None:
        verb = "LHLO" if self.options.lmtp else "EHLO"
        replies = await self.send(f"{verb} {self.options.ehlo_name}", origin="shell")
        return replies[0] if replies else None

    async def starttls(self) -> Reply | None:
        replies = await self.send("STARTTLS", origin="shell")
        return replies[0] if replies else None

    async def auth(self, mechanism: str, user: str, secret: str) -> list[Reply]:
        """One SASL exchange (RFC 4954): ``AUTH``, then an answer to each ``334``.

        The mechanism (``protocol.sasl.mechanisms``: PLAIN, LOGIN, CRAM-MD5, XOAUTH2)
        computes the answers; each line is classified at the redaction point (what it is
        built from, never its secret, reaches the observers); the secret is handed to the
        classifier's redactor, the second look for it anywhere else.  Notes on unusual
        steps are published as notices.  Returns the replies to the last line sent.
        Raises ValueError for credentials the mechanism cannot carry (``auth_problem``).
        """
        mech = MECHANISMS[mechanism.upper()](user, secret)
        redactor = self.classifier.redactor
        redactor.add_secret(secret)
        for literal in mech.products():
            redactor.add_literal(literal)
        del secret
        step = mech.start()
        first = True
        while True:
            if step.note:
                self.publish(Notice(kind="auth-note", message=step.note))
            replies = await self.send(self.classifier.from_step(step, mech.name, first=first))
            first = False
            if not replies or replies[-1].code != 334:
                return replies
            step = mech.step(replies[-1].texts[0].strip())

    @staticmethod
    def auth_problem(mechanism: str, user: str, secret: str) -> str | None:
        """Why ``auth`` cannot use these credentials with ``mechanism``, or None."""
        return credential_problem(mechanism, user, secret)

    @staticmethod
    def strongest_mechanism(advertised: Sequence[str], *, token: bool = False) -> str | None:
        """The strongest advertised mechanism ``auth`` speaks (CRAM-MD5 > PLAIN > LOGIN;
        XOAUTH2 for a token), or None."""
        return choose_mechanism(advertised, token=token)

    async def close(self) -> None:
        await self._await_server_close()
        if self._stream is not None and self.conn.state is not ClientState.CLOSED:
            self.conn.connection_lost("closed by the client")
            self.closed_reason = "closed by the client"
            while (event := self.conn.next_event()) is not None:
                if not isinstance(event, Closed | RepliesOwed):  # our close is not news,
                    self.publish(event)  # but part of a reply that came is
        await self._close_stream()
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
            try:
                await self._reader
            except asyncio.CancelledError:
                pass
            self._reader = None
        self._fail_waiters()

    async def _await_server_close(self) -> None:
        """After QUIT the server closes the connection, usually at once: give it a moment,
        so that who closed is what happened on the wire (``closed by=server`` in a
        transcript) and not a race between its close and ours."""
        reader = self._reader
        if (reader is None or reader.done() or reader is asyncio.current_task()
                or not self.conn.quit_sent or self.conn.state is ClientState.CLOSED):
            return
        try:
            await asyncio.wait_for(asyncio.shield(reader), QUIT_CLOSE_GRACE)
        except Exception:  # TimeoutError too
            # the reader's own failure is reported by the reader; a server that keeps the
            # connection open after QUIT is closed by us below
            pass

    async def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                await stream.close()
            except (OSError, ssl.SSLError, TransportError):
                pass
