"""TLS that goes wrong: STARTTLS answered by plaintext, silence or a close; bad certificates.

Every failure is one line in words, nothing received in plaintext after the 220 is
ever shown as a reply, and the shell is usable afterwards (/reconnect).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from smtpshell.status import ExitStatus
from smtpshell.tls import fingerprint
from tests.helpers import write_self_signed
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


@dataclass(frozen=True)
class Bad:
    """A server context with a certificate problem, and that certificate's fingerprint."""

    ctx: ssl.SSLContext
    sha256: str


@pytest.fixture(scope="module")
def bad(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Bad]:
    """Each problem of PROBLEMS, with the DER of the certificate, so tests can check the
    fingerprint the shell prints (the handshake fails before ``ssl`` hands it over)."""
    ca, other = trustme.CA(), trustme.CA()
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    leaves = {
        "untrusted": other.issue_cert("127.0.0.1", "localhost"),
        "expired": ca.issue_cert("127.0.0.1", not_before=past,
                                 not_after=past + dt.timedelta(days=30)),
        "wrong_host": ca.issue_cert("mail.example.test"),
    }
    found: dict[str, Bad] = {}
    for problem, leaf in leaves.items():
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(ctx)
        der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
        found[problem] = Bad(ctx, fingerprint(der))
    certfile, keyfile, der = write_self_signed(tmp_path_factory.mktemp("self"), "127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certfile), str(keyfile))
    found["self_signed"] = Bad(ctx, fingerprint(der))
    cafile = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    found["cafile"] = Bad(ssl.create_default_context(), str(cafile))  # its path, in sha256
    return found


PROBLEMS = {
    "untrusted": "unknown CA: 127.0.0.1's certificate is issued by OU=Testing CA #",
    "expired": "certificate EXPIRED on 2020-01-31 00:00 UTC: 127.0.0.1's certificate is no"
               " longer valid",
    "wrong_host": "host name mismatch: the certificate is not valid for '127.0.0.1'; it is for:"
                  " mail.example.test",
    "self_signed": "self-signed certificate: 127.0.0.1 presented a certificate no CA signed",
}


def advice(sha256: str, problem: str) -> list[str]:
    """What the shell prints after a refused certificate: fingerprint, ways forward, and
    how to go on without restarting."""
    trust = (
        "use a name it holds: --sni NAME (or that name as the host)"
        if problem == "wrong_host"
        else "trust its issuer: --cafile FILE or --capath DIR with the CA certificate"
    )
    return [
        f"  certificate SHA-256 {sha256}",
        f"  ways forward: {trust}",
        f"                trust this very certificate: --pin {sha256}",
        "                look without checking: -k (--insecure); nothing is then verified",
        f"  in this shell: /reconnect --pin {sha256}",
        "             or: /reconnect --insecure",
    ]


def tls_polite(ctx: ssl.SSLContext) -> Handler:
    async def handler(reader: Reader, writer: Writer) -> None:
        await writer.start_tls(ctx)
        await polite(reader, writer)

    return handler


async def answer(reader: Reader, writer: Writer) -> None:
    """After STARTTLS: no second greeting (RFC 3207), a reply to each command."""
    while line := await reader.readline():
        verb = line.split(b" ", 1)[0].strip().upper()
        if verb == b"QUIT":
            writer.write(b"221 2.0.0 bye\r\n")
            await writer.drain()
            return
        writer.write(b"250-polite\r\n250 PIPELINING\r\n" if verb == b"EHLO"
                     else b"250 2.0.0 ok\r\n")
        await writer.drain()


def starttls_polite(ctx: ssl.SSLContext) -> Handler:
    async def handler(reader: Reader, writer: Writer) -> None:
        await up_to_starttls(reader, writer)
        await writer.start_tls(ctx)
        await answer(reader, writer)

    return handler


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_bad_certificate_with_starttls(bad: dict[str, Bad], problem: str) -> None:
    """The failure in words, the fingerprint and the ways forward; /tls then says the
    connection is closed (not "type STARTTLS"); /reconnect --pin goes on in this shell."""
    ctx, sha256 = bad[problem].ctx, bad[problem].sha256

    async def bad_cert(reader: Reader, writer: Writer) -> None:
        await up_to_starttls(reader, writer)
        await writer.start_tls(ctx)  # the client refuses the certificate: ssl.SSLError here

    async def main() -> str:
        async with hostile(bad_cert, starttls_polite(ctx)) as srv:
            async with shell(srv.port, cafile=bad["cafile"].sha256) as sh:
                await sh.type("EHLO me", "STARTTLS")
                assert not sh.core.session.connected and not sh.core.session.is_tls
                await sh.type("/tls", "NOOP", f"/reconnect --pin {sha256.lower()}",
                              "EHLO me", "STARTTLS", "NOOP")
                assert sh.core.session.is_tls
        return sh.output

    output = asyncio.run(main())
    lines = output.splitlines()
    found = errors(output)
    assert len(found) == 2, output
    assert found[0].startswith(f"x TLS failed: {PROBLEMS[problem]}")
    assert found[1] == "x the TLS handshake failed, so the connection is closed"
    at = lines.index(found[0])
    assert lines[at + 1: at + 7] == advice(sha256, problem)
    assert ("* not connected (the TLS handshake failed, so the connection is closed):"
            " /reconnect to open a new connection") in lines
    assert "STARTTLS to start" not in output
    assert "  verify   pinned: fingerprint matches (CA check: " in output
    assert lines[-1] == "<~ 250 2.0.0 ok"


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_bad_certificate_with_implicit_tls(bad: dict[str, Bad], problem: str) -> None:
    ctx, sha256 = bad[problem].ctx, bad[problem].sha256

    async def bad_cert(reader: Reader, writer: Writer) -> None:
        await writer.start_tls(ctx)

    async def main() -> tuple[str, ExitStatus]:
        async with hostile(bad_cert, tls_polite(ctx)) as srv:
            async with shell(srv.port, cafile=bad["cafile"].sha256, tls_mode="implicit") as sh:
                status = sh.connect_status
                await sh.type("NOOP", "/reconnect --insecure", "NOOP")
                assert sh.core.session.is_tls
        return sh.output, status

    output, status = asyncio.run(main())
    assert status is ExitStatus.TLS
    [found] = errors(output)
    assert found.startswith(f"x {PROBLEMS[problem]}")
    lines = output.splitlines()
    assert lines[1:7] == advice(sha256, problem)
    assert lines[7] == "* not connected (use /reconnect)"
    assert any(line.startswith("  verify   NOT verified (--insecure): ") for line in lines)
    assert lines[-1] == "<~ 250 2.0.0 ok"


def test_reconnect_refuses_a_malformed_pin(bad: dict[str, Bad]) -> None:
    async def main() -> str:
        async with hostile(tls_polite(bad["self_signed"].ctx)) as srv:
            async with shell(srv.port, tls_mode="implicit") as sh:
                await sh.type("/reconnect --pin AA:BB", "/reconnect --pinn x", "/reconnect --pin")
                assert not sh.core.session.connected
        return sh.output

    found = errors(asyncio.run(main()))
    assert found[-3:] == [
        "x /reconnect: --pin 'AA:BB' is not a SHA-256 fingerprint (64 hex digits, colons"
        " allowed: the SHA-256 line of the TLS report)",
        "x /reconnect: unknown argument '--pinn' (use --pin SHA256 or --insecure)",
        "x /reconnect: --pin needs the certificate's SHA-256 fingerprint",
    ]


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
