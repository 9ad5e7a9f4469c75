"""Tests for smtpshell.tls: real TLS handshakes on 127.0.0.1 with trustme certificates."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpshell.tls import (
    TlsConfigError,
    TlsOptions,
    TlsReport,
    build_report,
    check_pins,
    describe_failure,
    explain_tls_error,
    make_client_context,
    render_report,
    server_hostname,
)
from smtpshell.tls.certinfo import cert_time
from smtpshell.tls.verify import cert_info, would_verify
from tests.helpers import write_self_signed

TIMEOUT = 20.0  # a safety net against hangs, never a synchronisation


# --- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cert:
    """A server or client certificate on disk."""

    certfile: str  # certificate chain, PEM
    keyfile: str  # private key, PEM
    der: bytes  # the leaf, DER


@dataclass(frozen=True)
class Pki:
    cafile: str
    other_cafile: str
    good: Cert  # localhost, 127.0.0.1, *.wild.test
    wrong_host: Cert  # mail.example.test only
    expired: Cert
    future: Cert
    unknown_ca: Cert  # localhost, issued by a CA nobody trusts
    self_signed: Cert  # localhost
    client: Cert
    client_encrypted_key: str  # the client key encrypted with "s3cret"
    other_key: str  # a key that belongs to no certificate here


def _write_leaf(leaf: trustme.LeafCert, directory: Path, name: str) -> Cert:
    certfile, keyfile = directory / f"{name}.crt", directory / f"{name}.key"
    leaf.cert_chain_pems[0].write_to_path(str(certfile))
    for pem in leaf.cert_chain_pems[1:]:
        pem.write_to_path(str(certfile), append=True)
    leaf.private_key_pem.write_to_path(str(keyfile))
    der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
    return Cert(str(certfile), str(keyfile), der)


def _self_signed(directory: Path) -> Cert:
    certfile, keyfile, der = write_self_signed(directory, "localhost")
    return Cert(str(certfile), str(keyfile), der)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    other.cert_pem.write_to_path(str(d / "other-ca.pem"))
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)
    client = _write_leaf(ca.issue_cert("client@example.test"), d, "client")
    key = serialization.load_pem_private_key(Path(client.keyfile).read_bytes(), None)
    encrypted = d / "client-enc.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    return Pki(
        cafile=str(d / "ca.pem"),
        other_cafile=str(d / "other-ca.pem"),
        good=_write_leaf(ca.issue_cert("localhost", "127.0.0.1", "*.wild.test"), d, "good"),
        wrong_host=_write_leaf(ca.issue_cert("mail.example.test"), d, "wrong"),
        expired=_write_leaf(
            ca.issue_cert("localhost", not_before=past, not_after=past + dt.timedelta(days=30)),
            d,
            "expired",
        ),
        future=_write_leaf(
            ca.issue_cert("localhost", not_before=later, not_after=later + dt.timedelta(days=9)),
            d,
            "future",
        ),
        unknown_ca=_write_leaf(other.issue_cert("localhost"), d, "unknown"),
        self_signed=_self_signed(d),
        client=client,
        client_encrypted_key=str(encrypted),
        other_key=_write_leaf(ca.issue_cert("nobody.test"), d, "nobody").keyfile,
    )


# --- a one-connection server ----------------------------------------------------------------


def server_context(
    cert: Cert,
    *,
    max_version: ssl.TLSVersion | None = None,
    min_version: ssl.TLSVersion | None = None,
    client_ca: str | None = None,
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert.certfile, cert.keyfile)
    if max_version is not None:
        ctx.maximum_version = max_version
    if min_version is not None:
        ctx.minimum_version = min_version
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=client_ca)
    return ctx


def _drain(sock: socket.socket) -> None:
    """Read until the client closes."""
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass


class OneShotServer:
    """Serves one connection on 127.0.0.1 (port 0) from a thread.

    Modes: "tls" (handshake, send a 220 line, wait for the client to close), "plain" (send a
    220 line in clear), "close" (close at once), "silent" (say nothing until the client goes).
    """

    def __init__(self, mode: str, ctx: ssl.SSLContext | None = None) -> None:
        self.mode, self.ctx = mode, ctx
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT)
        self.port: int = self.listener.getsockname()[1]
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OneShotServer:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.thread.join(TIMEOUT)
        self.listener.close()
        assert not self.thread.is_alive()

    def _run(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError as exc:
            self.error = exc
            return
        with conn:
            conn.settimeout(TIMEOUT)
            try:
                self._serve(conn)
            except OSError as exc:  # includes ssl.SSLError: the client's test looks at it
                self.error = exc

    def _serve(self, conn: socket.socket) -> None:
        if self.mode == "plain":
            conn.sendall(b"220 plain.example ESMTP\r\n")
            _drain(conn)
        elif self.mode == "silent":
            _drain(conn)
        elif self.mode == "tls":
            assert self.ctx is not None
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"220 tls.example ESMTP\r\n")
                _drain(tls)


def handshake(
    port: int, opts: TlsOptions, host: str = "localhost", *, timeout: float = TIMEOUT
) -> TlsReport:
    """Connect, handshake, read the first line, and report (the way a session would)."""
    ctx = make_client_context(opts)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
        ctx.wrap_socket(raw, server_hostname=server_hostname(opts, host)) as tls,
    ):
        assert tls.recv(100).startswith(b"220 ")
        return build_report(tls, opts, host)


def failure(
    cert_or_ctx: Cert | ssl.SSLContext,
    opts: TlsOptions,
    host: str = "localhost",
    *,
    peer: bool = False,
) -> str:
    """Handshake against a server with this certificate; return the explanation in words."""
    ctx = cert_or_ctx if isinstance(cert_or_ctx, ssl.SSLContext) else server_context(cert_or_ctx)
    with OneShotServer("tls", ctx) as server, pytest.raises(OSError) as info:
        handshake(server.port, opts, host)
    der = None
    if peer and isinstance(cert_or_ctx, Cert):
        der = cert_or_ctx.der
    words = explain_tls_error(info.value, host, opts, peer_der=der)
    assert "\n" not in words
    return words


# --- verified connections -------------------------------------------------------------------


def test_verified_with_cafile_reports_everything(pki: Pki) -> None:
    opts = TlsOptions(cafile=pki.cafile)
    with OneShotServer("tls", server_context(pki.good)) as server:
        report = handshake(server.port, opts)
    assert server.error is None
    assert report.verified
    assert report.verification == f"verified against CA file {pki.cafile} for host localhost"
    assert report.version == "TLSv1.3"
    assert report.cipher.startswith("TLS_") and report.bits >= 128
    assert report.sni == "localhost"
    assert report.peer is not None
    assert report.peer.sans == ("localhost", "127.0.0.1", "*.wild.test")
    assert report.peer.sha256 == cert_info(pki.good.der).sha256
    assert not report.peer.self_signed


def test_report_from_ssl_matches_cryptography(tmp_path: Path) -> None:
    """A verified session is summarised from what ``ssl`` decoded (no ``cryptography``);
    the summary must be the one ``cryptography`` gives, escaping and IPv6 included."""
    ca = trustme.CA(organization_name="Root, Inc. +test")
    leaf = ca.issue_cert(
        "localhost", "::1", "127.0.0.1", "ops@example.test",
        common_name=" #mx <edge>", organization_name="Mail; \"Relay\"",
        organization_unit_name="a+b\\c ",
    )
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem.bytes())
    cert = _write_leaf(leaf, tmp_path, "odd")
    opts = TlsOptions(cafile=str(tmp_path / "ca.pem"))
    with OneShotServer("tls", server_context(cert)) as server:
        report = handshake(server.port, opts)
    assert report.verified
    assert report.peer == cert_info(cert.der)
    assert report.peer.sans == ("localhost", "::1", "127.0.0.1", "ops@example.test")
    assert report.peer.subject.startswith("CN=\\ #mx \\<edge\\>,")
    root_der = ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode())
    assert report.sent == (cert.der,)  # the server sent its own certificate only
    assert report.path == (cert.der, root_der)  # the verifier added the local CA
    assert [report.info(d) for d in report.path] == [cert_info(cert.der), cert_info(root_der)]
    assert report.missing == ()


def test_verified_by_ip_address_sends_no_sni(pki: Pki) -> None:
    opts = TlsOptions(cafile=pki.cafile)
    with OneShotServer("tls", server_context(pki.good)) as server:
        report = handshake(server.port, opts, host="127.0.0.1")
    assert report.verified
    assert report.sni is None
    assert "for host 127.0.0.1" in report.verification


def test_server_name_overrides_host_for_sni_and_check(pki: Pki) -> None:
    opts = TlsOptions(cafile=pki.cafile, server_name="mx.wild.test")
    assert server_hostname(opts, "127.0.0.1") == "mx.wild.test"
    with OneShotServer("tls", server_context(pki.good)) as server:
        report = handshake(server.port, opts, host="127.0.0.1")
    assert report.verified and report.sni == "mx.wild.test"
    assert "for host mx.wild.test" in report.verification


def test_asyncio_ssl_object_report(pki: Pki) -> None:
    """The session uses asyncio, whose streams expose an ssl.SSLObject."""
    opts = TlsOptions(cafile=pki.cafile)

    async def main(port: int) -> tuple[bytes, TlsReport]:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1",
            port,
            ssl=make_client_context(opts),
            server_hostname=server_hostname(opts, "localhost"),
        )
        try:
            line = await reader.readline()
            return line, build_report(writer.get_extra_info("ssl_object"), opts, "localhost")
        finally:
            writer.close()
            await writer.wait_closed()

    with OneShotServer("tls", server_context(pki.good)) as server:
        line, report = asyncio.run(main(server.port))
    assert line == b"220 tls.example ESMTP\r\n"
    assert report.verified and report.peer is not None


# --- failures in words ----------------------------------------------------------------------


def test_self_signed(pki: Pki) -> None:
    words = failure(pki.self_signed, TlsOptions(cafile=pki.cafile))
    assert words.startswith("self-signed certificate")


def test_unknown_ca(pki: Pki) -> None:
    words = failure(pki.unknown_ca, TlsOptions(cafile=pki.cafile))
    assert words.startswith("unknown CA")
    assert pki.cafile in words


def test_unknown_ca_with_system_store(pki: Pki) -> None:
    words = failure(pki.good, TlsOptions())
    assert words.startswith("unknown CA") and "system CAs" in words


def test_expired(pki: Pki) -> None:
    assert failure(pki.expired, TlsOptions(cafile=pki.cafile)).startswith("certificate EXPIRED")
    with_date = failure(pki.expired, TlsOptions(cafile=pki.cafile), peer=True)
    assert "EXPIRED on 2020-01-31" in with_date


def test_not_yet_valid(pki: Pki) -> None:
    words = failure(pki.future, TlsOptions(cafile=pki.cafile), peer=True)
    assert words.startswith("certificate not yet valid (valid from ")


def test_wrong_host(pki: Pki) -> None:
    words = failure(pki.wrong_host, TlsOptions(cafile=pki.cafile))
    assert words == "host name mismatch: the certificate is not valid for 'localhost'"
    words = failure(pki.wrong_host, TlsOptions(cafile=pki.cafile), peer=True)
    sha = cert_info(pki.wrong_host.der).sha256
    assert words.endswith("'localhost'; it is for: mail.example.test")
    opts = TlsOptions(cafile=pki.cafile)
    with OneShotServer("tls", server_context(pki.wrong_host)) as server, \
            pytest.raises(ssl.SSLCertVerificationError) as info:
        handshake(server.port, opts)
    failed = describe_failure(info.value, "localhost", opts, peer_der=pki.wrong_host.der)
    assert failed.sha256 == sha
    assert failed.advice == (
        f"certificate SHA-256 {sha}",
        "ways forward: use a name it holds: --sni NAME (or that name as the host)",
        f"              trust this very certificate: --pin {sha}",
        "              look without checking: -k (--insecure); nothing is then verified",
    )


def test_wrong_ip(pki: Pki) -> None:
    words = failure(pki.wrong_host, TlsOptions(cafile=pki.cafile), host="127.0.0.1")
    assert words.startswith("host name mismatch") and "'127.0.0.1'" in words


def test_plaintext_peer() -> None:
    with OneShotServer("plain") as server, pytest.raises(ssl.SSLError) as info:
        handshake(server.port, TlsOptions())
    words = explain_tls_error(info.value, "localhost", TlsOptions())
    assert words.startswith("localhost did not answer in TLS")
    assert "plaintext port" in words


def test_closed_during_handshake() -> None:
    with OneShotServer("close") as server, pytest.raises(OSError) as info:
        handshake(server.port, TlsOptions())
    words = explain_tls_error(info.value, "localhost", TlsOptions())
    assert words == "localhost closed the connection during the TLS handshake"


def test_handshake_timeout() -> None:
    with OneShotServer("silent") as server, pytest.raises(TimeoutError) as info:
        handshake(server.port, TlsOptions(), timeout=0.5)
    words = explain_tls_error(info.value, "localhost", TlsOptions())
    assert words == "TLS handshake with localhost timed out: the server did not answer"


def test_other_errors_are_one_line() -> None:
    opts = TlsOptions()
    assert "closed the connection" in explain_tls_error(ConnectionResetError(), "h", opts)
    eof = asyncio.IncompleteReadError(b"", 5)
    assert "closed the connection" in explain_tls_error(eof, "h", opts)
    config = TlsConfigError("--cafile x: no such file")
    assert explain_tls_error(config, "h", opts) == "--cafile x: no such file"
    odd = explain_tls_error(RuntimeError("two\nlines"), "h", opts)
    assert odd == "TLS handshake with h failed: two lines"


# --- versions -------------------------------------------------------------------------------


def test_max_version_12_against_tls12_server(pki: Pki) -> None:
    ctx = server_context(pki.good, max_version=ssl.TLSVersion.TLSv1_2)
    with OneShotServer("tls", ctx) as server:
        report = handshake(server.port, TlsOptions(cafile=pki.cafile, max_version="1.2"))
    assert report.version == "TLSv1.2"
    assert report.verified


def test_min_version_13_against_tls12_server(pki: Pki) -> None:
    ctx = server_context(pki.good, max_version=ssl.TLSVersion.TLSv1_2)
    opts = TlsOptions(cafile=pki.cafile, min_version="1.3")
    words = failure(ctx, opts)
    assert words.startswith("no TLS version in common with localhost (ours: TLS 1.3 only;")


def test_max_version_12_against_tls13_server(pki: Pki) -> None:
    ctx = server_context(pki.good, min_version=ssl.TLSVersion.TLSv1_3)
    words = failure(ctx, TlsOptions(cafile=pki.cafile, max_version="TLSv1.2"))
    assert words.startswith("no TLS version in common")


def test_old_versions_are_accepted_without_warnings() -> None:
    ctx = make_client_context(TlsOptions(min_version="1.0", max_version="1.1"))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1
    assert ctx.maximum_version == ssl.TLSVersion.TLSv1_1


def _tls11_server(cert: Cert) -> ssl.SSLContext:
    ctx = server_context(cert)
    with warnings.catch_warnings():  # ssl warns that TLS 1.0/1.1 are deprecated: we know
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def test_min_version_10_reaches_an_old_server(pki: Pki) -> None:
    with OneShotServer("tls", _tls11_server(pki.good)) as server:
        report = handshake(server.port, TlsOptions(cafile=pki.cafile, min_version="1.0"))
    assert report.version == "TLSv1.1" and report.verified


def test_default_versions_refuse_an_old_server(pki: Pki) -> None:
    words = failure(_tls11_server(pki.good), TlsOptions(cafile=pki.cafile))
    assert words == (
        "no TLS version in common with localhost (ours: TLS 1.2 to 1.3; protocol version)"
    )


# --- insecure and pins ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("self_signed", "self-signed certificate"),
        ("unknown_ca", "unknown CA: issuer OU=Testing CA"),
        ("expired", "certificate EXPIRED on 2020-01-31"),
        ("future", "certificate not yet valid (from "),
        ("wrong_host", "host name mismatch: 'localhost' is not in the certificate "
                       "(mail.example.test)"),
    ],
)
def test_insecure_says_why_it_would_not_verify(pki: Pki, name: str, reason: str) -> None:
    cert: Cert = getattr(pki, name)
    opts = TlsOptions(cafile=pki.cafile, insecure=True)
    with OneShotServer("tls", server_context(cert)) as server:
        report = handshake(server.port, opts)
    assert not report.verified
    assert report.verification.startswith("NOT verified (--insecure): ")
    assert reason in report.verification


def test_insecure_with_a_good_certificate(pki: Pki) -> None:
    opts = TlsOptions(cafile=pki.cafile, insecure=True)
    with OneShotServer("tls", server_context(pki.good)) as server:
        report = handshake(server.port, opts)
    assert not report.verified
    assert report.verification == (
        f"NOT verified (--insecure): would verify against CA file {pki.cafile} for host localhost"
    )


def test_insecure_without_sni(pki: Pki) -> None:
    opts = TlsOptions(cafile=pki.cafile, insecure=True, no_sni=True)
    assert server_hostname(opts, "localhost") is None
    with OneShotServer("tls", server_context(pki.good)) as server:
        report = handshake(server.port, opts)
    assert report.sni is None
    assert "would verify" in report.verification


def test_would_verify_needs_the_intermediate(tmp_path: Path) -> None:
    root = trustme.CA()
    leaf = root.create_child_ca().issue_cert("localhost")
    root.cert_pem.write_to_path(str(tmp_path / "root.pem"))
    cafile = str(tmp_path / "root.pem")
    der, inter = (ssl.PEM_cert_to_DER_cert(p.bytes().decode()) for p in leaf.cert_chain_pems[:2])
    assert would_verify(der, (inter,), "localhost", cafile=cafile)[0] is True
    ok, words = would_verify(der, (), "localhost", cafile=cafile)
    assert ok is False
    assert "a missing intermediate? the server sent only its own certificate" in words


def test_pin_matches_in_any_spelling(pki: Pki) -> None:
    colon_hex = cert_info(pki.self_signed.der).sha256
    spellings = (colon_hex, colon_hex.lower(), colon_hex.replace(":", ""), f"SHA256:{colon_hex}")
    for pin in spellings:
        assert check_pins(pki.self_signed.der, (pin,)) is None
    opts = TlsOptions(pins=("00" * 32, colon_hex.lower()))
    with OneShotServer("tls", server_context(pki.self_signed)) as server:
        report = handshake(server.port, opts)
    assert report.verified
    assert report.verification.startswith("pinned: fingerprint matches (CA check: ")
    assert "self-signed certificate" in report.verification


def test_pin_mismatch(pki: Pki) -> None:
    got = cert_info(pki.good.der).sha256
    problem = check_pins(pki.good.der, ("ab" * 32,))
    assert problem == f"certificate fingerprint SHA-256 {got} matches no pin"
    opts = TlsOptions(pins=("ab" * 32,))
    with OneShotServer("tls", server_context(pki.good)) as server:
        report = handshake(server.port, opts)
    assert not report.verified
    assert report.verification == f"pin MISMATCH: {problem}"


def test_no_pins_means_nothing_to_check(pki: Pki) -> None:
    assert check_pins(pki.good.der, ()) is None


# --- client certificates --------------------------------------------------------------------


def test_client_certificate_required_tls13(pki: Pki) -> None:
    ctx = server_context(pki.good, client_ca=pki.cafile)
    words = failure(ctx, TlsOptions(cafile=pki.cafile))
    assert words == "localhost requires a client certificate (alert: certificate required)"


def test_client_certificate_required_tls12(pki: Pki) -> None:
    ctx = server_context(pki.good, client_ca=pki.cafile)
    words = failure(ctx, TlsOptions(cafile=pki.cafile, max_version="1.2"))
    assert words.startswith("localhost aborted the handshake (handshake failure alert)")
    assert "client certificate is required" in words


def test_client_certificate_from_an_untrusted_ca(pki: Pki) -> None:
    ctx = server_context(pki.good, client_ca=pki.other_cafile)
    opts = TlsOptions(cafile=pki.cafile, certfile=pki.client.certfile, keyfile=pki.client.keyfile)
    words = failure(ctx, opts)
    assert words == "localhost rejected our client certificate (alert: unknown ca)"


@pytest.mark.parametrize("encrypted", [False, True])
def test_client_certificate_accepted(pki: Pki, encrypted: bool) -> None:
    keyfile = pki.client_encrypted_key if encrypted else pki.client.keyfile
    opts = TlsOptions(
        cafile=pki.cafile,
        certfile=pki.client.certfile,
        keyfile=keyfile,
        key_password="s3cret" if encrypted else None,
    )
    with OneShotServer("tls", server_context(pki.good, client_ca=pki.cafile)) as server:
        report = handshake(server.port, opts)
    assert server.error is None
    assert report.verified


def test_client_key_password_problems(pki: Pki) -> None:
    base = TlsOptions(certfile=pki.client.certfile, keyfile=pki.client_encrypted_key)
    with pytest.raises(TlsConfigError, match=r"^key .* is encrypted: give its passphrase"):
        make_client_context(base)
    with pytest.raises(TlsConfigError, match=r"^wrong password for the encrypted key "):
        make_client_context(replace(base, key_password="nope"))
    # A password for a key that has none is harmless.
    make_client_context(replace(base, keyfile=pki.client.keyfile, key_password="unused"))


# --- configuration errors -------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    return {"junk": str(junk), "missing": str(tmp_path / "missing.pem"), "dir": str(tmp_path)}


def config_error(opts: TlsOptions) -> str:
    with pytest.raises(TlsConfigError) as info:
        make_client_context(opts)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_config_errors(pki: Pki, files: dict[str, str]) -> None:
    missing, junk = files["missing"], files["junk"]
    cert, key = pki.client.certfile, pki.client.keyfile
    cases: list[tuple[TlsOptions, str]] = [
        (TlsOptions(cafile=missing), f"--cafile {missing}: no such file"),
        (TlsOptions(cafile=junk), f"--cafile {junk}: no PEM certificate in it"),
        (TlsOptions(capath=missing), f"--capath {missing}: not a directory"),
        (TlsOptions(min_version="1.4"), "--min-version '1.4': unknown TLS version"),
        (TlsOptions(max_version="ssl3"), "--max-version 'ssl3': unknown TLS version"),
        (TlsOptions(min_version="1.3", max_version="1.2"), "--min-version 1.3 is above"),
        (TlsOptions(ciphers="NO-SUCH-CIPHER"), "--ciphers 'NO-SUCH-CIPHER': no cipher matches"),
        (TlsOptions(ciphersuites="TLS_AES_128_GCM_SHA256"), "--ciphersuites: Python's ssl"),
        (TlsOptions(keyfile=key), "--key needs --cert"),
        (TlsOptions(certfile=missing), f"--cert {missing}: no such file"),
        (TlsOptions(certfile=cert, keyfile=missing), f"--key {missing}: no such file"),
        (TlsOptions(certfile=junk, keyfile=key), f"--cert {junk}: no PEM certificate in it"),
        (TlsOptions(certfile=cert, keyfile=junk), f"{junk}: no PEM private key in it"),
        (TlsOptions(certfile=cert), f"{cert}: no PEM private key in it"),
        (
            TlsOptions(certfile=cert, keyfile=pki.other_key),
            f"the key in {pki.other_key} does not belong to the certificate in {cert}",
        ),
        (TlsOptions(no_sni=True), "--no-sni: Python checks the host name only through SNI"),
        (TlsOptions(pins=("abcd",)), "--pin 'abcd' is not a SHA-256 fingerprint"),
    ]
    for opts, expected in cases:
        assert config_error(opts).startswith(expected), opts


def test_good_options_build(pki: Pki, files: dict[str, str], tmp_path: Path) -> None:
    ctx = make_client_context(TlsOptions(capath=files["dir"], ciphers="ECDHE+AESGCM"))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    insecure = make_client_context(TlsOptions(insecure=True))
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname
    pinned = make_client_context(TlsOptions(pins=("AB" * 32,), no_sni=True))
    assert pinned.verify_mode == ssl.CERT_NONE
    both = tmp_path / "both.pem"  # certificate and key in one file
    both.write_bytes(Path(pki.client.certfile).read_bytes() + Path(pki.client.keyfile).read_bytes())
    make_client_context(TlsOptions(certfile=str(both)))


# --- certificate summary and rendering ------------------------------------------------------


def test_cert_info(pki: Pki) -> None:
    info = cert_info(pki.self_signed.der)
    assert info.self_signed
    assert info.subject == "CN=localhost" and info.issuer == "CN=localhost"
    assert info.sans == ("localhost",)
    assert len(info.sha256) == 95 and info.sha256 == info.sha256.upper()
    assert info.not_before.tzinfo is not None
    leaf = cert_info(pki.good.der)
    assert not leaf.self_signed and leaf.issuer.startswith("OU=Testing CA")
    with pytest.raises(ValueError):
        cert_info(b"junk")


def test_render_report(pki: Pki) -> None:
    opts = TlsOptions(cafile=pki.cafile)
    with OneShotServer("tls", server_context(pki.good)) as server:
        report = handshake(server.port, opts)
    assert report.peer is not None
    now = report.peer.not_after - dt.timedelta(days=10, hours=1)
    lines = render_report(report, now=now)
    text = "\n".join(lines)
    assert lines[0] == f"TLS      TLSv1.3  {report.cipher} ({report.bits} bits)"
    assert f"subject  {report.peer.subject}" in lines
    assert "names    localhost, 127.0.0.1, *.wild.test" in lines
    assert f"issuer   {report.peer.issuer}" in lines
    assert "(expires in 10 days)" in text
    assert f"SHA-256  {report.peer.sha256}" in lines
    assert "SNI      localhost" in lines
    assert lines[-1] == f"verify   verified against CA file {pki.cafile} for host localhost"
    expired = render_report(report, now=report.peer.not_after + dt.timedelta(days=3))
    assert "(EXPIRED 3 days ago)" in "\n".join(expired)
    chain = render_report(report, show_chain=True, now=now)
    assert chain[: len(lines)] == lines
    leaf = report.peer.subject
    assert chain[len(lines):] == [
        "sent     1 certificate, in the order the server sent them:",
        f"         [0] {leaf}  (issued by {report.peer.issuer})",
        f"path     built by the verifier, from the server's certificate to a CA in CA file"
        f" {pki.cafile}:",
        f"         [0] {leaf}  (issued by {report.peer.issuer})  [sent by the server]",
        f"         [1] {report.peer.issuer}  (self-signed)  [trusted CA from CA file"
        f" {pki.cafile}, not sent]",
    ]


def test_render_self_signed(pki: Pki) -> None:
    opts = TlsOptions(insecure=True)
    with OneShotServer("tls", server_context(pki.self_signed)) as server:
        report = handshake(server.port, opts)
    lines = render_report(report)
    assert "issuer   (self-signed)" in lines
    assert lines[-1].startswith("verify   NOT verified (--insecure): self-signed certificate")


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) <= before


@settings(deadline=None)  # a property, not a timing: the first call imports _strptime
@given(st.datetimes(min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(9999, 12, 31)))
def test_certificate_times_read_like_ssl_reads_them(when: dt.datetime) -> None:
    """The report reads notBefore/notAfter by hand; it must agree with ``ssl``."""
    when = when.replace(microsecond=0)
    text = when.strftime("%b ") + f"{when.day:2d}" + when.strftime(" %H:%M:%S %Y GMT")
    expected = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(text), dt.UTC)
    assert cert_time(text) == expected


@pytest.mark.parametrize("text", ["Feb 30 00:00:00 2024 GMT", "Jan 1 12:00:00 2024 GMT"])
def test_odd_certificate_times_go_to_ssl(text: str) -> None:
    expected = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(text), dt.UTC)
    assert cert_time(text) == expected


@pytest.mark.parametrize("text", [
    "Foo  1 00:00:00 2000 GMT", "Jan  1 00:00:00 2000 UTC", "Jan  1 24:00:00 2024 GMT", "",
])
def test_unreadable_certificate_times_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        cert_time(text)
