"""ClientConnection: the sans-IO SMTP client core.

Bytes from the server go in with ``receive_data()``; events come out of
``next_event()``.  What the client sends goes in as a typed line (``send_line()``),
exact bytes (``send_raw()``) or a BDAT chunk (``send_bdat()``); each returns the exact
bytes to write.  Nothing here blocks, prints or touches a socket; the driver
(``smtpshell.session``) does the I/O.

The connection owns all connection state, and only the table in ``state`` moves it
(h11's "Rule 1"): the mode, the transaction stage, what EHLO advertised, TLS, who
authenticated.  Fields are read-only from outside; ``snapshot()`` is a frozen view.
Replies pair with the commands that asked for them in order (so pipelined commands,
RFC 2920, work).  Raw bytes are followed line by line, so ``/raw`` text that ends a
message or holds two commands is understood as the server will understand it, and a
BDAT chunk's octets are never taken for commands.

Bytes written after a DATA or BDAT line, before its reply came, are held undecided (see
``send_raw``): the reply says what they were to the server.  When it releases lines that
want replies, the core says how many with a ``RepliesOwed`` event right after that reply.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

from .events import Closed, Event, Notice, ProtocolError, Reply, ReplyKind, StartTlsReady
from .replies import Capabilities, ReplyParser
from .replies import decode_line as _decode_line
from .state import (
    BDAT_LAST,
    GREETING,
    SENT,
    TLS_DONE,
    ClientState,
    Effect,
    Move,
    Stage,
    next_move,
)

MAX_COMMAND_LINE = 512
"""RFC 5321 §4.5.3.1.4: a command line, CRLF included, is at most 512 octets."""
MAX_TEXT_LINE = 1000
"""RFC 5321 §4.5.3.1.6: a line of message text, CRLF included, is at most 1000 octets."""
_INCOMPLETE_SHOWN = 300
_PARTIAL_KEPT = 1024
"""Of an outgoing command line not yet ended, keep this much (enough for its verb)."""
_END_OF_DATA = b"\r\n.\r\n"


class _Pending:
    """A command sent whose reply is still owed.

    A plain class, not a dataclass: a private value, one fewer class to build at start-up.
    """

    __slots__ = ("key", "verb")

    def __init__(self, verb: str, key: str) -> None:
        self.verb = verb
        """What the reply's ``command`` says (``BDAT`` for any chunk)."""
        self.key = key
        """The verb in the state table (``BDAT LAST`` for the last chunk)."""


class RepliesOwed:
    """For the driver, not for the screen: ``count`` more replies are now expected, after
    the reply just before this event (lines sent after DATA, released by its reply; see
    ``ClientConnection.send_raw``).  A plain class, not a dataclass: the session only
    reads ``count``, and one fewer class to build at start-up."""

    __slots__ = ("count",)

    def __init__(self, *, count: int) -> None:
        self.count = count


@dataclass(frozen=True, kw_only=True)
class ConnectionSnapshot:
    """A frozen view of the connection's state, for screens and hints."""

    mode: ClientState
    stage: Stage
    tls: bool
    capabilities: Capabilities | None
    authenticated: bool
    auth_user: str | None
    accepted_recipients: int
    pending: tuple[str, ...]
    line_open: bool
    lmtp: bool


def verb_of(line: str) -> str:
    """The upper-case verb of a command line (``MAIL`` for ``mail from:<a>``)."""
    return line.split(" ", 1)[0].strip().upper()


class LineError(ValueError):
    """A line the client core refuses to send (a local error: CR or LF inside it)."""


class ClientConnection:
    def __init__(self, *, lmtp: bool = False, tls: bool = False) -> None:
        self._lmtp = lmtp
        self._state = ClientState.GREETING
        self._tls = tls
        self._capabilities: Capabilities | None = None
        self._authenticated = False
        self._auth_user: str | None = None
        self._auth_candidate: str | None = None
        self._stage = Stage.NONE
        self._recipients = 0
        self._parser = ReplyParser()
        self._pending: deque[_Pending] = deque()
        self._events: deque[Event | RepliesOwed] = deque()
        self._injected = bytearray()
        self._said_dot_stuffing = False
        self._quit_sent = False
        # what went out, followed byte by byte (see send_raw)
        self._partial = bytearray()
        """An outgoing command line not yet ended with CRLF (its first bytes)."""
        self._partial_size = 0
        self._opaque = 0
        """Octets of a BDAT chunk still to go: data, not commands."""
        self._tail = b"\r\n"
        """In DATA mode, the last octets of the message so far (to see CRLF.CRLF)."""
        self._held: bytearray | None = None
        """Bytes sent after a DATA or BDAT line whose reply has not come (None: none)."""
        self._held_for: _Pending | None = None
        """The command whose reply decides what the held bytes are."""
        self._held_chunk = 0
        """For BDAT: the chunk's size (its octets are data unless BDAT is unknown)."""

    # ---- state, read-only ------------------------------------------------------------
    @property
    def state(self) -> ClientState:
        """The mode (``ClientState``)."""
        return self._state

    mode = state

    @property
    def stage(self) -> Stage:
        return self._stage

    @property
    def tls(self) -> bool:
        return self._tls

    @property
    def lmtp(self) -> bool:
        return self._lmtp

    @property
    def capabilities(self) -> Capabilities | None:
        return self._capabilities

    @property
    def authenticated(self) -> bool:
        return self._authenticated

    @property
    def auth_user(self) -> str | None:
        """Who authenticated, when the line that did it said (``send_line(user=…)``)."""
        return self._auth_user

    @property
    def accepted_recipients(self) -> int:
        return self._recipients

    @property
    def pending(self) -> tuple[str, ...]:
        """Verbs of the commands still waiting for a reply, oldest first."""
        return tuple(p.verb for p in self._pending)

    @property
    def expects_reply(self) -> bool:
        return bool(self._pending) or self._state is ClientState.GREETING

    @property
    def quit_sent(self) -> bool:
        """A QUIT went out on this connection: typed, pipelined or inside a /raw payload
        (the core follows every byte), so the server's close that follows is expected."""
        return self._quit_sent

    @property
    def line_open(self) -> bool:
        """Part of a line (or of a BDAT chunk) went out and the rest has not."""
        if self._held is not None and (self._held or self._held_chunk):
            if len(self._held) < self._held_chunk:
                return True
            rest = self._held[self._held_chunk :]
            return bool(rest) and not rest.endswith(b"\n")
        if self._state is ClientState.DATA:
            return not self._tail.endswith(b"\r\n")
        return bool(self._partial_size) or self._opaque > 0

    @property
    def in_chunk(self) -> bool:
        """Octets of a BDAT chunk are still owed to the server."""
        held = len(self._held) if self._held is not None else 0
        return self._opaque > 0 or held < self._held_chunk

    def snapshot(self) -> ConnectionSnapshot:
        return ConnectionSnapshot(
            mode=self._state,
            stage=self._stage,
            tls=self._tls,
            capabilities=self._capabilities,
            authenticated=self._authenticated,
            auth_user=self._auth_user,
            accepted_recipients=self._recipients,
            pending=self.pending,
            line_open=self.line_open,
            lmtp=self._lmtp,
        )

    # ---- outgoing -------------------------------------------------------------------
    def send_line(self, line: str, *, dot_stuff: bool = True, user: str | None = None) -> bytes:
        """Encode one line the user typed; return the bytes to write.

        In DATA mode a line starting with "." is dot-stuffed (RFC 5321 §4.5.2) unless
        ``dot_stuff`` is false, and the lone "." ends the message.  ``user``: for an
        AUTH line, whom the credential is for (``auth_user`` after 235).  Raises
        ``LineError`` for a line with CR or LF in it; use ``send_raw`` for that.
        """
        if "\r" in line or "\n" in line:
            raise LineError("a line cannot contain CR or LF (use raw mode to send such bytes)")
        self._check_open()
        if user is not None:
            self._auth_candidate = user
        data = line.encode("utf-8", errors="surrogateescape")
        if self._state is ClientState.DATA:
            data = self._data_line(data, dot_stuff)
        data += b"\r\n"
        self._track_out(data)
        return data

    def _check_open(self) -> None:
        if self._state is ClientState.CLOSED:
            raise LineError("the connection is closed")
        if self._state is ClientState.TLS_HANDSHAKE:
            raise LineError("the TLS handshake is in progress: nothing can be sent now")

    def _data_line(self, data: bytes, dot_stuff: bool) -> bytes:
        if self.line_open:
            self._notice(
                "line-continued",
                "the line before was sent without its line end, so this text continues it"
                + (" (this '.' does not end the message)" if data == b"." else ""),
                warning=True,
            )
            return data
        if data == b".":
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

    def send_raw(self, data: bytes) -> bytes:
        """Bytes sent exactly as given (raw mode, a streamed message body).  No CRLF is
        added.  They are followed as the server reads them: each complete command line
        waits for its reply, and CRLF "." CRLF in a message ends it.

        What follows a DATA line before its reply has come (``DATA`` and a message in one
        payload, a hand-pipelined or smuggling probe) means what the reply makes it, so it
        is held undecided until then:

        * 354: it is the message; no reply is expected for its lines, and the line "."
          that ends it waits for the final reply (LMTP: one per accepted recipient), as
          on the typed DATA path; what follows the "." is commands again.
        * anything else (503, 554, 451...): the server read no message, so every line
          after DATA is a command to it and gets a reply (usually 500 each), and the core
          expects one reply per line, in order; a notice says so.  Nothing is lost or
          waited out: each reply pairs with its line as it comes.

        ``BDAT n`` and its octets likewise: the octets are the chunk (data, never
        commands) unless BDAT is answered 500 or 502, which says the server does not know
        BDAT and so reads them as commands (each then expects a reply).  Any other reply
        means a server with CHUNKING, which reads the octets whatever it answers
        (RFC 3030 §2).

        Either way a ``RepliesOwed`` event follows the reply when the released lines
        expect replies, so the driver waits for exactly those.
        """
        self._check_open()
        self._track_out(data)
        return data

    def send_bdat(self, data: bytes, *, last: bool) -> bytes:
        """``BDAT <size> [LAST]`` and the chunk (RFC 3030): the bytes to write."""
        self._check_open()
        head = f"BDAT {len(data)}{' LAST' if last else ''}\r\n".encode("ascii")
        out = head + data
        self._track_out(out)
        return out

    def _track_out(self, data: bytes) -> None:
        """Follow outgoing bytes: command lines, message text, BDAT octets."""
        pos, size = 0, len(data)
        while pos < size:
            if self._held is not None:  # after DATA or BDAT, before its reply: undecided
                self._held += data[pos:]
                return
            if self._opaque:
                n = min(self._opaque, size - pos)
                self._opaque -= n
                pos += n
            elif self._state is ClientState.DATA:
                pos = self._track_data(data, pos)
            else:
                nl = data.find(b"\n", pos)
                end = size if nl < 0 else nl
                room = _PARTIAL_KEPT - len(self._partial)
                if room > 0:
                    self._partial += data[pos : min(end, pos + room)]
                self._partial_size += end - pos
                if nl < 0:
                    return
                line, length = bytes(self._partial), self._partial_size + 1
                self._partial.clear()
                self._partial_size = 0
                pos = nl + 1
                self._command_sent(line.removesuffix(b"\r"), length)

    def _track_data(self, data: bytes, pos: int) -> int:
        """Message text from ``pos``: where the message ends in it, or its end."""
        tail = self._tail
        found = (tail + data[pos : pos + len(_END_OF_DATA)]).find(_END_OF_DATA)
        if found >= 0:
            end = pos + found + len(_END_OF_DATA) - len(tail)
        else:
            at = data.find(_END_OF_DATA, pos)
            if at < 0:
                self._tail = (tail + data[max(pos, len(data) - len(_END_OF_DATA)) :])[
                    -len(_END_OF_DATA) :
                ]
                return len(data)
            end = at + len(_END_OF_DATA)
        self._end_of_data()
        return end

    def _end_of_data(self) -> None:
        replies = max(self._recipients, 1) if self._lmtp else 1  # LMTP: RFC 2033 §4.2
        for _ in range(replies):
            self._pending.append(_Pending(".", "."))
        self._apply(next_move(self._state, self._stage, ".", SENT))

    def _command_sent(self, line: bytes, size: int) -> None:
        """A complete command line (or AUTH continuation) of ``size`` octets went out."""
        if size > MAX_COMMAND_LINE:
            self._notice(
                "long-line",
                f"this line is {size} octets; RFC 5321 §4.5.3.1.4 allows 512",
                warning=True,
            )
        if self._state is ClientState.AUTH:
            self._pending.append(_Pending("AUTH", "AUTH"))
            return
        words = line.decode("utf-8", "surrogateescape").split()
        verb = words[0].upper() if words else ""
        key = verb
        chunk = 0
        if verb == "BDAT":
            if len(words) > 1 and words[1].isdigit() and words[1].isascii():
                chunk = int(words[1])
            if len(words) > 2 and words[2].upper() == "LAST":
                key = BDAT_LAST
        if verb == "AUTH" and not self._tls:
            self._notice(
                "auth-in-clear",
                "AUTH on a connection that is not encrypted: the credentials travel in clear",
                warning=True,
            )
        replies = 1
        if key == BDAT_LAST and self._lmtp:
            replies = max(self._recipients, 1)  # RFC 2033 §4.2 with RFC 3030
        for _ in range(replies):
            self._pending.append(_Pending(verb, key))
        self._apply(next_move(self._state, self._stage, key, SENT))
        if verb == "DATA" or chunk:
            # what follows means what this command's reply makes it (see send_raw)
            self._held, self._held_for = bytearray(), self._pending[-replies]
            self._held_chunk = chunk

    # ---- incoming -------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Bytes from the server; ``b""`` means the server closed the connection."""
        if self._state is ClientState.CLOSED:
            return
        if self._state is ClientState.TLS_HANDSHAKE:
            self._injected += data
            return
        if not data:
            self._report_incomplete()
            pending = self.pending
            self._state = ClientState.CLOSED
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
                if self._on_reply(replace(event, tls=self._tls)):
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
        if self._state is ClientState.GREETING:
            self._apply(next_move(self._state, self._stage, GREETING, reply.code // 100))
            self._events.append(replace(reply, kind=ReplyKind.GREETING))
            return False
        if not self._pending:
            self._events.append(replace(reply, kind=ReplyKind.UNSOLICITED))
            self._note_421(reply)
            return False
        pending = self._pending.popleft()
        reply = replace(reply, command=pending.verb)
        move = next_move(self._state, self._stage, pending.key, reply.code // 100)
        if pending.verb == "AUTH" and reply.code // 100 != 3 and (
            move is None or Effect.AUTHENTICATED not in move.effects
        ):
            self._auth_candidate = None
        self._apply(move, reply)
        self._events.append(reply)
        self._note_421(reply)
        if pending is self._held_for:
            self._release(reply)
        return self._state is ClientState.TLS_HANDSHAKE

    def _release(self, reply: Reply) -> None:
        """The reply to DATA or BDAT came: follow the bytes sent after it as what it
        made them."""
        held, self._held, self._held_for = bytes(self._held or b""), None, None
        chunk, self._held_chunk = self._held_chunk, 0
        if chunk and reply.code not in (500, 502):
            self._opaque = chunk  # a server with CHUNKING reads the chunk, whatever it says
        elif chunk:
            self._notice(
                "bdat-unknown",
                f"the server answered BDAT with {reply.code} (it does not know BDAT), so the "
                f"{chunk} octets after it are not a chunk: it reads them as commands, and "
                "each line is answered (shown as it comes)",
                warning=True,
            )
        if not held:
            return
        before = len(self._pending)
        if not chunk and self._state is not ClientState.DATA:
            lines = held.count(b"\n")
            self._notice(
                "data-refused-pipelined",
                f"the server answered DATA with {reply.code}, so the {lines} line(s) sent "
                "after it are not a message: it reads them as commands, and each is "
                "answered (shown as it comes)",
                warning=True,
            )
        self._track_out(held)
        # lines sent after this DATA's release, held again by a later DATA, are not counted
        owed = len(self._pending) - before
        if owed > 0:
            self._events.append(RepliesOwed(count=owed))

    def _apply(self, move: Move | None, reply: Reply | None = None) -> None:
        """Make a move of the state table: the one place the state changes."""
        if move is None:
            return
        self._state = move.mode
        if move.stage is not None:
            if move.stage in (Stage.NONE, Stage.MAIL):
                self._recipients = 0
            self._stage = move.stage
        for effect in move.effects:
            if effect is Effect.CAPABILITIES and reply is not None:
                self._capabilities = Capabilities.from_reply(reply)
            elif effect is Effect.NO_CAPABILITIES:
                self._capabilities = Capabilities()
            elif effect is Effect.AUTHENTICATED:
                self._authenticated = True
                self._auth_user = self._auth_candidate
                self._auth_candidate = None
            elif effect is Effect.RECIPIENT:
                self._recipients += 1
            elif effect is Effect.QUIT:
                self._quit_sent = True
            elif effect is Effect.TLS_STARTED:
                self._tls = True
                self._capabilities = None
                self._authenticated = False
                self._auth_user = self._auth_candidate = None
        if self._state is ClientState.DATA and move.mode is ClientState.DATA:
            self._tail = b"\r\n"  # the message starts at the start of a line

    def _note_421(self, reply: Reply) -> None:
        if reply.code == 421:
            self._notice("closing", "the server says it is closing the connection (421)")

    def _start_tls_ready(self) -> None:
        if self._capabilities is not None and "STARTTLS" not in self._capabilities:
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
        self._apply(next_move(self._state, self._stage, TLS_DONE, SENT))
        self._injected.clear()
        self._partial.clear()
        self._partial_size = self._opaque = self._held_chunk = 0
        self._held = self._held_for = None
        self._parser = ReplyParser()

    def connection_lost(self, reason: str, *, unexpected: bool = True) -> None:
        """The connection ended (reset, TLS failure, timeout, the user's interrupt)."""
        if self._state is ClientState.CLOSED:
            return
        self._report_incomplete()
        pending = self.pending
        self._state = ClientState.CLOSED
        self._pending.clear()
        self._held = self._held_for = None
        self._held_chunk = 0
        self._events.append(Closed(reason=reason, unexpected=unexpected, pending=pending))

    def _report_incomplete(self) -> None:
        """The connection ends inside a reply: show what came, flagged, rather than lose it."""
        if self._state is ClientState.TLS_HANDSHAKE:
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

    def next_event(self) -> Event | RepliesOwed | None:
        """The next event, or None when more data is needed."""
        return self._events.popleft() if self._events else None

    def _notice(self, kind: str, message: str, *, warning: bool = False) -> None:
        self._events.append(Notice(kind=kind, message=message, warning=warning))


__all__ = [
    "MAX_COMMAND_LINE",
    "MAX_TEXT_LINE",
    "ClientConnection",
    "ClientState",
    "Closed",
    "ConnectionSnapshot",
    "LineError",
    "ProtocolError",
    "RepliesOwed",
    "Reply",
    "Stage",
    "StartTlsReady",
    "verb_of",
]
