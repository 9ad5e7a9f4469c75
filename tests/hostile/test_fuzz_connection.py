"""Property-based tests of the whole sans-IO client core (``ClientConnection``).

Any sequence of sends and arbitrary received byte chunks gives events, or a
``LineError`` for a line the core refuses to send: never another exception, never an
event that breaks the rules below.  And nothing received is lost: every line the
server sent comes out in some event.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from smtpshell.protocol.connection import ClientConnection, LineError, RepliesOwed
from smtpshell.protocol.events import Closed, Event, Notice, ProtocolError, Reply, StartTlsReady
from smtpshell.protocol.state import ClientState

FRAGMENTS = [
    b"220 mx ESMTP\r\n", b"250-mx\r\n", b"250-STARTTLS\r\n", b"250 SIZE 100\r\n",
    b"250 2.1.0 Ok\r\n", b"354 go ahead\r\n", b"334 VXNlcm5hbWU6\r\n", b"334 \r\n",
    b"235 2.7.0 ok\r\n", b"220 2.0.0 ready for TLS\r\n", b"421 4.3.2 bye\r\n", b"221 bye\r\n",
    b"550 5.1.1 no\r\n", b"250-", b"250 ", b"25", b"0 ok\r\n", b"\r\n", b"\n", b"\r",
    b"\x00", b"\xff\xfe", b"\xc3\xa9", b"\xc2\x9b", b"\x1b[2J\x1b]0;x\x07", b"2500 four\r\n",
    b"HTTP/1.1 400 Bad Request\r\n", b"x" * 600, b"250-x\r\n" * 40, b"A" * 9000,
    b"250-x\r\n" * 1001,
]
LINES = [
    "EHLO x", "HELO x", "LHLO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", ".", "..",
    ".x", "AUTH PLAIN", "AUTH LOGIN", "*", "STARTTLS", "QUIT", "RSET", "NOOP", "", "x\r\ny",
    "a\nb", "caf\udce9", "y" * 600,
]

chunks = st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=64))
lines = st.one_of(st.sampled_from(LINES), st.text(max_size=30))
operation = st.one_of(
    st.tuples(st.just("send"), lines, st.booleans()),
    st.tuples(st.just("raw"), st.binary(max_size=20), st.booleans()),
    st.tuples(st.just("recv"), chunks),
    st.tuples(st.just("recv"), chunks),  # (twice: receiving is the interesting part)
    st.tuples(st.just("eof")),
    st.tuples(st.just("lost"), st.text(max_size=10)),
    st.tuples(st.just("handshake"), st.booleans(), st.binary(max_size=10)),
)

# The modes in which the client core refuses to send anything.
SILENT = (ClientState.CLOSED, ClientState.TLS_HANDSHAKE)

# What a terminal must never receive from a reply: C0 controls (but TAB), DEL, C1 controls.
UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


class Checker:
    """Drives a ClientConnection as the session would and checks every event."""

    def __init__(self, lmtp: bool) -> None:
        self.conn = ClientConnection(lmtp=lmtp)
        self.closed = 0
        self.events: list[Event] = []

    def step(self, op: tuple[object, ...]) -> None:
        conn = self.conn
        kind = op[0]
        if kind == "send":
            line, dot_stuff = op[1], op[2]
            assert isinstance(line, str) and isinstance(dot_stuff, bool)
            try:
                data = conn.send_line(line, dot_stuff=dot_stuff)
            except LineError:
                assert "\r" in line or "\n" in line or conn.state in SILENT
            else:
                assert conn.state is not ClientState.CLOSED
                assert data.endswith(b"\r\n")
                assert b"\r" not in data[:-2] and b"\n" not in data[:-2]
        elif kind == "raw":
            raw, bdat = op[1], op[2]
            assert isinstance(raw, bytes) and isinstance(bdat, bool)
            try:
                if bdat:
                    assert conn.send_bdat(raw, last=len(raw) % 2 == 1).endswith(raw)
                else:
                    assert conn.send_raw(raw) == raw
            except LineError:
                assert conn.state in SILENT
        elif kind == "recv":
            chunk = op[1]
            assert isinstance(chunk, bytes)
            conn.receive_data(chunk)
        elif kind == "eof":
            conn.receive_data(b"")
        elif kind == "lost":
            conn.connection_lost(str(op[1]))
        elif kind == "handshake" and conn.state is ClientState.TLS_HANDSHAKE:
            # What the session does after StartTlsReady: discard, then succeed or fail.
            ok, late = op[1], op[2]
            assert isinstance(late, bytes)
            conn.discard_injected(late)
            if ok:
                conn.tls_started()
            else:
                conn.connection_lost("TLS handshake failed")
        self.drain()

    def drain(self) -> None:
        while (event := self.conn.next_event()) is not None:
            self.check(event)
            self.events.append(event)
        assert (self.conn.state is ClientState.CLOSED) == (self.closed == 1)
        if self.closed:
            assert self.conn.pending == ()

    def check(self, event: Event) -> None:
        assert isinstance(event, Reply | ProtocolError | Notice | StartTlsReady | Closed
                          | RepliesOwed)
        if isinstance(event, RepliesOwed):
            # commands sent behind a DATA/BDAT, released by its reply: now awaited
            assert not self.closed, "replies owed after Closed"
            assert event.count >= 1
            assert len(self.conn.pending) >= event.count
        if isinstance(event, Closed):
            self.closed += 1
            assert self.closed == 1, "a second Closed event"
        elif isinstance(event, Reply):
            assert not self.closed, "a reply after Closed"
            assert 200 <= event.code <= 599
            assert len(event.lines) == len(event.raw) >= 1
            for line in event.lines:
                assert re.match(r"[2-5]\d\d([ -]|$)", line)
                assert not UNSAFE.search(line), line
        elif isinstance(event, ProtocolError):
            assert not UNSAFE.search(event.message), event.message


@settings(max_examples=400, deadline=None)
@given(st.lists(operation, max_size=40), st.booleans())
def test_any_sends_and_received_bytes_give_events_never_exceptions(
    ops: list[tuple[object, ...]], lmtp: bool
) -> None:
    checker = Checker(lmtp)
    for op in ops:
        checker.step(op)
    # in TLS_HANDSHAKE the session, not the core, reads the socket: the end of the
    # connection reaches the core as a failed handshake
    checker.step(("handshake", False, b""))
    checker.step(("eof",))
    assert checker.closed == 1
    assert checker.conn.state is ClientState.CLOSED


def split_lines(data: bytes) -> list[bytes]:
    """The server's lines as the grammar sees them: CRLF or bare LF, then any tail."""
    parts = data.split(b"\n")
    found = [p[:-1] if p.endswith(b"\r") else p for p in parts[:-1]]
    return [*found, parts[-1]] if parts[-1] else found


def lines_in(events: list[Event]) -> list[bytes]:
    out: list[bytes] = []
    for event in events:
        if isinstance(event, Reply):
            out.extend(event.raw)
        elif isinstance(event, ProtocolError):
            if event.message.startswith("the connection ended in the middle of a reply"):
                out.extend(event.raw.split(b"\r\n"))
            else:
                out.append(event.raw)
    return out


small_chunks = st.one_of(
    st.sampled_from([f for f in FRAGMENTS if len(f) < 1000]), st.binary(max_size=40)
)
safe_lines = st.sampled_from([line for line in LINES if line != "STARTTLS"])


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(small_chunks, st.lists(safe_lines, max_size=2)), max_size=30),
    st.booleans(),
)
def test_nothing_received_is_lost(
    script: list[tuple[bytes, list[str]]], lost: bool
) -> None:
    """Every line received comes out in a Reply or a ProtocolError (no STARTTLS, and
    under the parser's limits, so no fatal error)."""
    conn = ClientConnection()
    received = b""
    events: list[Event] = []
    for chunk, sends in script:
        for line in sends:
            try:
                conn.send_line(line)
            except LineError:
                pass
        if chunk:  # (b"" means end of stream)
            conn.receive_data(chunk)
            received += chunk
        while (event := conn.next_event()) is not None:
            events.append(event)
    if lost:
        conn.connection_lost("reset")
    else:
        conn.receive_data(b"")
    while (event := conn.next_event()) is not None:
        events.append(event)
    assert not any(isinstance(e, ProtocolError) and e.fatal for e in events)
    # Every line is there (a malformed line inside a multi-line reply is reported at once,
    # before the reply it interrupts, so compare as multisets).
    assert sorted(lines_in(events)) == sorted(split_lines(received))
