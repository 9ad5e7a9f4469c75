"""Certificates read with ``cryptography``: summaries, and why one would not verify.

The part of TLS that needs more than the standard library, kept apart so that a session
whose certificate verified (the common case) never imports ``cryptography``: its report is
built from what ``ssl`` already decoded (see :func:`smtpshell.tls.build_report`). This
module is loaded when a certificate is unverified (``--insecure``, a pin), when a handshake
failed and the shell explains why, and when OpenSSL refuses a client certificate or key.
No I/O but reading the files the options name.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import ssl
import warnings
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import verification as xv

from .tls import (
    CertInfo,
    TlsOptions,
    fingerprint,
    format_date,
    format_name,
    is_ip,
    read_file,
    store_words,
)

__all__ = ["cert_info", "diagnose_cert_key", "would_verify"]


def cert_info(der: bytes) -> CertInfo:
    """Summarise a DER certificate; raise ValueError if it cannot be parsed."""
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
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _name(name: x509.Name) -> str:
    """The RFC 4514 string :func:`smtpshell.tls.format_name` makes from ``ssl``'s names."""
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


def would_verify(
    der: bytes, intermediates: tuple[bytes, ...], opts: TlsOptions, name: str
) -> tuple[bool | None, str]:
    """Check a certificate the way a verified connection would, and say the outcome in words.

    Returns ``(True, "would verify ...")``, ``(False, "self-signed certificate; ...")`` with
    every reason found (self-signed, unknown CA, expired/not yet valid, host name mismatch),
    or ``(None, "unknown: ...")`` when there is no CA store to check against.
    """
    try:
        leaf = x509.load_der_x509_certificate(der)
    except ValueError:
        return False, "the certificate cannot be parsed"
    now = datetime.now(UTC)
    store = _store(opts)
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
    return True, f"would verify against {store_words(opts)} for host {name}"


def _chain_problem(
    leaf: x509.Certificate,
    intermediates: tuple[bytes, ...],
    store: tuple[x509.Certificate, ...],
    now: datetime,
) -> str | None:
    """Does the leaf chain up to the store? Time and name are taken from the leaf itself so
    that only the issuer question is asked (those two are reported on their own)."""
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
            issuer = _name(leaf.issuer) or "(empty name)"
            hint = "" if intermediates else " (or the server did not send an intermediate)"
            return f"unknown CA: issuer {issuer} is not trusted{hint}"
        return f"the chain does not verify: {text}"
    except ValueError as exc:
        return f"the chain cannot be checked: {exc}"
    return None


def _some_subject(leaf: x509.Certificate) -> xv.Subject | None:
    """A name the leaf is valid for, to ask the verifier about the chain alone."""
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


def _store(opts: TlsOptions) -> tuple[x509.Certificate, ...] | None:
    """The certificates a verified connection would trust, or None if we cannot tell."""
    files: list[str] = []
    dirs: list[str] = []
    if opts.cafile or opts.capath:
        files = [opts.cafile] if opts.cafile else []
        dirs = [opts.capath] if opts.capath else []
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
    try:
        data = read_file(path)
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


def diagnose_cert_key(certfile: str, keyfile: str, opts: TlsOptions) -> str:
    """Say in words why OpenSSL refused the client certificate or key ("PEM lib"...)."""
    try:
        cert_data = read_file(certfile)
        key_data = cert_data if keyfile == certfile else read_file(keyfile)
    except OSError as exc:
        return f"cannot read {exc.filename}: {exc.strerror or exc}"
    try:
        cert = x509.load_pem_x509_certificates(cert_data)[0]
    except ValueError:
        return f"--cert {certfile}: no PEM certificate in it"
    if b"PRIVATE KEY-----" not in key_data:
        return f"{keyfile}: no PEM private key in it"
    password = None if opts.key_password is None else opts.key_password.encode()
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
