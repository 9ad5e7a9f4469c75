"""TLS that goes wrong: STARTTLS answered by plaintext, silence or a close; bad certificates.

Every failure is one line in words, nothing received in plaintext after the 220 is
ever shown as a reply, and the shell is usable afterwards (/reconnect).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtpshell.status import ExitStatus
from tests.hostile.more_servers import (
    Certs,
    Reader,
    Writer,
    errors,
    hostile,
    make_certs,
    polite,
    shell,
    until_eof,
)
from tests.hostile.servers import Handler


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Certs]:
    yield make_certs(tmp_path_factory.mktemp("certs"))


async def up_to_starttls(reader: Reader, writer: Writer) -> None:
    """Greet, offer STARTTLS, answer 220 to it."""
    writer.write(b"220 tls-test ESMTP\r\n")
    while line := await reader.readline():
        verb = line.split(b" ", 1)[0].strip().upper()
        if verb == b"EHLO":
            writer.write(b"250-tls-test\r\n250 STARTTLS\r\n")
        elif verb == b"STARTTLS":
            writer.write(b"220 2.0.0 go ahead\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"250 ok\r\n")
        await writer.drain()
    raise ConnectionResetError("the client left before STARTTLS")


async def client_hello(reader: Reader) -> bytes:
    """Wait for the first bytes of the client's TLS handshake (a handshake record, 0x16)."""
    first = await reader.read(5)
    assert first[:1] == b"\x16", first
    return first


def starttls_session(handler: Handler) -> tuple[str, bool]:
    """EHLO, STARTTLS against ``handler``; then NOOP and /reconnect to a polite server."""

    async def main() -> tuple[str, bool]:
        async with hostile(handler, polite) as srv:
            async with shell(srv.port, connect_timeout=0.5) as sh:
                await sh.type("EHLO me", "STARTTLS")
                tls_after = sh.core.session.is_tls
                await sh.type("NOOP", "/reconnect", "NOOP")
                assert sh.core.session.connected
        return sh.output, tls_after

    output, tls_after = asyncio.run(main())
    assert not tls_after
    assert "Traceback" not in output
    lines = output.splitlines()
    assert "* not connected (use /reconnect)" in lines
    assert lines[-2:] == ["> NOOP", "< 250 2.0.0 ok"]  # /reconnect reached the polite server
    return output, tls_after


# ---- STARTTLS answered with 220, then no TLS ---------------------------------------------


def test_injection_arriving_after_the_handshake_started_is_never_a_reply() -> None:
    """Plaintext "replies" sent once the client's handshake is under way (a later segment)."""

    async def injector(reader: Reader, writer: Writer) -> None:
        await up_to_starttls(reader, writer)
        await client_hello(reader)  # deterministic: the client has read the 220 and moved on
        writer.write(b"250-injected.example\r\n250 AUTH PLAIN\r\n")
        await writer.drain()
        await until_eof(reader)

    output, _ = starttls_session(injector)
    assert "injected" not in output
    assert errors(output)[:2] == [
        "x TLS failed: 127.0.0.1 did not answer in TLS (wrong version number): a plaintext "
        "port, or a server that said 220 to STARTTLS and then did not start TLS",
        "x the TLS handshake failed, so the connection is closed",
    ]


def test_220_then_the_server_speaks_plaintext() -> None:
    async def no_tls(reader: Reader, writer: Writer) -> None:
        await up_to_starttls(reader, writer)
        await client_hello(reader)
        writer.write(b"500 5.5.2 command not recognized\r\n")  # it took the hello for a command
        await writer.drain()
        await until_eof(reader)

    output, _ = starttls_session(no_tls)
    assert "500 5.5.2" not in output
    assert errors(output)[0].startswith("x TLS failed: 127.0.0.1 did not answer in TLS")


def test_220_then_the_server_closes() -> None:
    async def closer(reader: Reader, writer: Writer) -> None:
        await up_to_starttls(reader, writer)

    output, _ = starttls_session(closer)
    assert errors(output)[:2] == [
        "x TLS failed: 127.0.0.1 closed the connection during the TLS handshake",
        "x the TLS handshake failed, so the connection is closed",
    ]


def test_220_then_silence_times_out() -> None:
    async def silent(reader: Reader, writer: Writer) -> None:
        await up_to_starttls(reader, writer)
        await until_eof(reader)

    output, _ = starttls_session(silent)
    assert errors(output)[:2] == [
        "x TLS failed: TLS handshake with 127.0.0.1 timed out: the server did not answer",
        "x the TLS handshake failed, so the connection is closed",
    ]


# ---- certificates ------------------------------------------------------------------------

PROBLEMS = {
    "untrusted": "unknown CA: the issuer of 127.0.0.1's certificate is not in",
    "expired": "certificate EXPIRED: 127.0.0.1's certificate is no longer valid",
    "wrong_host": "host name mismatch: the certificate is not valid for '127.0.0.1'",
    "self_signed": "self-signed certificate: 127.0.0.1 presented a certificate no CA signed",
}


def tls_polite(ctx: ssl.SSLContext) -> Handler:
    async def handler(reader: Reader, writer: Writer) -> None:
        await writer.start_tls(ctx)
        await polite(reader, writer)

    return handler


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_bad_certificate_with_starttls(certs: Certs, problem: str) -> None:
    ctx: ssl.SSLContext = getattr(certs, problem)

    async def bad_cert(reader: Reader, writer: Writer) -> None:
        await up_to_starttls(reader, writer)
        await writer.start_tls(ctx)  # the client refuses the certificate: ssl.SSLError here

    async def main() -> str:
        async with hostile(bad_cert, polite) as srv:
            async with shell(srv.port, cafile=certs.cafile) as sh:
                await sh.type("EHLO me", "STARTTLS")
                assert not sh.core.session.connected and not sh.core.session.is_tls
                await sh.type("NOOP", "/reconnect", "NOOP")
        return sh.output

    output = asyncio.run(main())
    found = errors(output)
    assert len(found) == 2, output
    assert found[0].startswith(f"x TLS failed: {PROBLEMS[problem]}")
    assert found[1] == "x the TLS handshake failed, so the connection is closed"
    assert output.splitlines()[-1] == "< 250 2.0.0 ok"


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_bad_certificate_with_implicit_tls(certs: Certs, problem: str) -> None:
    ctx: ssl.SSLContext = getattr(certs, problem)

    async def bad_cert(reader: Reader, writer: Writer) -> None:
        await writer.start_tls(ctx)

    async def main() -> tuple[str, ExitStatus]:
        async with hostile(bad_cert, tls_polite(certs.good)) as srv:
            async with shell(srv.port, cafile=certs.cafile, tls_mode="implicit") as sh:
                status = sh.connect_status
                await sh.type("NOOP", "/reconnect", "NOOP")
                assert sh.core.session.is_tls
        return sh.output, status

    output, status = asyncio.run(main())
    assert status is ExitStatus.TLS
    [found] = errors(output)
    assert found.startswith(f"x {PROBLEMS[problem]}")
    assert output.splitlines()[1] == "* not connected (use /reconnect)"
    assert output.splitlines()[-1] == "<~ 250 2.0.0 ok"


def test_good_certificate_control(certs: Certs, tmp_path: Path) -> None:
    """The same servers with a good certificate: the failures above are the certificates'."""

    async def good(reader: Reader, writer: Writer) -> None:
        await up_to_starttls(reader, writer)
        await writer.start_tls(certs.good)
        # No second greeting: after the handshake the session is in the state that follows
        # the 220 (RFC 3207 §4.2), so the server only answers what the client sends.
        while await reader.readline():
            writer.write(b"250 2.0.0 ok\r\n")
            await writer.drain()

    async def main() -> str:
        async with hostile(good) as srv:
            async with shell(srv.port, cafile=certs.cafile) as sh:
                await sh.type("EHLO me", "STARTTLS", "NOOP")
                assert sh.core.session.is_tls
        return sh.output

    output = asyncio.run(main())
    assert errors(output) == []
    assert "* TLS established (STARTTLS)" in output
    assert output.splitlines()[-2:] == ["~> NOOP", "<~ 250 2.0.0 ok"]  # answered over TLS
