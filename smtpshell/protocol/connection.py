"""ClientConnection: the sans-IO SMTP client core.

Bytes from the server go in with ``receive_data()``; events come out of
``next_event()``.  Lines for the server go in with ``send_line()``, which returns
the exact bytes to write (always ending in CRLF).  Nothing here blocks, prints or
touches a socket; the driver (``smtpshell.session``) does the I/O.

The connection pairs replies with the commands that asked for them in order
(so pipelined commands, RFC 2920, work), tracks the mode (``state.ClientState``),
what EHLO advertised, TLS and AUTH status, and the mail transaction stage.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

from .events import Closed, Event, Notice, ProtocolError, Reply, ReplyKind, StartTlsReady
from .replies import Capabilities, ReplyParser
from .replies import decode_line as _decode_line
from .state import ClientState, Stage, next_state

MAX_COMMAND_LINE = 512
MAX_TEXT_LINE = 1000
_INCOMPLETE_SHOWN = 300


@dataclass
class _Pending:
    verb: str


def verb_of(line: str) -> str:
    """The upper-case verb of a command line (``MAIL`` for ``mail from:<a>``)."""
    return line.split(" ", 1)[0].strip().upper()


class LineError(ValueError):
    """A line the client core refuses to send (a local error: CR or LF inside it)."""


class ClientConnection:
    def __init__(self, *, lmtp: bool = False, tls: bool = False) -> None:
        self.lmtp = lmtp
        self.state = ClientState.GREETING
        self.tls = tls
        self.capabilities: Capabilities | None = None
        self.authenticated = False
        self.stage = Stage.NONE
        self.accepted_recipients = 0
        self._parser = ReplyParser()
        self._pending: deque[_Pending] = deque()
        self._events: deque[Event] = deque()
        self._injected = bytearray()
        self._said_dot_stuffing = False
        self._quit_sent = False

    # ---- outgoing -------------------------------------------------------------------
    @property
    def pending(self) -> tuple[str, ...]:
        """Verbs of the commands still waiting for a reply, oldest first."""
        return tuple(p.verb for p in self._pending)

    @property
    def expects_reply(self) -> bool:
        return bool(self._pending) or self.state is ClientState.GREETING

    def send_line(self, line: str, *, dot_stuff: bool = True) -> bytes:
        """Encode one line the user typed; return the bytes to write.

        In DATA mode a line starting with "." is dot-stuffed (RFC 5321 §4.5.2) unless
        ``dot_stuff`` is false, and the lone "." ends the message.  Raises
        ``LineError`` for a line with CR or LF in it; use ``send_raw`` for that.
        """
        if "\r" in line or "\n" in line:
            raise LineError("a line cannot contain CR or LF (use raw mode to send such bytes)")
        if self.state is ClientState.CLOSED:
            raise LineError("the connection is closed")
        data = line.encode("utf-8", errors="surrogateescape")
        if self.state is ClientState.DATA:
            return self._data_line(data, dot_stuff) + b"\r\n"
        if len(data) + 2 > MAX_COMMAND_LINE:
            self._notice(
                "long-line",
                f"this line is {len(data) + 2} octets; RFC 5321 §4.5.3.1.4 allows 512",
                warning=True,
            )
        if self.state is ClientState.AUTH:
            self._pending.append(_Pending("AUTH"))
            return data + b"\r\n"
        verb = verb_of(line)
        self._pending.append(_Pending(verb))
        if verb == "AUTH" and not self.tls:
            self._notice(
                "auth-in-clear",
                "AUTH on a connection that is not encrypted: the credentials travel in clear",
                warning=True,
            )
        return data + b"\r\n"

    def _data_line(self, data: bytes, dot_stuff: bool) -> bytes:
        if data == b".":
            self.state = ClientState.READY
            self.stage = Stage.NONE
            replies = max(self.accepted_recipients, 1) if self.lmtp else 1
            for _ in range(replies):
                self._pending.append(_Pending("."))
            self.accepted_recipients = 0
            return data
        if len(data) + 2 > MAX_TEXT_LINE:
            self._notice(
                "long-line",
                f"this line is {len(data) + 2} octets; RFC 5321 §4.5.3.1.6 allows 1000",
                warning=True,
            )
        if data.startswith(b".") and dot_stuff:
            if not self._said_dot_stuffing:
                self._said_dot_stuffing = True
                self._notice(
                    "dot-stuffed",
                    "a line starting with '.' is sent with an extra '.' (dot-stuffing, "
                    "RFC 5321 §4.5.2); the server removes it, so your line arrives as typed",
                )
            return b"." + data
        return data

    def send_raw(self, data: bytes, *, expect_reply: bool = False, verb: str = "RAW") -> bytes:
        """Bytes sent exactly as given (raw mode, BDAT chunks).  No CRLF is added."""
        if self.state is ClientState.CLOSED:
            raise LineError("the connection is closed")
        if expect_reply:
            self._pending.append(_Pending(verb))
        return data

    # ---- incoming -------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Bytes from the server; ``b""`` means the server closed the connection."""
        if self.state is ClientState.CLOSED:
            return
        if self.state is ClientState.TLS_HANDSHAKE:
            self._injected += data
            return
        if not data:
            self._report_incomplete()
            pending = self.pending
            self.state = ClientState.CLOSED
            self._events.append(
                Closed(
                    reason="connection closed by server"
                    + (f" while waiting for the reply to {pending[0]}" if pending else ""),
                    unexpected=bool(pending) or not self._quit_sent,
                    pending=pending,
                )
            )
            self._pending.clear()
            return
        for event in self._parser.feed(data):
            if isinstance(event, Reply):
                if self._on_reply(event):
                    self._injected += self._parser.take_buffer()
                    self._start_tls_ready()
                    return
            else:
                self._events.append(event)
                if event.fatal:
                    # The driver must drop the connection: say so with a Closed event.
                    self.connection_lost("the shell closed the connection after that error")
                    return

    def _on_reply(self, reply: Reply) -> bool:
        """Record a reply; True when it was the 220 that starts a TLS handshake."""
        if self.state is ClientState.GREETING:
            self.state = ClientState.READY
            self._events.append(replace(reply, kind=ReplyKind.GREETING))
            return False
        if not self._pending:
            self._events.append(replace(reply, kind=ReplyKind.UNSOLICITED))
            self._note_421(reply)
            return False
        verb = self._pending.popleft().verb
        reply = replace(reply, command=verb)
        self._track(verb, reply)
        self._events.append(reply)
        self._note_421(reply)
        return self.state is ClientState.TLS_HANDSHAKE

    def _track(self, verb: str, reply: Reply) -> None:
        klass = reply.code // 100
        self.state = next_state(self.state, verb, reply.code)
        if verb in ("EHLO", "LHLO") and klass == 2:
            self.capabilities = Capabilities.from_reply(reply)
        elif verb == "HELO" and klass == 2:
            self.capabilities = Capabilities()
        elif verb == "AUTH" and klass == 2:
            self.authenticated = True
        elif verb == "MAIL":
            if klass == 2:
                self.stage, self.accepted_recipients = Stage.MAIL, 0
        elif verb == "RCPT":
            if klass == 2:
                self.stage = Stage.RCPT
                self.accepted_recipients += 1
        elif verb == "DATA" and klass == 3:
            self.stage = Stage.DATA
        elif verb in ("RSET", "EHLO", "HELO", "LHLO") and klass == 2:
            self.stage, self.accepted_recipients = Stage.NONE, 0
        elif verb == "QUIT":
            self._quit_sent = True

    def _note_421(self, reply: Reply) -> None:
        if reply.code == 421:
            self._notice("closing", "the server says it is closing the connection (421)")

    def _start_tls_ready(self) -> None:
        if self.capabilities is not None and "STARTTLS" not in self.capabilities:
            self._notice(
                "starttls-not-advertised",
                "the server accepted STARTTLS although its EHLO reply did not advertise it",
                warning=True,
            )
        self._events.append(StartTlsReady(injected=bytes(self._injected)))
        if self._injected:
            self._notice(
                "starttls-injection",
                f"SECURITY: the server sent {len(self._injected)} bytes after its 220 to "
                "STARTTLS and before the TLS handshake; they were DISCARDED "
                "(STARTTLS response injection, CVE-2011-0411 family)",
                warning=True,
            )
        self._injected.clear()
        if self._pending:
            dropped = ", ".join(p.verb for p in self._pending)
            self._pending.clear()
            self._notice(
                "pipelined-after-starttls",
                f"commands sent after STARTTLS in the same batch were dropped: {dropped}",
                warning=True,
            )

    def discard_injected(self, data: bytes) -> None:
        """The driver found more plaintext before the handshake: count and warn."""
        if data:
            self._notice(
                "starttls-injection",
                f"SECURITY: {len(data)} more bytes arrived in plaintext after the 220 to "
                "STARTTLS; DISCARDED (STARTTLS response injection)",
                warning=True,
            )

    def tls_started(self) -> None:
        """The handshake succeeded: forget what plaintext EHLO said (RFC 3207 §4.2)."""
        self.tls = True
        self.capabilities = None
        self.authenticated = False
        self.state = ClientState.READY
        self._injected.clear()
        self._parser = ReplyParser()

    def connection_lost(self, reason: str) -> None:
        """The driver lost the connection (reset, TLS failure, timeout)."""
        if self.state is ClientState.CLOSED:
            return
        self._report_incomplete()
        pending = self.pending
        self.state = ClientState.CLOSED
        self._pending.clear()
        self._events.append(Closed(reason=reason, unexpected=True, pending=pending))

    def _report_incomplete(self) -> None:
        """The connection ends inside a reply: show what came, flagged, rather than lose it."""
        if self.state is ClientState.TLS_HANDSHAKE:
            return  # plaintext after the 220 is discarded, never shown (see StartTlsReady)
        lines = self._parser.take_incomplete()
        if not lines:
            return
        shown = " | ".join(_decode_line(line) for line in lines)
        if len(shown) > _INCOMPLETE_SHOWN:
            shown = shown[:_INCOMPLETE_SHOWN] + "..."
        self._events.append(
            ProtocolError(
                message=f"the connection ended in the middle of a reply; received: {shown}",
                raw=b"\r\n".join(lines),
            )
        )

    def next_event(self) -> Event | None:
        """The next event, or None when more data is needed."""
        return self._events.popleft() if self._events else None

    def _notice(self, kind: str, message: str, *, warning: bool = False) -> None:
        self._events.append(Notice(kind=kind, message=message, warning=warning))


__all__ = [
    "ClientConnection",
    "ClientState",
    "Closed",
    "LineError",
    "ProtocolError",
    "Reply",
    "Stage",
    "StartTlsReady",
    "verb_of",
]
