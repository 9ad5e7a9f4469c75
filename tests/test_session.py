"""Sessions against the real sandbox: plain, STARTTLS, implicit TLS, certificate failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smtpshell.protocol.events import Notice, Reply
from smtpshell.sandbox import Sandbox
from smtpshell.session import Session, SessionError, SessionEvent, TlsEstablished
from smtpshell.tls import TlsOptions
from tests.helpers import sandbox_options


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
    assert "CA" in message or "issuer" in message


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


def test_auth_in_clear_is_warned(sandbox: Sandbox) -> None:
    seen: list[SessionEvent] = []

    async def run() -> None:
        session = Session(sandbox_options(sandbox), [seen.append])
        await session.connect()
        await session.ehlo()
        await session.send("AUTH LOGIN")
        await session.close()

    asyncio.run(run())
    assert any(isinstance(e, Notice) and e.kind == "auth-in-clear" for e in seen)


def test_a_failing_observer_does_not_end_the_session(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """An observer that raises (a bug, a full disk) gets a one-line error on stderr; the
    replies still reach the other observers and the session goes on."""
    seen: list[SessionEvent] = []

    def broken(event: SessionEvent) -> None:
        raise RuntimeError("observer bug")

    async def run() -> None:
        session = Session(sandbox_options(sandbox), [broken, seen.append])
        assert (await session.connect()).code == 220
        [reply] = await session.send("NOOP")
        assert reply.code == 250
        [reply] = await session.send("QUIT")
        assert reply.code == 221
        await session.close()

    asyncio.run(run())
    codes = [e.code for e in seen if isinstance(e, Reply)]
    assert codes == [220, 250, 221]
    err = capsys.readouterr().err
    assert "smtpshell: internal error in test_a_failing_observer_does_not_end_the_session." \
           "<locals>.broken while handling Reply: RuntimeError: observer bug" in err
    assert all(line.startswith("smtpshell: internal error") for line in err.splitlines())
