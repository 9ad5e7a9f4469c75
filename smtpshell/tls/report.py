"""The TLS report: what a finished handshake gave us, in words for the user.

Certificates are summarised from what ``ssl`` decoded, so a verified session never loads
``cryptography``; an unverified one does (to say why it would not verify), and so does
showing a chain that ``ssl`` did not decode (Python >= 3.13 gives the chain as DER only).

Every line :func:`render_report` returns has gone through ``escapes.for_terminal``:
subjects, issuers and names are the server's text.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..escapes import for_terminal
from .certinfo import CertInfo, format_date, info_from_ssl, is_ip, peer_chains
from .options import TlsOptions
from .verify import check_pins, store_words, summarise, would_verify

__all__ = ["TlsReport", "build_report", "render_report"]


@dataclass(frozen=True)
class TlsReport:
    """What a finished handshake gave us, for the user to read."""

    version: str  # "TLSv1.3"
    cipher: str
    bits: int
    peer: CertInfo | None
    verified: bool  # the peer's identity is established (CA + host name, or a pin)
    verification: str  # the same in words, with the reason when not verified
    sni: str | None  # the name sent as SNI; None when none was sent
    sent: tuple[bytes, ...] = ()
    """The certificates the server sent, in its order (DER): () where ``ssl`` cannot say."""
    path: tuple[bytes, ...] = ()
    """The path the verifier built, leaf to trusted CA (DER): () when no CA verified it."""
    store: str = "system CAs"
    """Where the verifier's trusted CAs come from, in words."""
    checks: tuple[str, ...] = ()
    """Lines of the checks made after the handshake (DANE, MTA-STS): ``LABEL words``."""
    known: dict[bytes, CertInfo] = field(default_factory=dict, compare=False, repr=False)
    """Summaries already made (without ``cryptography``); :meth:`info` adds to it."""

    def info(self, der: bytes) -> CertInfo | None:
        """The summary of one certificate of ``sent`` or ``path`` (None: unparseable)."""
        if der not in self.known:
            info = summarise(der)
            if info is None:
                return None
            self.known[der] = info
        return self.known[der]

    @property
    def missing(self) -> tuple[bytes, ...]:
        """Intermediates on the verified path that the server did not send (the verifier
        found them locally; other clients may not).  The last certificate of the path counts
        too unless it is a self-signed root: Python 3.13's default context trusts an
        intermediate in the store as an anchor (``VERIFY_X509_PARTIAL_CHAIN``)."""
        found = []
        for index, der in enumerate(self.path[1:], 1):
            if der in self.sent:
                continue
            if index == len(self.path) - 1:
                info = self.info(der)
                if info is None or info.self_signed:
                    continue
            found.append(der)
        return tuple(found)


def build_report(
    ssl_object: ssl.SSLObject | ssl.SSLSocket, opts: TlsOptions, host: str
) -> TlsReport:
    """Describe a finished handshake on ``ssl_object`` made with ``opts`` to ``host``."""
    cipher = ssl_object.cipher()
    der = ssl_object.getpeercert(binary_form=True)
    verifying = ssl_object.context.verify_mode != ssl.CERT_NONE
    chains = peer_chains(ssl_object, verified=verifying)
    known: dict[bytes, CertInfo] = {}
    for item, decoded in chains.decoded.items():
        info = info_from_ssl(item, decoded)
        if info is not None:
            known[item] = info
    peer = None
    if der:
        peer = known.get(der)
        if peer is None:
            peer = summarise(der, ssl_object.getpeercert() or {})
            if peer is not None:
                known[der] = peer
    sent = chains.sent or ((der,) if der else ())
    name = opts.server_name or host
    verified, words = _verification(verifying, ssl_object.context, opts, name, der, sent)
    return TlsReport(
        version=ssl_object.version() or "unknown",
        cipher=cipher[0] if cipher else "unknown",
        bits=cipher[2] if cipher else 0,
        peer=peer,
        verified=verified,
        verification=words,
        sni=None if opts.no_sni or is_ip(name) else name,
        sent=sent if chains.sent else (),
        path=chains.verified,
        store=store_words(opts.cafile, opts.capath),
        known=known,
    )


def _verification(
    verifying: bool,
    ctx: ssl.SSLContext,
    opts: TlsOptions,
    name: str,
    der: bytes | None,
    sent: tuple[bytes, ...],
) -> tuple[bool, str]:
    if der is None:
        return False, "NOT verified: the server sent no certificate"
    others = tuple(item for item in sent if item != der)
    if opts.pins:
        problem = check_pins(der, opts.pins)
        if problem is not None:
            return False, f"pin MISMATCH: {problem}"
        _, would = would_verify(der, others, name, cafile=opts.cafile, capath=opts.capath)
        return True, f"pinned: fingerprint matches (CA check: {would})"
    where = store_words(opts.cafile, opts.capath)
    if opts.dane and not verifying:
        _, would = would_verify(der, others, name, cafile=opts.cafile, capath=opts.capath)
        return False, f"by DANE after the handshake (PKIX, not required: {would})"
    if verifying:
        if ctx.check_hostname:
            return True, f"verified against {where} for host {name}"
        return True, f"chain verified against {where}; host name NOT checked"
    _, would = would_verify(der, others, name, cafile=opts.cafile, capath=opts.capath)
    label = "--insecure" if opts.insecure else "no verification"
    return False, f"NOT verified ({label}): {would}"


# --- rendering ------------------------------------------------------------------------------


def render_report(
    report: TlsReport, *, show_chain: bool = False, now: datetime | None = None
) -> list[str]:
    """Short aligned lines for the user, terminal-safe; ``now`` is for tests.

    ``show_chain`` adds the certificates the server sent, in its order, and apart from them
    the path the verifier built (where the trusted CA comes from the local store, not
    from the server), naming intermediates the server left out.
    """
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
    lines += [_line(*check.split(" ", 1)) if " " in check else check
              for check in report.checks]
    if show_chain:
        lines += _chain_lines(report)
    return [for_terminal(line) for line in lines]


def _chain_lines(report: TlsReport) -> list[str]:
    lines: list[str] = []
    if not report.sent:
        return [_line("sent", "not available from this Python's ssl module (leaf only)")]
    count = len(report.sent)
    lines.append(_line("sent", f"{count} certificate{'s' if count != 1 else ''},"
                               " in the order the server sent them:"))
    for index, der in enumerate(report.sent):
        lines.append(_line("", f"[{index}] {_describe(report, der)}"))
    if not report.path:
        lines.append(_line("path", "none built: the certificate was not verified against a CA"))
        last = report.info(report.sent[-1])
        if last is not None and not last.self_signed:
            lines.append(_line("", f"the issuer of [{count - 1}], {last.issuer or '(empty)'},"
                                   " was not sent (fine for a root CA; an intermediate must be"
                                   " sent)"))
        return lines
    lines.append(_line("path", f"built by the verifier, from the server's certificate to a CA"
                               f" in {report.store}:"))
    missing = report.missing
    for index, der in enumerate(report.path):
        if der in report.sent:
            where = "sent by the server"
        elif der in missing:
            where = f"NOT sent by the server: found in {report.store}"
        else:
            where = f"trusted CA from {report.store}, not sent"
        lines.append(_line("", f"[{index}] {_describe(report, der)}  [{where}]"))
    for der in missing:
        info = report.info(der)
        subject = info.subject if info else "(unparseable)"
        lines.append(_line("missing", f"intermediate {subject} was not sent by the server;"
                                      " clients without it in their store will refuse it"))
    return lines


def _describe(report: TlsReport, der: bytes) -> str:
    info = report.info(der)
    if info is None:
        return "(a certificate that cannot be parsed)"
    issued = "self-signed" if info.self_signed else f"issued by {info.issuer or '(empty)'}"
    return f"{info.subject or '(empty)'}  ({issued})"


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
