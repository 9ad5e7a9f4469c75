"""Is this certificate the server's? Pins, and checks made with ``cryptography``.

``cryptography`` is imported inside the functions that need it, never at the top: a
session whose certificate verified (the common case) never loads it (about 50 ms of
start-up).  It is loaded when a certificate is unverified (``--insecure``, a pin) and the
report says why it would not verify, when a failed handshake is explained, when a chain is
shown that ``ssl`` did not decode (Python >= 3.13), and when OpenSSL refuses a client
certificate or key.  No I/O but reading the files the options name.

Nothing here imports :mod:`smtpshell.tls.options`: the options module calls in, with the
plain values these functions need.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import ssl
import warnings
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .certinfo import CertInfo, fingerprint, format_date, format_name, info_from_ssl, is_ip

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.x509 import verification as xv

__all__ = [
    "cert_info",
    "check_pins",
    "diagnose_cert_key",
    "parse_pin",
    "store_words",
    "summarise",
    "would_verify",
]


# --- pins -----------------------------------------------------------------------------------


def parse_pin(pin: str) -> str | None:
    """A pin as 64 lower-case hex digits, or None when it is not a SHA-256 fingerprint.

    Accepted: hex with or without colons or blanks, any case, optionally prefixed
    "sha256:" (or "sha256/", "sha256=").
    """
    text = pin.strip().lower()
    for prefix in ("sha256:", "sha256/", "sha256="):
        text = text.removeprefix(prefix)
    text = re.sub(r"[\s:]", "", text)
    return text if re.fullmatch(r"[0-9a-f]{64}", text) else None


def check_pins(der: bytes, pins: tuple[str, ...] | list[str]) -> str | None:
    """None when the certificate matches one of ``pins`` (or there are none), else why not.

    A malformed pin matches nothing (:func:`smtpshell.tls.check_options` refuses them
    before a connection is made).
    """
    if not pins:
        return None
    got = fingerprint(der)
    wanted = {parse_pin(pin) for pin in pins}
    if got.replace(":", "").lower() in wanted:
        return None
    return f"certificate fingerprint SHA-256 {got} matches no pin"


def store_words(cafile: str | None, capath: str | None) -> str:
    """The CA store a verified connection uses, in words."""
    if cafile and capath:
        return f"CA file {cafile} and CA directory {capath}"
    if cafile:
        return f"CA file {cafile}"
    if capath:
        return f"CA directory {capath}"
    return "system CAs"


# --- summaries --------------------------------------------------------------------------------


def summarise(der: bytes, decoded: dict[str, Any] | None = None) -> CertInfo | None:
    """Summarise one certificate: from ``ssl``'s decoding when there is one, else with
    ``cryptography``; None when it cannot be parsed."""
    if decoded:
        info = info_from_ssl(der, decoded)
        if info is not None:
            return info
    try:
        return cert_info(der)
    except ValueError:
        return None


def cert_info(der: bytes) -> CertInfo:
    """Summarise a DER certificate with ``cryptography``; raise ValueError if it cannot be
    parsed."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    return CertInfo(
        subject=_name(cert.subject),
        sans=_sans(cert),
        issuer=_name(cert.issuer),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=fingerprint(der),
        serial=cert.serial_number,
        self_signed=_self_signed(cert),
    )


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (x509.ExtensionNotFound, ValueError):
        return ()
    names: list[str] = []
    for general in ext.value:
        if isinstance(general, x509.DNSName | x509.RFC822Name | x509.UniformResourceIdentifier):
            names.append(general.value)
        elif isinstance(general, x509.IPAddress):
            names.append(str(general.value))
    return tuple(names)


def _self_signed(cert: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _name(name: x509.Name) -> str:
    """The RFC 4514 string :func:`certinfo.format_name` makes from ``ssl``'s names."""
    rdns = []
    for rdn in name.rdns:
        pairs = []
        for attr in rdn:
            label = attr.oid._name
            if label == "Unknown OID":
                label = attr.oid.dotted_string
            value = attr.value
            pairs.append((label, value if isinstance(value, str) else "#" + value.hex()))
        rdns.append(tuple(pairs))
    return format_name(tuple(rdns))


# --- would it verify? -------------------------------------------------------------------------


def would_verify(
    der: bytes,
    intermediates: tuple[bytes, ...],
    name: str,
    *,
    cafile: str | None = None,
    capath: str | None = None,
) -> tuple[bool | None, str]:
    """Check a certificate the way a verified connection would, and say the outcome in words.

    Returns ``(True, "would verify ...")``, ``(False, "self-signed certificate; ...")`` with
    every reason found (self-signed, unknown CA or a missing intermediate, expired/not yet
    valid, host name mismatch), or ``(None, "unknown: ...")`` when there is no CA store to
    check against.  ``intermediates``: the other certificates the server sent.
    """
    from cryptography import x509

    try:
        leaf = x509.load_der_x509_certificate(der)
    except ValueError:
        return False, "the certificate cannot be parsed"
    now = datetime.now(UTC)
    store = _store(cafile, capath)
    in_store = store is not None and any(c == leaf for c in store)
    reasons: list[str] = []
    self_signed = _self_signed(leaf)
    if self_signed and not in_store:
        reasons.append("self-signed certificate")
    if now > leaf.not_valid_after_utc:
        reasons.append(f"certificate EXPIRED on {format_date(leaf.not_valid_after_utc)}")
    elif now < leaf.not_valid_before_utc:
        reasons.append(f"certificate not yet valid (from {format_date(leaf.not_valid_before_utc)})")
    sans = _sans(leaf)
    if not _name_matches(leaf, name):
        listed = ", ".join(sans) if sans else "none"
        reasons.append(f"host name mismatch: {name!r} is not in the certificate ({listed})")
    if store is not None and not (self_signed and not in_store):
        chain_problem = _chain_problem(leaf, intermediates, store, now)
        if chain_problem is not None:
            reasons.append(chain_problem)
    if reasons:
        return False, "; ".join(reasons)
    if store is None:
        return None, "unknown: no CA store to check the issuer against"
    return True, f"would verify against {store_words(cafile, capath)} for host {name}"


def missing_issuer(sent: tuple[bytes, ...]) -> str | None:
    """The issuer name of the last certificate the server sent when that certificate is not
    self-signed (so the next one up, an intermediate or a root, was not sent); None when
    the chain ends in a self-signed certificate or cannot be read."""
    if not sent:
        return None
    last = summarise(sent[-1])
    if last is None or last.self_signed:
        return None
    return last.issuer


def _chain_problem(
    leaf: x509.Certificate,
    intermediates: tuple[bytes, ...],
    store: tuple[x509.Certificate, ...],
    now: datetime,
) -> str | None:
    """Does the leaf chain up to the store? Time and name are taken from the leaf itself so
    that only the issuer question is asked (those two are reported on their own)."""
    from cryptography import x509
    from cryptography.x509 import verification as xv

    subject = _some_subject(leaf)
    if subject is None:
        return "the certificate has no subjectAltName (required for a server certificate)"
    when = min(max(now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
    others = []
    for item in intermediates:
        try:
            others.append(x509.load_der_x509_certificate(item))
        except ValueError:
            continue
    # The web PKI profile for CAs, but lenient with the server certificate's extensions
    # (as OpenSSL is): trustme, for one, marks its subjectAltName critical.
    ee = xv.ExtensionPolicy.permit_all().require_present(
        x509.SubjectAlternativeName, xv.Criticality.AGNOSTIC, None
    )
    builder = (
        xv.PolicyBuilder()
        .store(xv.Store(list(store)))
        .time(when)
        .extension_policies(ca_policy=xv.ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
    )
    try:
        builder.build_server_verifier(subject).verify(leaf, others)
    except xv.VerificationError as exc:
        text = str(exc).split(" (encountered processing", 1)[0].removeprefix("validation failed: ")
        if "no interior errors" in text:
            top = others[-1] if others else leaf
            issuer = _name(top.issuer) or "(empty name)"
            if not others:
                return (f"unknown CA: issuer {issuer} is not trusted (a missing intermediate?"
                        " the server sent only its own certificate)")
            return f"unknown CA: issuer {issuer} is not trusted"
        return f"the chain does not verify: {text}"
    except ValueError as exc:
        return f"the chain cannot be checked: {exc}"
    return None


def _some_subject(leaf: x509.Certificate) -> xv.Subject | None:
    """A name the leaf is valid for, to ask the verifier about the chain alone."""
    from cryptography import x509

    for value in _sans(leaf):
        if is_ip(value):
            return x509.IPAddress(ipaddress.ip_address(value))
        if "@" in value or ":" in value:
            continue
        try:
            return x509.DNSName(value.replace("*", "x", 1))
        except ValueError:
            continue
    return None


def _name_matches(leaf: x509.Certificate, name: str) -> bool:
    """RFC 6125 host-name match against the subjectAltName (no CN fallback, as in ssl)."""
    from cryptography import x509

    try:
        ext = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (x509.ExtensionNotFound, ValueError):
        return False
    if is_ip(name):
        ip = ipaddress.ip_address(name)
        return ip in ext.value.get_values_for_type(x509.IPAddress)
    wanted = name.rstrip(".").lower()
    for pattern in ext.value.get_values_for_type(x509.DNSName):
        pattern = pattern.rstrip(".").lower()
        if pattern == wanted:
            return True
        if pattern.startswith("*.") and "." in wanted:
            first, rest = wanted.split(".", 1)
            if first and rest == pattern[2:]:
                return True
    return False


def _store(cafile: str | None, capath: str | None) -> tuple[x509.Certificate, ...] | None:
    """The certificates a verified connection would trust, or None if we cannot tell."""
    files: list[str] = []
    dirs: list[str] = []
    if cafile or capath:
        files = [cafile] if cafile else []
        dirs = [capath] if capath else []
    else:
        paths = ssl.get_default_verify_paths()
        if paths.cafile and os.path.isfile(paths.cafile):
            files = [paths.cafile]
        elif paths.capath and os.path.isdir(paths.capath):
            dirs = [paths.capath]
    for d in dirs:
        try:
            files += sorted(e.path for e in os.scandir(d) if e.is_file())
        except OSError:
            continue
    certs: list[x509.Certificate] = []
    for path in files:
        try:
            stat = os.stat(path)
        except OSError:
            continue
        certs.extend(_load_pem_file(path, stat.st_mtime_ns, stat.st_size))
    return tuple(certs) or None


@functools.lru_cache(maxsize=512)
def _load_pem_file(path: str, mtime_ns: int, size: int) -> tuple[x509.Certificate, ...]:
    """Every certificate in a PEM file that parses (cached by path, mtime and size)."""
    from cryptography import x509
    from cryptography.utils import CryptographyDeprecationWarning

    try:
        data = _read(path)
    except OSError:
        return ()
    certs: list[x509.Certificate] = []
    pattern = rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----"
    for block in re.findall(pattern, data, re.DOTALL):
        try:
            with warnings.catch_warnings():
                # System stores hold old roots (e.g. negative serial numbers) that
                # cryptography warns about; they are OpenSSL's to judge, not ours.
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                certs.append(x509.load_pem_x509_certificate(block))
        except ValueError:
            continue
    return tuple(certs)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# --- a refused client certificate or key ------------------------------------------------------


def diagnose_cert_key(certfile: str, keyfile: str, key_password: str | None) -> str:
    """Say in words why OpenSSL refused the client certificate or key ("PEM lib"...)."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        cert_data = _read(certfile)
        key_data = cert_data if keyfile == certfile else _read(keyfile)
    except OSError as exc:
        return f"cannot read {exc.filename}: {exc.strerror or exc}"
    try:
        cert = x509.load_pem_x509_certificates(cert_data)[0]
    except ValueError:
        return f"--cert {certfile}: no PEM certificate in it"
    if b"PRIVATE KEY-----" not in key_data:
        return f"{keyfile}: no PEM private key in it"
    password = None if key_password is None else key_password.encode()
    try:
        key = serialization.load_pem_private_key(key_data, password)
    except TypeError:  # a password given for a plain key is ignored by OpenSSL: try without
        try:
            key = serialization.load_pem_private_key(key_data, None)
        except (TypeError, ValueError, UnsupportedAlgorithm):
            return f"{keyfile}: the private key cannot be read"
    except ValueError as exc:
        if "password" in str(exc).lower() or "decrypt" in str(exc).lower():
            return f"wrong password for the encrypted key {keyfile}"
        return f"{keyfile}: the private key cannot be read"
    except UnsupportedAlgorithm:
        return f"{keyfile}: unsupported private key type"
    pub = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    cert_pub = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if pub != cert_pub:
        return f"the key in {keyfile} does not belong to the certificate in {certfile}"
    return f"OpenSSL refused the client certificate {certfile} or its key"
