"""Sessions: against the real sandbox (plain, STARTTLS, implicit TLS, certificate
failures), on a MockStream (the session's own logic), and interrupted against a real
server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from smtpshell.protocol.events import Closed, Notice, Reply
from smtpshell.protocol.state import Stage
from smtpshell.sandbox import Sandbox
from smtpshell.session import (
    INTERRUPTED_SENDING,
    ConnectOptions,
    ObserverFailed,
    Session,
    SessionError,
    SessionEvent,
    TlsEstablished,
)
from smtpshell.tls import TlsOptions
from smtpshell.transport import MockStream
from smtpshell.ui.render import Renderer
from tests.helpers import sandbox_options
from tests.hostile.servers import serve_in_thread


def test_plain_then_starttls_then_mail(sandbox: Sandbox) -> None:
    seen: list[SessionEvent] = []

    async def run() -> None:
        session = Session(sandbox_options(sandbox), [seen.append])
        greeting = await session.connect()
        assert greeting.code == 220
        ehlo = await session.ehlo()
        assert ehlo is not None and session.capabilities is not None
        assert "STARTTLS" in session.capabilities
        assert not session.is_tls
        [reply] = await session.send("STARTTLS")
        assert reply.code == 220
        assert session.is_tls and session.tls_report is not None
        assert session.tls_report.verified
        assert session.capabilities is None  # forgotten after TLS (RFC 3207)
        await session.ehlo()
        assert "AUTH" in session.capabilities  # type: ignore[operator]
        for line in ["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>"]:
            [r] = await session.send(line)
            assert r.code == 250
        [r] = await session.send("DATA")
        assert r.code == 354
        assert await session.send("Subject: hi") == []
        assert await session.send("") == []
        assert await session.send(".leading dot") == []
        [r] = await session.send(".")
        assert r.code == 250
        [r] = await session.send("QUIT")
        assert r.code == 221
        await session.close()

    asyncio.run(run())
    assert any(isinstance(e, TlsEstablished) for e in seen)
    [message] = sandbox.messages()
    assert b"\n.leading dot" in message.replace(b"\r\n", b"\n")


def test_implicit_tls(sandbox: Sandbox) -> None:
    async def run() -> Reply:
        assert sandbox.tls_port is not None
        session = Session(sandbox_options(sandbox, port=sandbox.tls_port, tls_mode="implicit"))
        greeting = await session.connect()
        assert session.is_tls
        await session.send("QUIT")
        await session.close()
        return greeting

    assert asyncio.run(run()).code == 220


def test_untrusted_certificate_is_refused_with_a_reason(sandbox: Sandbox, tmp_path: Path) -> None:
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))

    async def run() -> str:
        assert sandbox.tls_port is not None
        session = Session(
            sandbox_options(sandbox, port=sandbox.tls_port, tls_mode="implicit",
                    tls=TlsOptions(cafile=str(other)))
        )
        try:
            await session.connect()
        except SessionError as exc:
            assert exc.stage == "tls"
            return exc.message
        raise AssertionError("connected with an untrusted certificate")

    message = asyncio.run(run())
    assert "\n" not in message
    assert message.startswith("unknown CA: 127.0.0.1's certificate is issued by ")
    assert f"not in CA file {other}" in message


def test_failed_starttls_handshake_closes_cleanly(sandbox: Sandbox, tmp_path: Path) -> None:
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    seen: list[SessionEvent] = []

    async def run() -> None:
        opts = sandbox_options(sandbox, tls=TlsOptions(cafile=str(other)))
        session = Session(opts, [seen.append])
        await session.connect()
        await session.ehlo()
        await session.send("STARTTLS")
        assert not session.connected
        assert session.closed_reason and "TLS" in session.closed_reason
        await session.close()

    asyncio.run(run())


def test_insecure_reports_not_verified(sandbox: Sandbox) -> None:
    async def run() -> None:
        session = Session(sandbox_options(sandbox, tls=TlsOptions(insecure=True)))
        await session.connect()
        await session.send("STARTTLS")
        assert session.tls_report is not None
        assert not session.tls_report.verified
        assert "insecure" in session.tls_report.verification.lower()
        await session.close()

    asyncio.run(run())


def test_auth_in_clear_is_warned() -> None:
    seen: list[SessionEvent] = []
    stream = MockStream([b"220 mock\r\n", b"250-mock\r\n250 AUTH LOGIN\r\n",
                         b"334 VXNlcm5hbWU6\r\n"])

    async def run() -> None:
        session = Session(ConnectOptions(ehlo_name="me"), [seen.append], opener=stream.opener())
        await session.connect()
        await session.ehlo()
        await session.send("AUTH LOGIN")
        await session.close()

    asyncio.run(run())
    assert any(isinstance(e, Notice) and e.kind == "auth-in-clear" for e in seen)


def test_a_failing_observer_does_not_end_the_session(capsys: pytest.CaptureFixture[str]) -> None:
    """An observer that raises (a bug, a full disk) is reported as an event the screen
    prints, not on stderr; the replies still reach the other observers and the session
    goes on."""
    seen: list[SessionEvent] = []
    out = io.StringIO()
    stream = MockStream([b"220 mock\r\n", b"250 ok\r\n", b"221 bye\r\n"])

    def broken(event: SessionEvent) -> None:
        if isinstance(event, Reply):
            raise RuntimeError("observer bug")

    async def run() -> None:
        session = Session(ConnectOptions(), [broken, seen.append, Renderer(out)],
                          opener=stream.opener())
        assert (await session.connect()).code == 220
        [reply] = await session.send("NOOP")
        assert reply.code == 250
        [reply] = await session.send("QUIT")
        assert reply.code == 221
        await session.close()

    asyncio.run(run())
    codes = [e.code for e in seen if isinstance(e, Reply)]
    assert codes == [220, 250, 221]
    failures = [e for e in seen if isinstance(e, ObserverFailed)]
    assert len(failures) == 3
    assert failures[0].message == (
        "internal error in test_a_failing_observer_does_not_end_the_session.<locals>.broken "
        "while handling Reply: RuntimeError: observer bug")
    assert out.getvalue().count("x internal error in ") == 3
    assert capsys.readouterr().err == ""
    assert stream.written == b"NOOP\r\nQUIT\r\n"


# ---- on a MockStream: the session's logic without a server ---------------------------

GREETING = b"220 mock ESMTP\r\n"
EHLO_REPLY = b"250-mock\r\n250-CHUNKING\r\n250-PIPELINING\r\n250 STARTTLS\r\n"


def mock_session(stream: MockStream, seen: list[SessionEvent] | None = None) -> Session:
    observers = [] if seen is None else [seen.append]
    return Session(ConnectOptions(ehlo_name="me"), observers, opener=stream.opener())


def test_starttls_on_a_mock_stream_and_the_snapshot() -> None:
    report = SimpleNamespace(version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256")
    stream = MockStream([GREETING, EHLO_REPLY, b"220 go ahead\r\n",
                         b"250-mock\r\n250 AUTH PLAIN\r\n", b"235 2.7.0 ok\r\n", b"221 bye\r\n"],
                        tls_report=report)
    seen: list[SessionEvent] = []

    async def run() -> None:
        session = mock_session(stream, seen)
        await session.connect()
        await session.ehlo()
        before = session.snapshot()
        assert (before.connected, before.tls, before.tls_summary) == (True, False, None)
        assert before.capabilities is not None and "CHUNKING" in before.capabilities
        assert (await session.starttls()) is not None and session.is_tls
        after = session.snapshot()
        assert after.tls and after.tls_summary == "TLSv1.3 TLS_AES_128_GCM_SHA256"
        assert after.capabilities is None  # RFC 3207 §4.2
        await session.ehlo()
        [reply] = await session.send("AUTH PLAIN AGFsaWNlAHMzY3JldA==")
        assert reply.code == 235 and reply.tls
        assert session.snapshot().auth_user == "alice"  # from the typed exchange
        await session.send("QUIT")
        await session.close()
        closed = session.snapshot()
        assert not closed.connected and closed.closed_reason == "closed by the client"

    asyncio.run(run())
    assert stream.written.startswith(b"EHLO me\r\nSTARTTLS\r\nEHLO me\r\nAUTH PLAIN ")
    assert stream.started_tls is not None
    assert [e.report for e in seen if isinstance(e, TlsEstablished)] == [report]
    assert [r.tls for r in seen if isinstance(r, Reply)] == [False, False, False, True, True, True]


def test_bdat_and_raw_lines_on_a_mock_stream() -> None:
    stream = MockStream([GREETING, EHLO_REPLY, b"250 ok\r\n250 ok\r\n", b"250 chunk\r\n",
                         b"250 queued\r\n"])

    async def run() -> None:
        session = mock_session(stream)
        await session.connect()
        await session.ehlo()
        replies = await session.send_raw(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\n")
        assert [r.command for r in replies] == ["MAIL", "RCPT"]  # one reply per line
        [chunk] = await session.send_bdat(b"Subject: x\r\n", last=False, shown="BDAT 12")
        assert chunk.command == "BDAT" and session.stage is Stage.BDAT
        [last] = await session.send_bdat(b"\r\nhi\r\n", last=True, shown="BDAT 6 LAST")
        assert last.code == 250 and session.stage is Stage.NONE
        await session.close()

    asyncio.run(run())
    assert stream.writes[-2:] == [b"BDAT 12\r\nSubject: x\r\n", b"BDAT 6 LAST\r\n\r\nhi\r\n"]


def test_the_session_speaks_no_shell_commands() -> None:
    seen: list[SessionEvent] = []

    async def run() -> None:
        session = mock_session(MockStream([GREETING]), seen)
        assert await session.send("NOOP") == []  # never connected

    asyncio.run(run())
    [notice] = [e for e in seen if isinstance(e, Notice)]
    assert notice.kind == "not-connected" and notice.message == "not connected"


# ---- interrupts against a real server on 127.0.0.1 -------------------------------------


def test_an_interrupted_bdat_chunk_closes_the_connection() -> None:
    """Cancelling the wait for a BDAT chunk's reply (Ctrl-C in /bdat) leaves a half-sent
    message that cannot be finished: the session closes the connection and says why."""
    chunk_arrived = threading.Event()
    got: dict[str, bytes] = {}

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(GREETING)
        await writer.drain()
        while line := await reader.readline():
            if line.startswith(b"BDAT"):
                await reader.readexactly(int(line.split()[1]))
                chunk_arrived.set()  # and no reply: the client waits
                got["after"] = await reader.read()  # what comes next, until EOF
                return
            writer.write(b"250 ok\r\n")
            await writer.drain()

    seen: list[SessionEvent] = []

    async def run(port: int) -> None:
        session = Session(ConnectOptions(port=port, ehlo_name="me"), [seen.append])
        await session.connect()
        await session.send_lines(["MAIL FROM:<a@x>", "RCPT TO:<b@x>"])
        task = asyncio.create_task(session.send_bdat(b"x" * 100, last=False, shown="BDAT 100"))
        await asyncio.get_running_loop().run_in_executor(None, chunk_arrived.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not session.connected
        assert session.snapshot().closed_reason == INTERRUPTED_SENDING
        assert await session.send("RSET") == []
        await session.close()

    with serve_in_thread(server) as srv:
        asyncio.run(run(srv.port))
    assert got == {"after": b""}  # the connection ended; nothing more was sent
    [closed] = [e for e in seen if isinstance(e, Closed)]
    assert closed.reason == INTERRUPTED_SENDING and not closed.unexpected
