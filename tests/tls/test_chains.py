"""The chains a handshake gives: the public getters from Python 3.13, the private fallback
before.  Each test here runs on the interpreter that takes its path (the suite runs on
3.11, 3.12 and 3.13), and both paths must give the same answer.

The chain: a trustme root -> intermediate -> leaf; the server sends leaf and intermediate.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trustme

from smtpshell import tls
from smtpshell.tls.certinfo import info_from_ssl, peer_chains
from smtpshell.tls.verify import cert_info
from tests.hostile.servers import serve_in_thread

PUBLIC = sys.version_info >= (3, 13)


@dataclass(frozen=True)
class Chain:
    root_pem: bytes
    server: ssl.SSLContext
    leaf: bytes
    inter: bytes
    root: bytes


def _der(blob: trustme.Blob) -> bytes:
    return ssl.PEM_cert_to_DER_cert(blob.bytes().decode())


@pytest.fixture(scope="module")
def chain() -> Chain:
    root = trustme.CA()
    inter = root.create_child_ca()
    leaf = inter.issue_cert("localhost", "127.0.0.1")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server)
    return Chain(root.cert_pem.bytes(), server, _der(leaf.cert_chain_pems[0]),
                 _der(inter.cert_pem), _der(root.cert_pem))


@pytest.fixture
def port(chain: Chain) -> Iterator[int]:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await writer.start_tls(chain.server)
        writer.write(b"220 chain.test\r\n")
        await writer.drain()
        await reader.read()

    with serve_in_thread(handler) as srv:
        yield srv.port


def _client(chain: Chain, *, insecure: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=chain.root_pem.decode())
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _handshake(port: int, ctx: ssl.SSLContext) -> tls.PeerChains:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    try:
        await reader.readline()
        obj = writer.get_extra_info("ssl_object")
        return peer_chains(obj, verified=ctx.verify_mode != ssl.CERT_NONE)
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.skipif(not PUBLIC, reason="SSLObject.get_unverified_chain is public from 3.13")
def test_public_getters_from_python_313(chain: Chain, port: int) -> None:
    got = asyncio.run(_handshake(port, _client(chain)))
    assert got.source == "public"
    assert got.sent == (chain.leaf, chain.inter)
    assert got.verified == (chain.leaf, chain.inter, chain.root)
    assert got.decoded == {}  # DER only: summaries then need cryptography (lazily)


@pytest.mark.skipif(PUBLIC, reason="Python 3.11 and 3.12 take the private fallback")
def test_private_fallback_before_python_313(chain: Chain, port: int) -> None:
    got = asyncio.run(_handshake(port, _client(chain)))
    assert got.source == "private"
    assert got.sent == (chain.leaf, chain.inter)
    assert got.verified == (chain.leaf, chain.inter, chain.root)
    for der in (chain.leaf, chain.inter, chain.root):  # ssl decoded them: no cryptography
        assert info_from_ssl(der, got.decoded[der]) == cert_info(der)


def test_without_verification_there_is_no_path(chain: Chain, port: int) -> None:
    got = asyncio.run(_handshake(port, _client(chain, insecure=True)))
    assert got.source == ("public" if PUBLIC else "private")
    assert got.sent == (chain.leaf, chain.inter)
    assert got.verified == ()


def test_the_chain_of_a_refused_certificate_is_captured(chain: Chain, port: int) -> None:
    """A handshake that fails verification raises before ssl hands anything over; the
    captured SSL object still holds what the server sent (on every interpreter)."""
    opts = tls.TlsOptions()  # the system CAs: trustme's root is not among them

    async def main() -> tls.TlsFailure:
        ctx = tls.make_client_context(opts)
        with tls.capture_handshakes() as seen:
            try:
                await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                              server_hostname="localhost")
            except ssl.SSLCertVerificationError as exc:
                return tls.describe_failure(exc, "localhost", opts, captured=seen)
        raise AssertionError("the handshake should have failed")

    failure = asyncio.run(main())
    assert failure.sha256 == tls.fingerprint(chain.leaf)
    assert failure.message.startswith(
        "unknown CA: the last of the 2 certificates localhost sent is issued by ")
    assert failure.message.endswith(", not in system CAs")


def test_captures_stay_with_their_task(chain: Chain, port: int) -> None:
    """Two handshakes at once on one context: each block sees only its own."""
    ctx = tls.make_client_context(tls.TlsOptions(insecure=True))

    async def one() -> int:
        with tls.capture_handshakes() as seen:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=ctx, server_hostname="localhost")
            await reader.readline()
            writer.close()
            await writer.wait_closed()
        return len(seen)

    async def main() -> list[int]:
        return list(await asyncio.gather(one(), one(), one()))

    assert asyncio.run(main()) == [1, 1, 1]


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) <= before
