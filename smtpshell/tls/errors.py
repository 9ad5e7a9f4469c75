"""A failed TLS handshake in words, and the ways forward.

:func:`describe_failure` turns the exception of a failed handshake (plus, when the caller
captured it, the chain the server sent: see ``certinfo.capture_handshakes``) into a
:class:`TlsFailure`: one line saying what went wrong, and for a certificate the verifier
refused its SHA-256 fingerprint, the names it holds and the command-line options that
get past it.  What a shell offers on top (``/reconnect --pin``) is the shell's business.

Every string here that came from the server has gone through ``escapes.for_terminal``.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from ..escapes import for_terminal
from .certinfo import CertInfo, fingerprint, format_date, peer_chains
from .options import TlsConfigError, TlsOptions
from .verify import store_words, summarise

__all__ = ["TlsFailure", "describe_failure", "explain_tls_error"]


@dataclass(frozen=True)
class TlsFailure:
    """Why a handshake failed, for the user.

    ``message``: one line.  ``sha256``: the fingerprint of the certificate the server
    sent, when it was refused and is known.  ``advice``: lines with the ways forward, in
    command-line vocabulary (empty unless a certificate was refused).
    """

    message: str
    sha256: str | None = None
    advice: tuple[str, ...] = ()

    @property
    def certificate_refused(self) -> bool:
        return bool(self.advice)


_NOT_TLS = {
    "WRONG_VERSION_NUMBER",
    "UNKNOWN_PROTOCOL",
    "HTTP_REQUEST",
    "HTTPS_PROXY_REQUEST",
    "PACKET_LENGTH_TOO_LONG",
    "RECORD_LAYER_FAILURE",
    "RECORD_LENGTH_MISMATCH",
}
_NO_VERSION = {
    "UNSUPPORTED_PROTOCOL",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "NO_PROTOCOLS_AVAILABLE",
    "VERSION_TOO_LOW",
    "VERSION_TOO_HIGH",
    "UNSUPPORTED_SSL_VERSION",
}
_NO_CIPHER = {"NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE", "NO_CIPHER_MATCH"}
_CLIENT_CERT_REJECTED = {
    "TLSV1_ALERT_UNKNOWN_CA",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "TLSV1_ALERT_ACCESS_DENIED",
}

# OpenSSL X509_V_ERR_* codes, as carried by ssl.SSLCertVerificationError.verify_code.
_X509_NOT_YET_VALID = 9
_X509_EXPIRED = 10
_X509_SELF_SIGNED = 18
_X509_SELF_SIGNED_IN_CHAIN = 19
_X509_UNKNOWN_ISSUER = {2, 20, 21}
_X509_NAME_MISMATCH = {62, 64}  # host name, IP address


def explain_tls_error(
    exc: BaseException,
    host: str,
    opts: TlsOptions,
    *,
    peer_der: bytes | None = None,
    sent: tuple[bytes, ...] = (),
) -> str:
    """One line in words for a failed TLS handshake (or the first read after it)."""
    return describe_failure(exc, host, opts, peer_der=peer_der, sent=sent).message


def describe_failure(
    exc: BaseException,
    host: str,
    opts: TlsOptions,
    *,
    peer_der: bytes | None = None,
    sent: tuple[bytes, ...] = (),
    captured: Sequence[ssl.SSLObject | ssl.SSLSocket] = (),
) -> TlsFailure:
    """A failed handshake in words.  ``sent``: the certificates the server sent (in its
    order; the leaf first), when the caller has them; ``captured``: the SSL objects a
    ``capture_handshakes()`` block collected (the last one is this handshake's), from
    which ``sent`` is read; ``peer_der``: the leaf alone."""
    if not sent and captured:
        sent = peer_chains(captured[-1], verified=False).sent
    name = opts.server_name or host
    if isinstance(exc, TlsConfigError):
        return TlsFailure(_one_line(str(exc)))
    if isinstance(exc, ssl.SSLCertVerificationError):
        chain = sent or ((peer_der,) if peer_der else ())
        return _verify_failure(exc, name, opts, chain)
    if isinstance(exc, TimeoutError):
        return TlsFailure(f"TLS handshake with {host} timed out: the server did not answer")
    if isinstance(exc, ssl.SSLEOFError) or _reason(exc) == "UNEXPECTED_EOF_WHILE_READING":
        return TlsFailure(f"{host} closed the connection during the TLS handshake")
    if isinstance(exc, ssl.SSLError):
        return TlsFailure(_one_line(_explain_ssl(exc, host, opts)))
    if isinstance(exc, ConnectionError | EOFError):
        return TlsFailure(f"{host} closed the connection during the TLS handshake")
    if isinstance(exc, OSError):
        return TlsFailure(_one_line(f"TLS handshake with {host} failed: {exc.strerror or exc}"))
    return TlsFailure(_one_line(f"TLS handshake with {host} failed: {exc}"))


def _verify_failure(
    exc: ssl.SSLCertVerificationError, name: str, opts: TlsOptions, sent: tuple[bytes, ...]
) -> TlsFailure:
    leaf = summarise(sent[0]) if sent else None
    last = summarise(sent[-1]) if len(sent) > 1 else leaf
    message = _explain_verify(exc, name, opts, leaf, last, len(sent))
    sha256 = fingerprint(sent[0]) if sent else None
    return TlsFailure(
        # escaped as it is, not first made one line: a CR or tab in a certificate's name
        # reads \x0d / \x09 here as in the TLS report (for_terminal leaves no line break)
        message=for_terminal(message),
        sha256=sha256,
        advice=_ways_forward(exc.verify_code, sha256),
    )


def _ways_forward(code: int, sha256: str | None) -> tuple[str, ...]:
    """What to tell the user after a refused certificate, one line each."""
    trust = (
        "trust its issuer: --cafile FILE or --capath DIR with the CA certificate"
        if code not in _X509_NAME_MISMATCH
        else "use a name it holds: --sni NAME (or that name as the host)"
    )
    pin = f"--pin {sha256}" if sha256 else "--pin SHA256 (its fingerprint)"
    lines = [f"certificate SHA-256 {sha256}"] if sha256 else []
    return (
        *lines,
        f"ways forward: {trust}",
        f"              trust this very certificate: {pin}",
        "              look without checking: -k (--insecure); nothing is then verified",
    )


def _explain_verify(
    exc: ssl.SSLCertVerificationError,
    name: str,
    opts: TlsOptions,
    info: CertInfo | None,
    last: CertInfo | None,
    count: int,
) -> str:
    code = exc.verify_code
    where = store_words(opts.cafile, opts.capath)
    if code == _X509_SELF_SIGNED:
        return f"self-signed certificate: {name} presented a certificate no CA signed"
    if code == _X509_SELF_SIGNED_IN_CHAIN:
        return f"untrusted root: the chain from {name} ends in a self-signed CA not in {where}"
    if code in _X509_UNKNOWN_ISSUER:
        if last is None:
            return (
                f"unknown CA: the issuer of {name}'s certificate is not in {where}"
                " (unable to get local issuer certificate)"
            )
        if count <= 1:
            return (
                f"unknown CA: {name}'s certificate is issued by {last.issuer}, not in {where}"
                " (the server sent no intermediate: if that issuer is one, the server must"
                " send it)"
            )
        return (
            f"unknown CA: the last of the {count} certificates {name} sent is issued by"
            f" {last.issuer}, not in {where}"
        )
    if code == _X509_EXPIRED:
        when = f" on {format_date(info.not_after)}" if info else ""
        return f"certificate EXPIRED{when}: {name}'s certificate is no longer valid"
    if code == _X509_NOT_YET_VALID:
        when = f" (valid from {format_date(info.not_before)})" if info else ""
        return f"certificate not yet valid{when}: check the clocks"
    if code in _X509_NAME_MISMATCH:
        names = f"; it is for: {', '.join(info.sans) or 'no names'}" if info else ""
        return f"host name mismatch: the certificate is not valid for {name!r}{names}"
    return f"certificate verification failed: {exc.verify_message or exc.reason or exc}"


def _explain_ssl(exc: ssl.SSLError, host: str, opts: TlsOptions) -> str:
    reason = _reason(exc)
    if reason in _NOT_TLS:
        return (
            f"{host} did not answer in TLS ({_words(reason)}): a plaintext port, or a"
            " server that said 220 to STARTTLS and then did not start TLS"
        )
    if reason in _NO_VERSION:
        low, high = opts.min_version or "1.2", opts.max_version or "1.3"  # ssl's defaults
        ours = f"TLS {low} only" if low == high else f"TLS {low} to {high}"
        return f"no TLS version in common with {host} (ours: {ours}; {_words(reason)})"
    if reason in _NO_CIPHER:
        return f"no cipher in common with {host} ({_words(reason)})"
    if reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED":
        return f"{host} requires a client certificate (alert: certificate required)"
    if reason in _CLIENT_CERT_REJECTED:
        return f"{host} rejected our client certificate (alert: {_words(reason)})"
    if reason == "SSLV3_ALERT_HANDSHAKE_FAILURE":
        guess = (
            "no shared cipher, or a client certificate is required"
            if opts.certfile is None
            else "no shared cipher, or our client certificate was refused"
        )
        return f"{host} aborted the handshake (handshake failure alert): {guess}"
    if reason and "ALERT" in reason:
        return f"{host} sent a TLS alert: {_words(reason)}"
    detail = _words(reason) if reason else str(exc)
    return f"TLS handshake with {host} failed: {detail}"


def _reason(exc: BaseException) -> str | None:
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) else None


def _words(reason: str | None) -> str:
    """"SSLV3_ALERT_HANDSHAKE_FAILURE" -> "handshake failure"."""
    text = re.sub(r"^(SSLV3_|TLSV1_|TLSV13_)?(ALERT_)?", "", reason or "")
    return text.replace("_", " ").lower()


def _one_line(text: str) -> str:
    return " ".join(text.split())
