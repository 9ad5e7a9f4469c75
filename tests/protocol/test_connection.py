from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpshell.protocol.connection import ClientConnection, LineError
from smtpshell.protocol.events import Closed, Event, Notice, Reply, ReplyKind, StartTlsReady
from smtpshell.protocol.state import ClientState, Stage


def events(conn: ClientConnection) -> list[Event]:
    out = []
    while (e := conn.next_event()) is not None:
        out.append(e)
    return out


def greeted() -> ClientConnection:
    conn = ClientConnection()
    conn.receive_data(b"220 mx ESMTP\r\n")
    [greeting] = events(conn)
    assert isinstance(greeting, Reply) and greeting.kind is ReplyKind.GREETING
    return conn


def test_lines_go_out_with_crlf_byte_exact() -> None:
    conn = greeted()
    assert conn.send_line("RSET") == b"RSET\r\n"
    assert conn.send_line("QUIT please") == b"QUIT please\r\n"
    assert conn.send_line("R") == b"R\r\n"
    assert conn.send_line("  spaced  ") == b"  spaced  \r\n"


def test_cr_or_lf_inside_a_line_is_refused() -> None:
    conn = greeted()
    with pytest.raises(LineError):
        conn.send_line("RCPT TO:<a>\r\nDATA")


def test_replies_pair_with_pipelined_commands_in_order() -> None:
    conn = greeted()
    conn.send_line("MAIL FROM:<a@x>")
    conn.send_line("RCPT TO:<b@x>")
    conn.send_line("RCPT TO:<c@x>")
    conn.receive_data(b"250 ok\r\n250 ok\r\n550 5.1.1 no\r\n")
    replies = [e for e in events(conn) if isinstance(e, Reply)]
    assert [r.command for r in replies] == ["MAIL", "RCPT", "RCPT"]
    assert conn.stage is Stage.RCPT
    assert conn.accepted_recipients == 1


def test_data_mode_dot_stuffing_and_end() -> None:
    conn = greeted()
    conn.send_line("DATA")
    conn.receive_data(b"354 go\r\n")
    events(conn)
    assert conn.state is ClientState.DATA
    assert conn.send_line("Subject: x") == b"Subject: x\r\n"
    assert conn.send_line(".hidden") == b"..hidden\r\n"
    notices = [e for e in events(conn) if isinstance(e, Notice)]
    assert [n.kind for n in notices] == ["dot-stuffed"]
    assert conn.send_line(".again") == b"..again\r\n"
    assert events(conn) == []  # said once
    assert conn.send_line(".raw", dot_stuff=False) == b".raw\r\n"
    assert conn.pending == ()
    assert conn.send_line(".") == b".\r\n"
    assert conn.pending == (".",)
    conn.receive_data(b"250 queued\r\n")
    [reply] = events(conn)
    assert isinstance(reply, Reply) and reply.command == "."


def test_lmtp_expects_one_reply_per_accepted_recipient() -> None:
    conn = ClientConnection(lmtp=True)
    conn.receive_data(b"220 lmtp\r\n")
    conn.send_line("MAIL FROM:<a@x>")
    conn.send_line("RCPT TO:<b@x>")
    conn.send_line("RCPT TO:<c@x>")
    conn.send_line("RCPT TO:<d@x>")
    conn.receive_data(b"250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n")
    conn.send_line("DATA")
    conn.receive_data(b"354 go\r\n")
    conn.send_line("hi")
    conn.send_line(".")
    assert conn.pending == (".", ".")


def test_starttls_220_discards_injected_bytes_and_warns() -> None:
    conn = greeted()
    conn.send_line("EHLO me")
    conn.receive_data(b"250-mx\r\n250 STARTTLS\r\n")
    events(conn)
    conn.send_line("STARTTLS")
    conn.receive_data(b"220 go ahead\r\n250 injected\r\n")
    evs = events(conn)
    ready = [e for e in evs if isinstance(e, StartTlsReady)]
    assert ready and ready[0].injected == b"250 injected\r\n"
    warnings = [e for e in evs if isinstance(e, Notice) and e.kind == "starttls-injection"]
    assert warnings and warnings[0].warning
    replies = [e for e in evs if isinstance(e, Reply)]
    assert [r.code for r in replies] == [220]  # the injected 250 is not a reply
    assert conn.state is ClientState.TLS_HANDSHAKE
    conn.tls_started()
    assert conn.tls and conn.capabilities is None and conn.state is ClientState.READY


def test_starttls_not_advertised_but_accepted_warns() -> None:
    conn = greeted()
    conn.send_line("EHLO me")
    conn.receive_data(b"250 mx\r\n")
    events(conn)
    conn.send_line("STARTTLS")
    conn.receive_data(b"220 ok\r\n")
    kinds = [e.kind for e in events(conn) if isinstance(e, Notice)]
    assert "starttls-not-advertised" in kinds


def test_starttls_refused_changes_nothing() -> None:
    conn = greeted()
    conn.send_line("STARTTLS")
    conn.receive_data(b"454 4.7.0 TLS not available\r\n")
    evs = events(conn)
    assert not any(isinstance(e, StartTlsReady) for e in evs)
    assert conn.state is ClientState.READY and not conn.tls


def test_auth_in_clear_warns_and_auth_state() -> None:
    conn = greeted()
    conn.send_line("AUTH LOGIN")
    assert any(isinstance(e, Notice) and e.kind == "auth-in-clear" for e in events(conn))
    conn.receive_data(b"334 VXNlcm5hbWU6\r\n")
    events(conn)
    assert conn.state is ClientState.AUTH
    conn.send_line("dXNlcg==")
    conn.receive_data(b"334 UGFzc3dvcmQ6\r\n")
    conn.send_line("cGFzcw==")
    conn.receive_data(b"235 2.7.0 ok\r\n")
    evs = events(conn)
    assert [r.code for r in evs if isinstance(r, Reply)] == [334, 235]
    assert conn.authenticated and conn.state is ClientState.READY


def test_unsolicited_reply_and_close() -> None:
    conn = greeted()
    conn.receive_data(b"421 4.4.2 idle too long\r\n")
    [reply, notice] = events(conn)
    assert isinstance(reply, Reply) and reply.kind is ReplyKind.UNSOLICITED
    assert isinstance(notice, Notice) and notice.kind == "closing"
    conn.send_line("NOOP")
    conn.receive_data(b"")
    [closed] = events(conn)
    assert isinstance(closed, Closed) and closed.unexpected and closed.pending == ("NOOP",)
    with pytest.raises(LineError):
        conn.send_line("NOOP")


# ---- the one state table: BDAT, raw bytes, AUTH user, resets, snapshot ---------------


def in_transaction(conn: ClientConnection | None = None) -> ClientConnection:
    conn = conn or greeted()
    conn.send_line("MAIL FROM:<a@x>")
    conn.send_line("RCPT TO:<b@x>")
    conn.receive_data(b"250 ok\r\n250 ok\r\n")
    events(conn)
    assert conn.stage is Stage.RCPT
    return conn


def test_bdat_chunks_move_the_stage_and_last_ends_the_transaction() -> None:
    conn = in_transaction()
    data = conn.send_bdat(b"Subject: x\r\n\r\nBDAT 3\r\nQUIT\r\n", last=False)
    assert data == b"BDAT 28\r\nSubject: x\r\n\r\nBDAT 3\r\nQUIT\r\n"
    assert conn.pending == ("BDAT",)  # the chunk's octets are data, never commands
    conn.receive_data(b"250 2.0.0 28 octets\r\n")
    [reply] = events(conn)
    assert isinstance(reply, Reply) and reply.command == "BDAT"
    assert conn.stage is Stage.BDAT
    conn.send_bdat(b"body\r\n", last=True)
    conn.receive_data(b"250 2.0.0 queued\r\n")
    events(conn)
    assert conn.stage is Stage.NONE and conn.accepted_recipients == 0


def test_a_refused_bdat_chunk_leaves_the_transaction_for_rset() -> None:
    conn = in_transaction()
    conn.send_bdat(b"x", last=True)
    conn.receive_data(b"552 too big\r\n")
    events(conn)
    assert conn.stage is Stage.RCPT  # RFC 3030: the client sends RSET
    conn.send_line("RSET")
    conn.receive_data(b"250 ok\r\n")
    events(conn)
    assert conn.stage is Stage.NONE


def test_a_bdat_typed_by_hand_in_raw_bytes_is_followed_too() -> None:
    conn = in_transaction()
    conn.send_raw(b"BDAT 6 LAST\r\nRSET\r\n")
    assert conn.pending == ("BDAT",) and not conn.line_open
    conn.receive_data(b"250 queued\r\n")
    events(conn)
    assert conn.stage is Stage.NONE


def test_raw_bytes_in_data_mode_end_the_message_where_the_server_sees_the_end() -> None:
    conn = in_transaction()
    conn.send_line("DATA")
    conn.receive_data(b"354 go\r\n")
    events(conn)
    conn.send_raw(b"Subject: x\r\n\r\nbody\r")
    assert conn.state is ClientState.DATA and conn.line_open
    conn.send_raw(b"\n.")
    assert conn.state is ClientState.DATA and conn.line_open
    conn.send_raw(b"\r\nNOOP\r\n")  # the end of the message, then a command
    assert conn.state is ClientState.READY and conn.pending == (".", "NOOP")
    assert conn.stage is Stage.NONE and not conn.line_open


def test_a_message_may_end_at_once_and_raw_command_lines_each_wait_for_a_reply() -> None:
    conn = in_transaction()
    conn.send_line("DATA")
    conn.receive_data(b"354 go\r\n")
    events(conn)
    conn.send_raw(b".\r\n")
    assert conn.state is ClientState.READY and conn.pending == (".",)
    conn.receive_data(b"250 ok\r\n")
    events(conn)
    conn.send_raw(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT")
    assert conn.pending == ("MAIL", "RCPT") and conn.line_open
    conn.send_line(" TO:<c@x>")  # finishes the line raw mode left open
    assert conn.pending == ("MAIL", "RCPT", "RCPT") and not conn.line_open


def test_a_dot_typed_after_a_line_left_open_does_not_end_the_message() -> None:
    conn = in_transaction()
    conn.send_line("DATA")
    conn.receive_data(b"354 go\r\n")
    events(conn)
    conn.send_raw(b"half a line")
    assert conn.send_line(".") == b".\r\n"
    [notice] = events(conn)
    assert isinstance(notice, Notice) and "does not end the message" in notice.message
    assert conn.state is ClientState.DATA and conn.pending == ()
    conn.send_line(".")
    assert conn.state is ClientState.READY and conn.pending == (".",)


def test_the_user_who_authenticated_comes_from_the_exchange() -> None:
    conn = greeted()
    conn.send_line("AUTH PLAIN AGFsaWNlAHM=", user="alice")
    conn.receive_data(b"535 no\r\n")
    events(conn)
    assert not conn.authenticated and conn.auth_user is None
    conn.send_line("AUTH LOGIN")
    conn.receive_data(b"334 VXNlcm5hbWU6\r\n")
    conn.send_line("Ym9i", user="bob")
    conn.receive_data(b"334 UGFzc3dvcmQ6\r\n")
    conn.send_line("cw==")
    conn.receive_data(b"235 ok\r\n")
    events(conn)
    assert conn.authenticated and conn.auth_user == "bob"
    snap = conn.snapshot()
    assert (snap.mode, snap.stage, snap.auth_user) == (ClientState.READY, Stage.NONE, "bob")
    conn.send_line("STARTTLS")
    conn.receive_data(b"220 go\r\n")
    events(conn)
    conn.tls_started()
    assert not conn.authenticated and conn.auth_user is None  # RFC 3207 §4.2


def test_nothing_outside_writes_the_state() -> None:
    conn = greeted()
    for name in ("state", "stage", "tls", "capabilities", "authenticated", "auth_user",
                 "accepted_recipients"):
        with pytest.raises(AttributeError):
            setattr(conn, name, None)


def test_ehlo_helo_lhlo_and_rset_reset_the_transaction() -> None:
    for verb in ("EHLO me", "HELO me", "LHLO me", "RSET"):
        conn = in_transaction()
        conn.send_line(verb)
        conn.receive_data(b"250 ok\r\n")
        events(conn)
        assert conn.stage is Stage.NONE and conn.accepted_recipients == 0
        assert (conn.capabilities is not None) == (verb != "RSET")


def test_replies_say_whether_they_came_over_tls() -> None:
    conn = greeted()
    conn.send_line("STARTTLS")
    conn.receive_data(b"220 go\r\n")
    [starttls] = [e for e in events(conn) if isinstance(e, Reply)]
    assert not starttls.tls
    conn.tls_started()
    conn.send_line("EHLO me")
    conn.receive_data(b"250 mx\r\n")
    [ehlo] = events(conn)
    assert isinstance(ehlo, Reply) and ehlo.tls


def test_nothing_is_sent_during_the_tls_handshake() -> None:
    conn = greeted()
    conn.send_line("STARTTLS")
    conn.receive_data(b"220 go\r\n")
    events(conn)
    for send in (lambda: conn.send_line("AUTH PLAIN x"), lambda: conn.send_raw(b"x\r\n"),
                 lambda: conn.send_bdat(b"x", last=True)):
        with pytest.raises(LineError, match="TLS handshake is in progress"):
            send()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"\r", b"\n", b".", b"\r\n", b"x", b".\r\n", b"\r\n.\r\n"]),
                max_size=12),
       st.lists(st.integers(min_value=0, max_value=40), max_size=6))
def test_the_end_of_a_message_is_found_however_the_bytes_are_split(
    pieces: list[bytes], cuts: list[int]
) -> None:
    """Raw message bytes in any split end DATA exactly where CRLF "." CRLF first appears
    (the message starts at the start of a line), as the server reads them."""
    data = b"".join(pieces)
    conn = in_transaction()
    conn.send_line("DATA")
    conn.receive_data(b"354 go\r\n")
    events(conn)
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for start, end in itertools.pairwise(bounds):
        if conn.state is not ClientState.DATA:
            break
        conn.send_raw(data[start:end])
    found = (b"\r\n" + data).find(b"\r\n.\r\n")
    if found < 0:
        assert conn.state is ClientState.DATA and conn.pending == ()
    else:
        assert conn.state is ClientState.READY and conn.pending[:1] == (".",)
