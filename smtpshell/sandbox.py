"""The built-in sandbox: a local SMTP (or LMTP) server for testing and teaching.

It runs aiosmtpd on 127.0.0.1 with a throw-away trustme CA, so everything works offline:

* the plain port offers STARTTLS (submission style); AUTH PLAIN, LOGIN and CRAM-MD5 are
  offered only after TLS, for one test account (``demo`` / ``demo-password`` by default);
* the implicit-TLS port speaks TLS from the first byte, with the same certificate;
* MAIL without AUTH is allowed; messages are kept in memory and in a Maildir, byte for byte;
* recipients in ``reject_recipients`` are answered ``550 5.1.1`` so a refusal can be shown;
* ``lmtp=True`` serves LMTP (LHLO, one DATA reply per accepted recipient) without TLS;
* ``chunking=True`` offers CHUNKING (RFC 3030): ``BDAT n [LAST]`` and exactly n octets.

Use ``async with Sandbox(config) as sb:`` inside a running loop, or ``with SandboxThread(config)
as sb:`` from blocking code; ``smtpshell sandbox`` (``smtpshell.cli.sandbox``) runs it in the
foreground.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import mailbox
import os
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, syntax

from .transport import format_address, format_peer

__all__ = [
    "DEFAULT_HOSTNAME",
    "DEFAULT_PASSWORD",
    "DEFAULT_PORT",
    "DEFAULT_REJECT_RECIPIENTS",
    "DEFAULT_TLS_PORT",
    "DEFAULT_USER",
    "Delivery",
    "Sandbox",
    "SandboxConfig",
    "SandboxThread",
    "format_address",
]

DEFAULT_PORT = 2525
"""Plain + STARTTLS port used by ``smtpshell sandbox``."""
DEFAULT_TLS_PORT = 4650
"""Implicit-TLS port used by ``smtpshell sandbox``."""
DEFAULT_USER = "demo"
DEFAULT_PASSWORD = "demo-password"
"""A fixed, documented password: the sandbox only listens locally and holds test mail."""
DEFAULT_HOSTNAME = "sandbox.smtpshell.test"
DEFAULT_REJECT_RECIPIENTS = ("reject@sandbox.test",)

_IDENT_SMTP = "ESMTP smtpshell sandbox"
_IDENT_LMTP = "LMTP smtpshell sandbox"
_CLOSE_TIMEOUT = 10.0  # safety bound when waiting for aborted connections to report lost


@dataclass
class SandboxConfig:
    """How to run the sandbox. Port 0 picks a free port (what tests use).

    ``host`` should be an address literal: a name with several addresses and port 0 would
    bind a different free port per address, and only the first is reported.
    ``tls_port=None`` turns the implicit-TLS listener off; ``lmtp=True`` always does.
    """

    host: str = "127.0.0.1"
    port: int = 0
    tls_port: int | None = 0
    workdir: Path | None = None
    user: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    hostname: str = DEFAULT_HOSTNAME
    lmtp: bool = False
    reject_recipients: tuple[str, ...] = DEFAULT_REJECT_RECIPIENTS
    auth_require_tls: bool = True
    chunking: bool = False
    """Offer CHUNKING (RFC 3030, ``BDAT``) too; SMTP only, not with ``lmtp``."""


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """One accepted message: the envelope, the raw content and how it arrived."""

    key: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes = field(repr=False)
    peer: str
    tls: bool
    user: str | None


class _DropLoginDataDeprecation(logging.Filter):
    """aiosmtpd itself sets the deprecated ``Session.login_data`` on every successful AUTH
    and logs a warning about it; that says nothing to a sandbox user, so drop just that."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Session.login_data is deprecated")


_CLIENT_GONE = (ConnectionResetError, BrokenPipeError, ssl.SSLError)


def _client_gone_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's exception handler while a sandbox serves on it.

    A client that resets its connection while a server task still reads or writes leaves
    a future whose ``ConnectionResetError`` nobody retrieves (seen on Python 3.12 after an
    implicit-TLS client's QUIT); asyncio then prints "Future exception was never retrieved"
    with a traceback on stderr.  A client going away is no error of the sandbox: that is
    kept out of the screen (aiosmtpd's log says what the session did); every other
    exception goes to asyncio's default handler as before.
    """
    if isinstance(context.get("exception"), _CLIENT_GONE):
        return
    loop.default_exception_handler(context)


def _quiet_aiosmtpd() -> None:
    logger = logging.getLogger("mail.log")
    if not any(isinstance(f, _DropLoginDataDeprecation) for f in logger.filters):
        logger.addFilter(_DropLoginDataDeprecation())


class _Handler:
    """aiosmtpd hooks: recipient policy, storage, the account check and CRAM-MD5."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        cfg = sandbox.config
        self._rejects = frozenset(r.lower() for r in cfg.reject_recipients)
        self._user = cfg.user.encode()
        self._password = cfg.password.encode()

    def _account_ok(self, login: bytes, password: bytes) -> bool:
        # Evaluate both comparisons so timing does not tell which part was wrong.
        user_ok = hmac.compare_digest(login, self._user)
        password_ok = hmac.compare_digest(password, self._password)
        return user_ok and password_ok

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """The ``authenticator=`` for the built-in PLAIN and LOGIN mechanisms."""
        if isinstance(data, LoginPassword) and self._account_ok(data.login, data.password):
            return AuthResult(success=True, auth_data=data.login.decode(errors="replace"))
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535 5.7.8

    async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
        """CRAM-MD5 (RFC 2195); aiosmtpd maps ``auth_CRAM__MD5`` to the name ``CRAM-MD5``."""
        if len(args) > 1:
            await server.push("501 5.5.2 CRAM-MD5 takes no initial response")
            return AuthResult(success=False, handled=True)
        challenge = f"<{secrets.randbelow(10**10)}.{int(time.time())}@{server.hostname}>"
        response = await server.challenge_auth(challenge)
        if not isinstance(response, bytes):  # '*' or bad base64: already answered 501
            return AuthResult(success=False, handled=True)
        login, _, digest = response.rpartition(b" ")
        expected = hmac.new(self._password, challenge.encode(), "md5").hexdigest().encode()
        user_ok = hmac.compare_digest(login, self._user)
        digest_ok = hmac.compare_digest(digest.lower(), expected)
        if user_ok and digest_ok:
            return AuthResult(success=True, auth_data=login.decode(errors="replace"))
        return AuthResult(success=False, handled=False)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() in self._rejects:
            return f"550 5.1.1 <{address}>: recipient rejected (sandbox reject list)"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        transport = server.transport
        tls = transport is not None and transport.get_extra_info("ssl_object") is not None
        user = session.auth_data if isinstance(session.auth_data, str) else None
        try:
            delivery = self._sandbox._store(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=data,
                peer=format_peer(session.peer),
                tls=tls,
                user=user,
            )
        except OSError as exc:
            return f"451 4.3.0 sandbox could not store the message: {exc.strerror or exc}"
        if isinstance(server, LMTP):
            # LMTP (RFC 2033 §4.2): one reply per accepted recipient. push() appends the
            # final CRLF, so the replies are joined into one write.
            return "\r\n".join(
                f"250 2.0.0 <{rcpt}> delivered as {delivery.key}" for rcpt in delivery.rcpt_tos
            )
        return f"250 2.0.0 OK: queued as {delivery.key}"


class _Tracked(SMTP):
    """aiosmtpd's SMTP, reporting each connection to the sandbox so stop() can close it."""

    def __init__(self, handler: Any, *, sandbox: Sandbox, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sandbox = sandbox
        self.lost: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.lost is None:  # STARTTLS calls this a second time; register once
            self.lost = self.loop.create_future()
            self._sandbox._live.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            self._sandbox._live.discard(self)
            if self.lost is not None and not self.lost.done():
                self.lost.set_result(None)


class _TrackedLMTP(_Tracked, LMTP):
    """aiosmtpd's LMTP with the same connection tracking."""


class _ChunkingHandler(_Handler):
    """The hooks, plus CHUNKING in the EHLO reply (aiosmtpd does not speak BDAT)."""

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        return [*responses[:-1], "250-CHUNKING", responses[-1]]


class _Chunking(_Tracked):
    """SMTP with ``BDAT n [LAST]`` (RFC 3030): the chunk is exactly n octets, no
    dot-stuffing; the message (the chunks joined) is stored at ``LAST`` like DATA's."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._chunks = bytearray()

    def _set_post_data_state(self) -> None:
        super()._set_post_data_state()  # type: ignore[no-untyped-call]
        self._chunks = bytearray()

    @syntax("BDAT size [LAST]")
    async def smtp_BDAT(self, arg: str) -> None:
        words = arg.split()
        if not (1 <= len(words) <= 2 and words[0].isascii() and words[0].isdigit()
                and (len(words) == 1 or words[1].upper() == "LAST")):
            await self.push("501 5.5.4 Syntax: BDAT size [LAST]")
            return
        size, last = int(words[0]), len(words) == 2
        try:
            chunk = await self._reader.readexactly(size)  # read even if refused (RFC 3030)
        except asyncio.IncompleteReadError:
            return
        if await self.check_helo_needed("EHLO") or await self.check_auth_needed("BDAT"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            self._chunks = bytearray()
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        self._chunks += chunk
        limit = self.data_size_limit
        if limit and len(self._chunks) > limit:
            self._set_post_data_state()
            await self.push("552 5.3.4 Error: Too much mail data")
            return
        if not last:
            await self.push(f"250 2.0.0 {size} octets received")
            return
        content = bytes(self._chunks)
        self.envelope.original_content = content
        self.envelope.content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)


@dataclass(frozen=True)
class _Paths:
    workdir: Path
    ca_file: Path
    server_pem: Path
    maildir: Path
    temporary: bool


class Sandbox:
    """The sandbox server, run inside the current event loop.

    After ``start()`` (or entering ``async with``): ``host``, ``port``, ``tls_port`` (None if
    off), ``ca_file``, ``maildir``, ``workdir``, ``user``, ``password``, ``hostname``.
    ``on_delivery`` is called in the loop's thread for each stored message.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        on_delivery: Callable[[Delivery], None] | None = None,
    ) -> None:
        self.config = config if config is not None else SandboxConfig()
        cfg = self.config
        self.host = cfg.host
        self.port = cfg.port
        self.tls_port: int | None = None if cfg.lmtp else cfg.tls_port
        self.user = cfg.user
        self.password = cfg.password
        self.hostname = cfg.hostname
        self.lmtp = cfg.lmtp
        self._on_delivery = on_delivery
        self._paths: _Paths | None = None
        self._mailbox: mailbox.Maildir | None = None
        self._servers: list[asyncio.Server] = []
        self._live: set[_Tracked] = set()
        self._deliveries: list[Delivery] = []

    # -- paths (valid once started) --------------------------------------------------------

    def _need_paths(self) -> _Paths:
        if self._paths is None:
            raise RuntimeError("the sandbox is not running")
        return self._paths

    @property
    def workdir(self) -> Path:
        return self._need_paths().workdir

    @property
    def ca_file(self) -> Path:
        """The PEM file of the sandbox CA: give it to a client as its trust anchor."""
        return self._need_paths().ca_file

    @property
    def maildir(self) -> Path:
        return self._need_paths().maildir

    # -- stored mail -----------------------------------------------------------------------

    def messages(self) -> list[bytes]:
        """Raw messages accepted since start, in arrival order (safe from any thread)."""
        return [d.data for d in list(self._deliveries)]

    def deliveries(self) -> list[Delivery]:
        """Messages with their envelopes, in arrival order (safe from any thread)."""
        return list(self._deliveries)

    def client_ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts the sandbox CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def _store(
        self,
        *,
        mail_from: str,
        rcpt_tos: tuple[str, ...],
        data: bytes,
        peer: str,
        tls: bool,
        user: str | None,
    ) -> Delivery:
        assert self._mailbox is not None
        key = self._mailbox.add(data)
        delivery = Delivery(
            key=key, mail_from=mail_from, rcpt_tos=rcpt_tos, data=data, peer=peer, tls=tls,
            user=user,
        )
        self._deliveries.append(delivery)
        if self._on_delivery is not None:
            self._on_delivery(delivery)
        return delivery

    # -- life cycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _make_paths(self) -> _Paths:
        given = self.config.workdir
        if given is None:
            workdir = Path(tempfile.mkdtemp(prefix="smtpshell-sandbox-"))
        else:
            workdir = Path(given)
            workdir.mkdir(parents=True, exist_ok=True)
        return _Paths(
            workdir=workdir,
            ca_file=workdir / "ca.pem",
            server_pem=workdir / "server.pem",
            maildir=workdir / "maildir",
            temporary=given is None,
        )

    def _make_tls_context(self, paths: _Paths) -> ssl.SSLContext:
        ca = trustme.CA(organization_name="smtpshell sandbox")
        names = ["localhost", "127.0.0.1", "::1", self.hostname]
        if self.host not in names and self.host not in ("", "0.0.0.0", "::"):
            names.append(self.host)
        cert = ca.issue_cert(*names, common_name=self.hostname)
        ca.cert_pem.write_to_path(str(paths.ca_file))
        cert.private_key_and_cert_chain_pem.write_to_path(str(paths.server_pem))
        os.chmod(paths.server_pem, 0o600)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(paths.server_pem))
        return context

    async def start(self) -> None:
        """Create the certificate and maildir and start listening."""
        if self._paths is not None:
            raise RuntimeError("the sandbox is already running")
        _quiet_aiosmtpd()
        loop = asyncio.get_running_loop()
        if loop.get_exception_handler() is None:  # a caller's own handler stays in charge
            loop.set_exception_handler(_client_gone_handler)
        paths = self._make_paths()
        self._paths = paths
        try:
            tls_context = self._make_tls_context(paths)
            self._mailbox = mailbox.Maildir(str(paths.maildir), create=True)
            chunking = self.config.chunking and not self.lmtp
            handler = _ChunkingHandler(self) if chunking else _Handler(self)
            cls = _TrackedLMTP if self.lmtp else _Chunking if chunking else _Tracked
            common: dict[str, Any] = {
                "sandbox": self,
                "hostname": self.hostname,
                "ident": _IDENT_LMTP if self.lmtp else _IDENT_SMTP,
                "enable_SMTPUTF8": True,
                "authenticator": handler.authenticate,
                "loop": loop,
            }

            def plain() -> _Tracked:
                return cls(
                    handler,
                    tls_context=None if self.lmtp else tls_context,
                    auth_require_tls=self.config.auth_require_tls,
                    **common,
                )

            def implicit() -> _Tracked:
                # Already encrypted: no STARTTLS, and AUTH needs no further TLS.
                return cls(handler, tls_context=None, auth_require_tls=False, **common)

            server = await loop.create_server(plain, self.config.host, self.config.port)
            self._servers.append(server)
            self.port = server.sockets[0].getsockname()[1]
            if self.tls_port is not None:
                tls_server = await loop.create_server(
                    implicit, self.config.host, self.tls_port, ssl=tls_context
                )
                self._servers.append(tls_server)
                self.tls_port = tls_server.sockets[0].getsockname()[1]
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop listening, close open connections, remove a temporary workdir."""
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        waiters = []
        for conn in list(self._live):
            transport = conn.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()  # no TLS close_notify dance with a client that may be idle
            if conn.lost is not None:
                waiters.append(conn.lost)
        if waiters:
            await asyncio.wait(waiters, timeout=_CLOSE_TIMEOUT)
        for server in servers:
            await server.wait_closed()
        if self._mailbox is not None:
            self._mailbox.close()
            self._mailbox = None
        paths, self._paths = self._paths, None
        if paths is not None and paths.temporary:
            shutil.rmtree(paths.workdir, ignore_errors=True)


class SandboxThread:
    """Run a :class:`Sandbox` in a background thread with its own event loop.

    ``with SandboxThread(config) as sb:`` gives the running :class:`Sandbox`; a start-up error
    (e.g. the port is taken) is raised by ``start()``/``__enter__``.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        on_delivery: Callable[[Delivery], None] | None = None,
    ) -> None:
        self._sandbox = Sandbox(config, on_delivery=on_delivery)
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def sandbox(self) -> Sandbox:
        return self._sandbox

    def start(self) -> Sandbox:
        if self._thread is not None:
            raise RuntimeError("SandboxThread can be started once")
        self._thread = threading.Thread(target=self._run, name="smtpshell-sandbox", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self._sandbox

    def stop(self) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or not thread.is_alive():
            return
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # reported to start(); never a traceback from the thread
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self._sandbox:
            self._ready.set()
            await self._stop.wait()
