"""STARTTLS response injection: bytes after the 220 are discarded and warned about."""

from __future__ import annotations

import asyncio
from pathlib import Path

import trustme

from smtpshell.protocol.events import Notice, Reply
from smtpshell.session import ConnectOptions, Session, SessionEvent
from smtpshell.tls import TlsOptions
from tests.hostile.servers import serve, server_context


def test_bytes_after_220_are_discarded_and_warned(tmp_path: Path) -> None:
    ca = trustme.CA()
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    ctx = server_context(ca)
    seen: list[SessionEvent] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 evil ESMTP\r\n")
        await reader.readline()  # EHLO
        writer.write(b"250-evil\r\n250 STARTTLS\r\n")
        await reader.readline()  # STARTTLS
        writer.write(b"220 go ahead\r\n250-INJECTED\r\n250 AUTH PLAIN\r\n")
        await writer.drain()
        await writer.start_tls(ctx)
        line = await reader.readline()
        assert line.startswith(b"EHLO")
        writer.write(b"250-evil over tls\r\n250 AUTH PLAIN\r\n")
        await reader.readline()
        writer.write(b"221 bye\r\n")
        await writer.drain()

    async def run() -> list[Reply]:
        async with serve(handler) as srv:
            session = Session(
                ConnectOptions(host=srv.host, port=srv.port, tls=TlsOptions(cafile=str(cafile)),
                               ehlo_name="t", reply_timeout=10),
                [seen.append],
            )
            await session.connect()
            await session.ehlo()
            [starttls] = await session.send("STARTTLS")
            assert starttls.code == 220 and session.is_tls
            ehlo = await session.ehlo()
            assert ehlo is not None and ehlo.lines[0] == "250-evil over tls"
            await session.send("QUIT")
            await session.close()
        return [e for e in seen if isinstance(e, Reply)]

    replies = asyncio.run(run())
    assert not any("INJECTED" in line for r in replies for line in r.lines)
    warnings = [e for e in seen if isinstance(e, Notice) and e.kind == "starttls-injection"]
    assert warnings and "DISCARDED" in warnings[0].message
