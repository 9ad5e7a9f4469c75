"""Certificate summaries from what ``ssl`` decoded, and the chains a handshake gave us.

Standard library only: a session whose certificate verified is summarised from
``getpeercert()`` without ``cryptography`` (see :mod:`smtpshell.tls.verify` for the rest).

:func:`peer_chains` is the ONE place that reads the chains: through the public
``get_unverified_chain``/``get_verified_chain`` from Python 3.13, through the private
``_sslobj`` before (marked below).  :func:`capture_handshakes` keeps the SSL objects a
task creates, so that after a failed verification the certificates the server sent can
still be named (fingerprint, names) although ``ssl`` raised before handing us anything.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import ipaddress
import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "CertInfo",
    "PeerChains",
    "capture_handshakes",
    "cert_time",
    "fingerprint",
    "format_date",
    "format_name",
    "info_from_ssl",
    "is_ip",
    "peer_chains",
]


@dataclass(frozen=True)
class CertInfo:
    """A summary of one certificate.  Every string in it comes from the server: print it
    through ``escapes.for_terminal``."""

    subject: str
    sans: tuple[str, ...]  # DNS names, IP addresses and e-mail addresses, in order
    issuer: str
    not_before: datetime  # aware, UTC
    not_after: datetime
    sha256: str  # "AB:CD:..." upper-case
    serial: int
    self_signed: bool


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate as upper-case hex with colons."""
    return hashlib.sha256(der).digest().hex(":").upper()


def format_date(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


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


def info_from_ssl(der: bytes, decoded: dict[str, Any]) -> CertInfo | None:
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
            not_before=cert_time(decoded["notBefore"]),
            not_after=cert_time(decoded["notAfter"]),
            sha256=fingerprint(der),
            serial=int(decoded["serialNumber"], 16),
            self_signed=decoded["subject"] == decoded["issuer"],
        )
    except (KeyError, TypeError, ValueError):
        return None


_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


def cert_time(text: str) -> datetime:
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


# --- the chains -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerChains:
    """The certificates of one handshake, each as DER.

    ``sent``: what the server sent, in its order (leaf first).  ``verified``: the path
    OpenSSL built from the leaf to a trusted CA (empty when nothing was verified).
    ``decoded``: what ``ssl`` already decoded of some of them (the private getters give it;
    it saves loading ``cryptography`` to summarise them).  ``source``: "public" (the
    Python >= 3.13 methods), "private" (the fallback) or "none".
    """

    sent: tuple[bytes, ...] = ()
    verified: tuple[bytes, ...] = ()
    decoded: dict[bytes, dict[str, Any]] = field(default_factory=dict, compare=False)
    source: str = "none"


_ENCODING_DER = 2
"""``_ssl.ENCODING_DER``: the value ``Certificate.public_bytes`` takes for DER."""

_PUBLIC_CHAINS = sys.version_info >= (3, 13)


def peer_chains(obj: ssl.SSLObject | ssl.SSLSocket, *, verified: bool) -> PeerChains:
    """The chains of the handshake on ``obj`` (finished, or failed after the server's
    certificate arrived).  ``verified``: whether OpenSSL verified the peer, so that the
    path it built means something (with ``CERT_NONE`` it is just the sent chain)."""
    if _PUBLIC_CHAINS:
        sent = _public(obj, "get_unverified_chain")
        path = _public(obj, "get_verified_chain") if verified else ()
        return PeerChains(sent=sent, verified=path, source="public" if sent else "none")
    # --- Python 3.11 and 3.12: the private fallback (the ONE place it is used) --------------
    # The C object has had both getters since 3.10; ssl.py only exposes them from 3.13.
    # They return _ssl.Certificate objects, whose get_info() is what getpeercert() gives.
    inner = getattr(obj, "_sslobj", None)
    decoded: dict[bytes, dict[str, Any]] = {}
    chains: dict[str, tuple[bytes, ...]] = {}
    for method in ("get_unverified_chain", "get_verified_chain"):
        getter = getattr(inner, method, None)
        ders: list[bytes] = []
        if getter is not None and (method == "get_unverified_chain" or verified):
            try:
                for cert in getter() or ():
                    der = cert.public_bytes(_ENCODING_DER)
                    decoded.setdefault(der, cert.get_info())
                    ders.append(der)
            except (AttributeError, TypeError, ValueError, ssl.SSLError):
                ders = []
        chains[method] = tuple(ders)
    sent = chains["get_unverified_chain"]
    return PeerChains(
        sent=sent,
        verified=chains["get_verified_chain"],
        decoded=decoded,
        source="private" if sent else "none",
    )
    # --- end of the private fallback --------------------------------------------------------


def _public(obj: ssl.SSLObject | ssl.SSLSocket, method: str) -> tuple[bytes, ...]:
    getter = getattr(obj, method, None)
    if getter is None:
        return ()
    try:
        return tuple(c for c in getter() or () if isinstance(c, bytes))
    except (ValueError, ssl.SSLError):
        return ()


# --- the SSL objects of a failed handshake ---------------------------------------------------

_CAPTURE: contextvars.ContextVar[list[ssl.SSLObject | ssl.SSLSocket] | None] = (
    contextvars.ContextVar("smtpshell_tls_capture", default=None)
)


class CapturingSSLObject(ssl.SSLObject):
    """An ``SSLObject`` that a :func:`capture_handshakes` block can find again (asyncio
    makes one per handshake and drops it when the handshake fails).  Blocking sockets
    close theirs on a failed handshake, so there is nothing to find there."""

    @classmethod
    def _create(cls, *args: Any, **kwargs: Any) -> CapturingSSLObject:
        obj: CapturingSSLObject = super()._create(*args, **kwargs)  # type: ignore[misc]
        _remember(obj)
        return obj


def _remember(obj: ssl.SSLObject | ssl.SSLSocket) -> None:
    seen = _CAPTURE.get()
    if seen is not None:
        seen.append(obj)


@contextlib.contextmanager
def capture_handshakes() -> Iterator[list[ssl.SSLObject | ssl.SSLSocket]]:
    """Collect the SSL objects made in this block (by this task) with a context that
    :func:`smtpshell.tls.make_client_context` made; the last one is the latest handshake.

    asyncio runs the handshake in callbacks that copy the caller's context, so the list
    is shared with them; other tasks (other sessions on the same context) have their own.
    """
    seen: list[ssl.SSLObject | ssl.SSLSocket] = []
    token = _CAPTURE.set(seen)
    try:
        yield seen
    finally:
        _CAPTURE.reset(token)
