"""TLS for smtpshell: an SSLContext from options, certificate summaries, errors in words.

Standard library ``ssl`` only; no asyncio and no printing. What needs ``cryptography``
(reading an unverified certificate, saying why it would not verify, diagnosing a refused
client key) lives in :mod:`smtpshell.certs`, imported only on those paths, so that a
session whose certificate verified starts without it. The only I/O is reading the files
the options name (CA file or directory, client certificate and key).

Verification modes, decided by :class:`TlsOptions`:

* default: OpenSSL verifies the chain against the system CAs (or ``cafile``/``capath``
  alone when given) and checks the host name; a failure aborts the handshake.
* ``insecure``: no check during the handshake; :func:`build_report` still says in words
  why the certificate would not verify (checked with ``cryptography``, in ``certs``).
* ``pins``: no CA check during the handshake; the caller must call :func:`check_pins` on
  the peer certificate right after the handshake and abort on a mismatch.

``no_sni`` needs ``insecure`` or ``pins``: Python's ``ssl`` checks the host name only
through ``server_hostname``, which is also what sends SNI, so a verified connection
without SNI cannot be made; :func:`make_client_context` refuses it in words.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "CertInfo",
    "TlsConfigError",
    "TlsOptions",
    "TlsReport",
    "build_report",
    "check_pins",
    "explain_tls_error",
    "fingerprint",
    "format_name",
    "make_client_context",
    "render_report",
    "server_hostname",
]

_VERSIONS: dict[str, ssl.TLSVersion] = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


class TlsConfigError(Exception):
    """A TLS option the user gave cannot be used; ``str(exc)`` is a one-line reason."""


@dataclass(frozen=True)
class TlsOptions:
    """What the user asked for; every field maps to one command-line option."""

    cafile: str | None = None
    capath: str | None = None
    insecure: bool = False
    server_name: str | None = None  # name for SNI and the host-name check, instead of host
    no_sni: bool = False
    min_version: str | None = None  # "1.0" .. "1.3"
    max_version: str | None = None
    ciphers: str | None = None  # OpenSSL cipher string, TLS <= 1.2
    ciphersuites: str | None = None  # TLS 1.3 suites: not settable with Python's ssl
    certfile: str | None = None
    keyfile: str | None = None
    key_password: str | None = None
    pins: tuple[str, ...] = ()  # SHA-256 fingerprints of the server certificate


@dataclass(frozen=True)
class CertInfo:
    """A summary of one certificate."""

    subject: str
    sans: tuple[str, ...]  # DNS names, IP addresses and e-mail addresses, in order
    issuer: str
    not_before: datetime  # aware, UTC
    not_after: datetime
    sha256: str  # "AB:CD:..." upper-case
    serial: int
    self_signed: bool


@dataclass(frozen=True)
class TlsReport:
    """What a finished handshake gave us, for the user to read."""

    version: str  # "TLSv1.3"
    cipher: str
    bits: int
    peer: CertInfo | None
    chain: tuple[CertInfo, ...]  # () when the ssl module cannot show the chain
    verified: bool  # the peer's identity is established (CA + host name, or a pin)
    verification: str  # the same in words, with the reason when not verified
    sni: str | None  # the name sent as SNI; None when none was sent


# --- the context ----------------------------------------------------------------------------


def make_client_context(opts: TlsOptions) -> ssl.SSLContext:
    """Build the client context for ``opts``; raise :class:`TlsConfigError` on a bad option.

    ``min_version``/``max_version`` below 1.2 also lower OpenSSL's security level to 0 (added
    to the cipher string), without which OpenSSL 3 will not negotiate TLS 1.0 or 1.1.
    """
    if opts.ciphersuites is not None:
        raise TlsConfigError(
            "--ciphersuites: Python's ssl module cannot choose TLS 1.3 cipher suites;"
            " use --max-version 1.2 with --ciphers instead"
        )
    pinned = [_normalise_pin(pin) for pin in opts.pins]  # raises on a malformed pin
    verifying = not opts.insecure and not pinned
    if opts.no_sni and verifying:
        raise TlsConfigError(
            "--no-sni: Python checks the host name only through SNI;"
            " add --insecure (or a pin) to connect without SNI"
        )
    ctx = _base_context(opts)
    minimum = _version(opts.min_version, "--min-version")
    maximum = _version(opts.max_version, "--max-version")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise TlsConfigError(
            f"--min-version {opts.min_version} is above --max-version {opts.max_version}"
        )
    with warnings.catch_warnings():
        # The user asked for an old version on purpose; ssl warns that TLS 1.0/1.1 are old.
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
    ciphers = opts.ciphers
    old = [v for v in (minimum, maximum) if v is not None and v < ssl.TLSVersion.TLSv1_2]
    if old and "@SECLEVEL" not in (ciphers or ""):
        ciphers = (ciphers or "DEFAULT") + ":@SECLEVEL=0"
    if ciphers is not None:
        try:
            ctx.set_ciphers(ciphers)
        except ssl.SSLError as exc:
            raise TlsConfigError(f"--ciphers {opts.ciphers!r}: no cipher matches") from exc
    if not verifying:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    _load_client_cert(ctx, opts)
    return ctx


def server_hostname(opts: TlsOptions, host: str) -> str | None:
    """The ``server_hostname`` to pass to wrap/start_tls: None with ``no_sni``.

    Python sends no SNI for an IP address but still checks it against the certificate.
    """
    if opts.no_sni:
        return None
    return opts.server_name or host


def _base_context(opts: TlsOptions) -> ssl.SSLContext:
    if opts.cafile is not None and not os.path.isfile(opts.cafile):
        raise TlsConfigError(f"--cafile {opts.cafile}: no such file")
    if opts.capath is not None and not os.path.isdir(opts.capath):
        raise TlsConfigError(f"--capath {opts.capath}: not a directory")
    try:
        return ssl.create_default_context(cafile=opts.cafile, capath=opts.capath)
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise TlsConfigError(f"--cafile {opts.cafile}: no PEM certificate in it") from exc
        raise TlsConfigError(f"--cafile {opts.cafile}: {exc.strerror or exc}") from exc


def _version(text: str | None, option: str) -> ssl.TLSVersion | None:
    if text is None:
        return None
    key = text.strip().lower().removeprefix("tls").removeprefix("v")
    if key == "1":
        key = "1.0"
    if key not in _VERSIONS:
        raise TlsConfigError(f"{option} {text!r}: unknown TLS version, use 1.0, 1.1, 1.2 or 1.3")
    return _VERSIONS[key]


def _load_client_cert(ctx: ssl.SSLContext, opts: TlsOptions) -> None:
    if opts.certfile is None:
        if opts.keyfile is not None:
            raise TlsConfigError("--key needs --cert (the client certificate)")
        return
    for option, path in (("--cert", opts.certfile), ("--key", opts.keyfile)):
        if path is not None and not os.path.isfile(path):
            raise TlsConfigError(f"{option} {path}: no such file")
    keyfile = opts.keyfile or opts.certfile

    def no_password() -> str:
        # Without a callback OpenSSL would prompt on the terminal for the pass phrase.
        raise TlsConfigError(
            f"key {keyfile} is encrypted: give its passphrase (--key-password-env VAR)"
        )

    password: str | Callable[[], str] = no_password
    if opts.key_password is not None:
        password = opts.key_password
    try:
        ctx.load_cert_chain(opts.certfile, opts.keyfile, password=password)
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            from .certs import diagnose_cert_key

            raise TlsConfigError(diagnose_cert_key(opts.certfile, keyfile, opts)) from exc
        reason = exc.strerror or exc
        raise TlsConfigError(f"cannot read the client certificate or key: {reason}") from exc


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# --- certificates ---------------------------------------------------------------------------


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate as upper-case hex with colons."""
    return hashlib.sha256(der).digest().hex(":").upper()


# OpenSSL's long attribute names (as ``ssl`` decodes them; ``cryptography`` names most of
# them the same) -> the short names RFC 4514 section 3 uses.  Others keep their long name.
_SHORT_NAMES = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
    "userID": "UID",
}


def format_name(rdns: tuple[tuple[tuple[str, str], ...], ...]) -> str:
    """An RFC 4514 string ("CN=mx,O=Example") from a name as ``ssl`` decodes it.

    ``rdns`` is in certificate order, each RDN a tuple of (attribute, value) pairs, as in
    ``getpeercert()["subject"]``; RFC 4514 writes them last first.  Escaping as RFC 4514
    section 2.4 (and ``cryptography``'s ``rfc4514_string``) does.
    """
    return ",".join(
        "+".join(f"{_SHORT_NAMES.get(attr, attr)}={_escape_dn(value)}" for attr, value in rdn)
        for rdn in reversed(rdns)
    )


def _escape_dn(value: str) -> str:
    if not value:
        return ""
    for char in '\\"+,;<>':
        value = value.replace(char, "\\" + char)
    value = value.replace("\0", "\\00")
    if value[0] in "# ":
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value


def _info_from_ssl(der: bytes, decoded: dict[str, Any]) -> CertInfo | None:
    """A summary from what ``ssl`` decoded (``getpeercert()``, ``Certificate.get_info()``)."""
    try:
        names: list[str] = []
        for kind, value in decoded.get("subjectAltName", ()):
            if kind in ("DNS", "email", "URI"):
                names.append(value)
            elif kind == "IP Address":
                names.append(str(ipaddress.ip_address(value.strip())))
        return CertInfo(
            subject=format_name(decoded["subject"]),
            sans=tuple(names),
            issuer=format_name(decoded["issuer"]),
            not_before=_cert_time(decoded["notBefore"]),
            not_after=_cert_time(decoded["notAfter"]),
            sha256=fingerprint(der),
            serial=int(decoded["serialNumber"], 16),
            self_signed=decoded["subject"] == decoded["issuer"],
        )
    except (KeyError, TypeError, ValueError):
        return None


_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


def _cert_time(text: str) -> datetime:
    """``notBefore``/``notAfter`` as ``ssl`` writes them: "Jan  5 09:34:43 2018 GMT".

    Read by hand (``ssl.cert_time_to_seconds`` uses ``time.strptime``, whose first call
    imports ``_strptime`` and whose every call costs more than the rest of the summary);
    anything unexpected goes to ``ssl.cert_time_to_seconds``, which says what is wrong.
    """
    parts = text.split()
    if len(parts) == 5 and parts[4] == "GMT" and parts[0] in _MONTHS:
        hms = parts[2].split(":")
        if len(hms) == 3 and all(x.isdigit() for x in (parts[1], parts[3], *hms)):
            try:
                return datetime(int(parts[3]), _MONTHS[parts[0]], int(parts[1]),
                                int(hms[0]), int(hms[1]), int(hms[2]), tzinfo=UTC)
            except ValueError:
                pass
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(text), UTC)


def _info(der: bytes, decoded: dict[str, Any]) -> CertInfo | None:
    """Summarise one certificate: from ``ssl``'s decoding when there is one, else (an
    unverified peer on a Python without the chain methods) with ``cryptography``."""
    if decoded:
        info = _info_from_ssl(der, decoded)
        if info is not None:
            return info
    from .certs import cert_info

    try:
        return cert_info(der)
    except ValueError:
        return None


def _normalise_pin(pin: str) -> str:
    text = pin.strip().lower()
    for prefix in ("sha256:", "sha256/", "sha256="):
        text = text.removeprefix(prefix)
    text = re.sub(r"[\s:]", "", text)
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise TlsConfigError(f"pin {pin!r} is not a SHA-256 fingerprint (64 hex digits)")
    return text


def check_pins(der: bytes, pins: tuple[str, ...] | list[str]) -> str | None:
    """None when the certificate matches one of ``pins`` (or there are none), else why not.

    Pins are SHA-256 fingerprints of the whole certificate, hex with or without colons, any
    case, optionally prefixed "sha256:"; a malformed pin raises :class:`TlsConfigError`.
    """
    if not pins:
        return None
    got = fingerprint(der)
    wanted = {_normalise_pin(pin) for pin in pins}
    if got.replace(":", "").lower() in wanted:
        return None
    return f"certificate fingerprint SHA-256 {got} matches no pin"


# --- the report -----------------------------------------------------------------------------


def build_report(
    ssl_object: ssl.SSLObject | ssl.SSLSocket, opts: TlsOptions, host: str
) -> TlsReport:
    """Describe a finished handshake on ``ssl_object`` made with ``opts`` to ``host``.

    Certificates are summarised from what ``ssl`` decoded, so a verified session never
    loads ``cryptography`` (about 50 ms of start-up); an unverified one does, to say why
    it would not verify.  The chain is empty where the ssl module cannot give it.
    """
    cipher = ssl_object.cipher()
    der = ssl_object.getpeercert(binary_form=True)
    chain = _peer_chain(ssl_object)
    name = opts.server_name or host
    sni = None if opts.no_sni or is_ip(name) else name
    chain_ders = tuple(item_der for item_der, _ in chain)
    verified, words = _verification(ssl_object.context, opts, name, der, chain_ders)
    infos = [(item_der, _info(item_der, decoded)) for item_der, decoded in chain]
    peer = None
    if der:
        peer = next((info for item_der, info in infos if item_der == der and info), None)
        if peer is None:
            peer = _info(der, ssl_object.getpeercert() or {})
    return TlsReport(
        version=ssl_object.version() or "unknown",
        cipher=cipher[0] if cipher else "unknown",
        bits=cipher[2] if cipher else 0,
        peer=peer,
        chain=tuple(info for _, info in infos if info is not None),
        verified=verified,
        verification=words,
        sni=sni,
    )


def _peer_chain(obj: ssl.SSLObject | ssl.SSLSocket) -> tuple[tuple[bytes, dict[str, Any]], ...]:
    """The peer's chain, leaf first, as (DER, what ``ssl`` decoded of it) pairs.

    ``get_verified_chain``/``get_unverified_chain`` are public from Python 3.13 (DER only);
    the C object has them from 3.10 and gives certificate objects that ``ssl`` decodes
    itself, so they are asked first: no ``cryptography`` needed for the report.
    """
    inner = getattr(obj, "_sslobj", None)
    for method in ("get_verified_chain", "get_unverified_chain"):
        getter = getattr(inner, method, None)
        if getter is None:
            continue
        try:
            objs: list[Any] = list(getter() or [])
            chain = tuple((c.public_bytes(_ENCODING_DER), c.get_info()) for c in objs)
        except (AttributeError, TypeError, ValueError, ssl.SSLError):
            continue
        if chain:
            return chain
    for method in ("get_verified_chain", "get_unverified_chain"):  # Python >= 3.13
        getter = getattr(obj, method, None)
        if getter is None:
            continue
        try:
            certs: list[Any] = list(getter() or [])
        except (ValueError, ssl.SSLError):
            continue
        if certs:
            return tuple((c, {}) for c in certs if isinstance(c, bytes))
    return ()


_ENCODING_DER = 2
"""``_ssl.ENCODING_DER``: the value ``Certificate.public_bytes`` takes for DER."""


def _verification(
    ctx: ssl.SSLContext, opts: TlsOptions, name: str, der: bytes | None, chain: tuple[bytes, ...]
) -> tuple[bool, str]:
    if der is None:
        return False, "NOT verified: the server sent no certificate"
    if opts.pins:
        problem = check_pins(der, opts.pins)
        if problem is not None:
            return False, f"pin MISMATCH: {problem}"
        from .certs import would_verify

        _, would = would_verify(der, chain[1:], opts, name)
        return True, f"pinned: fingerprint matches (CA check: {would})"
    where = store_words(opts)
    if ctx.verify_mode != ssl.CERT_NONE:
        if ctx.check_hostname:
            return True, f"verified against {where} for host {name}"
        return True, f"chain verified against {where}; host name NOT checked"
    from .certs import would_verify

    _, would = would_verify(der, chain[1:], opts, name)
    label = "--insecure" if opts.insecure else "no verification"
    return False, f"NOT verified ({label}): {would}"


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def store_words(opts: TlsOptions) -> str:
    if opts.cafile and opts.capath:
        return f"CA file {opts.cafile} and CA directory {opts.capath}"
    if opts.cafile:
        return f"CA file {opts.cafile}"
    if opts.capath:
        return f"CA directory {opts.capath}"
    return "system CAs"


def format_date(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


# --- rendering ------------------------------------------------------------------------------


def render_report(
    report: TlsReport, *, show_chain: bool = False, now: datetime | None = None
) -> list[str]:
    """Short aligned lines for the user; ``now`` is for tests (default: the current time)."""
    now = now or datetime.now(UTC)
    lines = [_line("TLS", f"{report.version}  {report.cipher} ({report.bits} bits)")]
    peer = report.peer
    if peer is None:
        lines.append(_line("cert", "none sent by the server"))
    else:
        lines += [
            _line("subject", peer.subject or "(empty)"),
            _line("names", ", ".join(peer.sans) or "(no subjectAltName)"),
            _line("issuer", "(self-signed)" if peer.self_signed else peer.issuer or "(empty)"),
            _line("valid", f"{format_date(peer.not_before)} to {format_date(peer.not_after)}"
                  f" ({_validity(peer, now)})"),
            _line("SHA-256", peer.sha256),
        ]
    lines.append(_line("SNI", report.sni or "(none sent)"))
    lines.append(_line("verify", report.verification))
    if show_chain:
        if not report.chain:
            lines.append(_line("chain", "not available from this Python's ssl module (leaf only)"))
        for index, cert in enumerate(report.chain):
            issued = "self-signed" if cert.self_signed else f"issued by {cert.issuer}"
            label = "chain" if index == 0 else ""
            lines.append(_line(label, f"[{index}] {cert.subject or '(empty)'}  ({issued})"))
    return lines


def _line(label: str, value: str) -> str:
    return f"{label:<8} {value}"


def _validity(cert: CertInfo, now: datetime) -> str:
    if now > cert.not_after:
        return f"EXPIRED {(now - cert.not_after).days} days ago"
    if now < cert.not_before:
        return f"NOT YET VALID, starts in {_days(cert.not_before - now)}"
    return f"expires in {_days(cert.not_after - now)}"


def _days(delta: timedelta) -> str:
    return "1 day" if delta.days == 1 else f"{delta.days} days"


# --- errors in words ------------------------------------------------------------------------

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
    exc: BaseException, host: str, opts: TlsOptions, *, peer_der: bytes | None = None
) -> str:
    """One line in words for a failed TLS handshake (or the first read after it).

    ``peer_der``, when the caller has the server certificate (say from a second, unverified
    handshake), adds dates and the names the certificate holds.
    """
    name = opts.server_name or host
    if isinstance(exc, TlsConfigError):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _one_line(_explain_verify(exc, name, opts, peer_der))
    if isinstance(exc, TimeoutError):
        return f"TLS handshake with {host} timed out: the server did not answer"
    if isinstance(exc, ssl.SSLEOFError) or _reason(exc) == "UNEXPECTED_EOF_WHILE_READING":
        return f"{host} closed the connection during the TLS handshake"
    if isinstance(exc, ssl.SSLError):
        return _one_line(_explain_ssl(exc, host, opts))
    if isinstance(exc, ConnectionError | EOFError):
        return f"{host} closed the connection during the TLS handshake"
    if isinstance(exc, OSError):
        return _one_line(f"TLS handshake with {host} failed: {exc.strerror or exc}")
    return _one_line(f"TLS handshake with {host} failed: {exc}")


def _explain_verify(
    exc: ssl.SSLCertVerificationError, name: str, opts: TlsOptions, der: bytes | None
) -> str:
    info = _info(der, {}) if der else None
    code = exc.verify_code
    where = store_words(opts)
    if code == _X509_SELF_SIGNED:
        return (
            f"self-signed certificate: {name} presented a certificate no CA signed"
            " (trust it with --cafile, or use --insecure to look)"
        )
    if code == _X509_SELF_SIGNED_IN_CHAIN:
        return f"untrusted root: the chain from {name} ends in a self-signed CA not in {where}"
    if code in _X509_UNKNOWN_ISSUER:
        issuer = f" {info.issuer}" if info else ""
        return (
            f"unknown CA: the issuer{issuer} of {name}'s certificate is not in {where}"
            " (unable to get local issuer certificate)"
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
