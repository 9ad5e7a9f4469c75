"""/mx, /dane, /mta-sts: where mail for a domain goes, and whether its TLS is protected.

The results of the lookups (``smtpshell.mailsec``: MX, TLSA, the MTA-STS policy) become
session ``MailCheck`` events here, for the screen (the renderer escapes them) and for a
transcript (``== mx``, ``== dane``, ``== mta-sts``); ``PeerPolicy`` is the check the
session runs after each handshake.  The command line's ``--mx`` (``cli/mailsec.py``) uses
the same helpers.  dnspython is imported only inside the functions that look something
up, so loading the shell's commands does not load it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...session import MailCheck
from .registry import Arg, Kind, command

if TYPE_CHECKING:
    from ...mailsec.dane import TlsaLookup
    from ...mailsec.dnsclient import Resolver
    from ...mailsec.mta_sts import StsLookup
    from ...mailsec.mx import MxResult
    from ...tls import TlsReport
    from ..core import ShellCore

RULES: dict[str, tuple[str, ...]] = {
    "mx": (
        "MX records are tried lowest preference first (RFC 5321 §5.1)",
        "no MX records: the domain's own A/AAAA is its mail host, 'implicit MX' (RFC 5321 §5.1)",
        "a single 'MX 0 .' is a null MX: the domain accepts no mail (RFC 7505 §3)",
        "TLS verification and SNI use the MX host name (RFC 7672 §3.2.2, RFC 8461 §4.1)",
    ),
    "dane": (
        "TLSA records live at _PORT._tcp.MXHOST (RFC 7672 §2.2.3)",
        "they count only when the resolver says the answers are DNSSEC-validated: the AD"
        " bit (RFC 7672 §2.2)",
        "usable for SMTP: DANE-TA(2) and DANE-EE(3); PKIX-TA(0) and PKIX-EE(1) are not"
        " (RFC 7672 §3.1.3)",
        "DANE-EE: the server's own certificate or key matches; no name or expiry check"
        " (RFC 7672 §3.1.1)",
        "DANE-TA: the chain leads to the matched anchor and the name matches (RFC 7672"
        " §3.1.2, §3.2)",
        "usable records present: TLS is mandatory and a mismatch means do not deliver"
        " (RFC 7672 §2.2, §3.1)",
    ),
    "mta-sts": (
        "TXT _mta-sts.DOMAIN says 'v=STSv1; id=…' (RFC 8461 §3.1)",
        "the policy comes over HTTPS from mta-sts.DOMAIN/.well-known/mta-sts.txt: a valid"
        " certificate, no redirects, text/plain, at most 64 KB (RFC 8461 §3.3)",
        "mode enforce|testing|none, mx patterns ('*.' matches one label), max_age (RFC 8461"
        " §3.2, §4.1)",
        "enforce: the MX host must match a pattern, and STARTTLS with a certificate valid for"
        " it is required (RFC 8461 §4, §5); testing: report only",
    ),
}


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _host_key(name: str) -> str:
    return name.rstrip(".").lower()


# ---- lookups in words ---------------------------------------------------------------------


def mx_check(result: MxResult) -> MailCheck:
    """The MX lookup as an event: its lines and the transcript's fields."""
    hosts = ", ".join(
        f"{'' if result.implicit else str(h.preference) + ' '}{h.name}"
        f" {' '.join(h.addresses) if h.addresses else '(no address)'}" for h in result.hosts)
    if result.more:
        hosts += f", … and {result.more} more"  # not looked up (mx.MAX_HOSTS)
    fields: list[tuple[str, str]] = [("domain", result.domain)]
    if result.null_mx:
        fields.append(("null", "yes"))
    elif result.nxdomain:
        fields.append(("nxdomain", "yes"))
    else:
        fields.append(("hosts", hosts))
        if result.implicit:
            fields.append(("implicit", "yes"))
    fields.append(("validated", _yes(result.validated)))
    return MailCheck(kind="mx", lines=tuple(result.lines()), fields=tuple(fields),
                     warning=result.null_mx or result.nxdomain or not result.usable_hosts())


def dane_unusable(lookup: TlsaLookup, mx_validated: bool,
                  addresses_validated: bool = True) -> str | None:
    """Why DANE cannot be used for this host, or None: the TLSA records' own reason, an MX
    answer or address records that were not validated (RFC 7672 §2.2)."""
    reason = lookup.unusable_reason()
    if reason is None and not mx_validated:
        return "the MX answer was not DNSSEC-validated (RFC 7672 §2.2)"
    if reason is None and not addresses_validated:
        return "the host's address records were not DNSSEC-validated (RFC 7672 §2.2)"
    return reason


def tlsa_check(host: str, port: int, found: TlsaLookup | str, *, mx_validated: bool,
               enforce: bool, addresses_validated: bool = True) -> MailCheck:
    """What DNS said about ``_PORT._tcp.HOST`` (``found`` is the DNS error's line when the
    query failed)."""
    if isinstance(found, str):
        what = ("--dane: this host is not connected to; RFC 7672 §2.2: a failed lookup is"
                " not 'no records', the host cannot be used securely" if enforce else
                "DANE status unknown; information only: the host is used (--dane skips such"
                " a host, RFC 7672 §2.2)")
        return MailCheck(
            kind="dane", warning=True,
            lines=(f"TLSA _{port}._tcp.{host}: the lookup failed: {found} ({what})",),
            fields=(("host", host), ("result", "lookup-failed"), ("reason", found)))
    reason = dane_unusable(found, mx_validated, addresses_validated)
    lines = list(found.lines())
    if reason is None:
        lines.append("  DANE applies: "
                     + ("the certificate is checked against these records after the handshake"
                        if enforce else "shown as information (add --dane to enforce it)"))
    elif found.unusable_reason() is None:  # the records are fine, the MX or A answer not
        lines.append(f"  DANE cannot be used: {reason}")
    fields = [("host", host), ("name", found.name),
              ("records", "; ".join(r.text() for r in found.records) or "none"),
              ("validated", _yes(found.validated)), ("usable", _yes(reason is None))]
    if reason is not None:
        fields.append(("reason", reason))
    return MailCheck(kind="dane", lines=tuple(lines), fields=tuple(fields))


def sts_check(found: StsLookup) -> MailCheck:
    """The MTA-STS TXT record and policy as an event."""
    policy = found.policy
    fields: list[tuple[str, str]] = [("domain", found.domain), ("url", found.url)]
    if found.txt_id is not None:
        fields.append(("id", found.txt_id))
    if policy is not None:
        fields += [("mode", policy.mode), ("mx", " ".join(policy.mx)),
                   ("max-age", str(policy.max_age))]
    if found.problem:
        fields.append(("problem", found.problem))
    return MailCheck(kind="mta-sts", lines=tuple(found.lines()), fields=tuple(fields),
                     warning=policy is None and found.txt_id is not None)


# ---- after the handshake ------------------------------------------------------------------


@dataclass
class PeerPolicy:
    """The session's ``peer_check``: DANE and MTA-STS on each finished handshake.

    ``tlsa`` maps MX host names to their TLSA lookup (or the DNS error's line).  ``dane``
    and ``sts_enforce`` say whether a failure ends the connection (``--dane``,
    ``--mta-sts``); otherwise the results are information.
    """

    port: int
    tlsa: dict[str, TlsaLookup | str] = field(default_factory=dict)
    mx_validated: bool = False
    insecure_addresses: frozenset[str] = frozenset()
    """Hosts whose A/AAAA answers were not validated: their TLSA records are not used."""
    dane: bool = False
    sts: StsLookup | None = None
    sts_enforce: bool = False
    cafile: str | None = None
    capath: str | None = None

    def __call__(self, host: str, port: int, report: TlsReport) -> list[MailCheck]:
        chain = report.sent
        checks = []
        found = self.tlsa.get(_host_key(host))
        dane_ok = False
        if found is not None:
            dane = self._dane(host, found, chain)
            dane_ok = dict(dane.fields).get("result") == "match"
            checks.append(dane)
        if self.sts is not None and dane_ok:
            words = (f"not applied: DANE authenticated {host} and takes precedence"
                     " (RFC 8461 §2)")
            checks.append(MailCheck(
                kind="mta-sts", lines=(f"MTA-STS {words}",), report_line=f"MTA-STS {words}",
                fields=(("domain", self.sts.domain), ("host", host), ("result", "not-applied"),
                        ("reason", "DANE authenticated the host"))))
        elif self.sts is not None:
            checks.append(self._sts(host, report, chain))
        return checks

    def _dane(self, host: str, found: TlsaLookup | str, chain: Sequence[bytes]) -> MailCheck:
        from ...mailsec.dane import check_chain

        fields: list[tuple[str, str]] = [("host", host)]
        if isinstance(found, str):
            failure = f"DANE: the TLSA lookup failed ({found})" if self.dane else None
            return MailCheck(kind="dane", warning=True, failure=failure,
                             lines=(f"DANE: not checked: the TLSA lookup failed: {found}",),
                             fields=(*fields, ("result", "lookup-failed"), ("reason", found)),
                             report_line=f"DANE not checked: the TLSA lookup failed: {found}")
        reason = dane_unusable(found, self.mx_validated,
                               _host_key(host) not in self.insecure_addresses)
        if reason is not None:
            words = f"not used: {reason}; the certificate is checked as usual (PKIX)"
            return MailCheck(kind="dane", lines=(f"DANE {words}",),
                             fields=(*fields, ("result", "not-used"), ("reason", reason)),
                             report_line=f"DANE {words}")
        if not chain:
            verdict_ok, lines, why = False, ["DANE: FAILED — no certificate chain to match"], (
                "this Python's ssl module gave no certificate chain")
            matched = None
        else:
            verdict = check_chain(found, chain, host)
            verdict_ok, lines, why, matched = (verdict.ok, verdict.lines(), verdict.reason,
                                               verdict.matched)
        enforced = " (--dane: the connection is not used)" if self.dane else (
            " (information only: add --dane to enforce it)")
        if not verdict_ok:
            lines[0] += enforced
        fields += [("name", found.name), ("result", "match" if verdict_ok else "fail")]
        if matched is not None:
            fields.append(("matched", matched.text()))
        fields.append(("reason", why))
        proof = None
        if verdict_ok and self.dane and matched is not None:
            proof = f"verified by DANE: TLSA {matched.describe()} matched (RFC 7672 §3.1)"
        return MailCheck(
            kind="dane", lines=tuple(lines), fields=tuple(fields), warning=not verdict_ok,
            failure=(f"DANE: the server's certificate matches no usable TLSA record of"
                     f" {found.name} (RFC 7672 §3.1)") if (self.dane and not verdict_ok) else None,
            report_line="DANE " + lines[0].removeprefix("DANE: ").removeprefix("DANE "),
            authenticates=proof)

    def _sts(self, host: str, report: TlsReport, chain: Sequence[bytes]) -> MailCheck:
        from ...mailsec.mta_sts import check

        assert self.sts is not None
        valid, error = self._pkix(host, report, chain)
        verdict = check(self.sts, host, tls=True, cert_valid=valid, cert_error=error)
        lines = list(verdict.lines())
        enforced = self.sts_enforce and verdict.enforce
        if lines and not verdict.ok:
            lines[0] += (" (--mta-sts: the connection is not used)" if enforced
                         else "" if not verdict.enforce else
                         " (information only: add --mta-sts to enforce it)")
        fields = (("domain", self.sts.domain), ("host", host),
                  ("mode", self.sts.policy.mode if self.sts.policy else "none"),
                  ("result", "ok" if verdict.ok else "fail"), ("reason", verdict.reason))
        head = lines[0].removeprefix("MTA-STS").lstrip(": ") if lines else ""
        return MailCheck(
            kind="mta-sts", lines=tuple(lines) or (f"MTA-STS: {verdict.reason}",),
            fields=fields,
            warning=not verdict.ok or any(c.startswith("FAIL") for c in verdict.checks),
            failure=f"MTA-STS: {verdict.reason}" if (enforced and not verdict.ok) else None,
            report_line=f"MTA-STS {head}: {verdict.reason}")

    def _pkix(self, host: str, report: TlsReport,
              chain: Sequence[bytes]) -> tuple[bool, str | None]:
        """Is the certificate valid for ``host`` by the CAs (RFC 8461 §4.2)?"""
        if report.path and report.verified:
            return True, None  # the handshake verified it, host name included
        if not chain:
            return False, "no certificate to check"
        from ...tls.verify import would_verify

        ok, words = would_verify(chain[0], tuple(chain[1:]), host, cafile=self.cafile,
                                 capath=self.capath)
        return bool(ok), None if ok else words


# ---- lookups from the shell ---------------------------------------------------------------


def make_resolver(server: tuple[str, int] | None, timeout: float) -> Resolver:
    from ...mailsec.dnsclient import Resolver

    return Resolver(server, timeout=timeout)


def look_up_domain(resolver: Resolver, domain: str, port: int) -> list[MailCheck]:
    """MX of ``domain`` and the TLSA records of each host (blocking: run it in a thread).
    A failed MX query is one ``mx`` event with the error's line."""
    from ...mailsec.dane import lookup_tlsa
    from ...mailsec.dnsclient import DnsError
    from ...mailsec.mx import lookup_mx

    try:
        result = lookup_mx(resolver, domain)
    except DnsError as exc:
        return [MailCheck(kind="mx", lines=(f"MX lookup for {domain} failed: {exc}",),
                          fields=(("domain", domain), ("error", str(exc))), warning=True)]
    checks = [mx_check(result)]
    for host in result.usable_hosts():
        found: TlsaLookup | str
        try:
            found = lookup_tlsa(resolver, host.name, port)
        except DnsError as exc:
            found = str(exc)
        checks.append(tlsa_check(host.name, port, found, mx_validated=result.validated,
                                 enforce=False, addresses_validated=host.validated))
    return checks


def _resolver_for(core: ShellCore) -> Resolver:
    options = core.options
    return make_resolver(options.resolver, options.connect_timeout)


def _domain_arg(core: ShellCore, args: str, usage: str) -> str | None:
    words = args.split()
    if len(words) != 1:
        core.renderer.error(f"usage: {usage}")
        return None
    domain = words[0]
    try:
        domain.encode("idna")
    except UnicodeError:
        core.renderer.error(f"not a domain name: {domain}")
        return None
    return domain


@command("mx", "look up where mail for a domain goes (MX, and DANE's TLSA records of each"
         " host) without connecting", args=(Arg("DOMAIN", Kind.TEXT),))
async def _mx(core: ShellCore, args: str) -> None:
    domain = _domain_arg(core, args, "/mx DOMAIN")
    if domain is None:
        return
    port = core.options.port
    try:
        checks = await asyncio.to_thread(look_up_domain, _resolver_for(core), domain, port)
    except ValueError as exc:  # a name dnspython refuses
        core.renderer.error(str(exc))
        return
    for check in checks:
        core.session.publish_check(check)  # shown, kept for /dane, recorded
    core.renderer.info("/dane and /mta-sts explain the rules; /explain DANE, /explain MTA-STS")


def _show(core: ShellCore, kind: str, title: str, empty: str) -> None:
    found = [c for c in core.session.mail_checks if c.kind == kind]
    if not found:
        core.renderer.info(empty)
    for check in found:
        for index, line in enumerate(check.lines):
            core.renderer.write(f"  {line}" if index else f"* {line}")
    core.renderer.info(f"the rules {title} follows:")
    for rule in RULES[kind]:
        core.renderer.write(f"  - {rule}")


@command("dane", "show the DANE results of this session (TLSA lookups, the certificate"
         " check) and the rules behind them")
async def _dane(core: ShellCore, args: str) -> None:
    _show(core, "dane", "DANE for SMTP (RFC 7672)",
          "no DANE results yet: connect with --mx DOMAIN (--dane enforces them), or /mx DOMAIN")


@command("mta-sts", "show the MTA-STS policy and verdict of this session, or fetch a"
         " domain's policy", args=(Arg("DOMAIN", Kind.TEXT, optional=True),))
async def _mta_sts(core: ShellCore, args: str) -> None:
    if args.strip():
        domain = _domain_arg(core, args, "/mta-sts [DOMAIN]")
        if domain is None:
            return
        from ...mailsec import mta_sts

        tls_options = core.options.tls
        try:
            found = await asyncio.to_thread(
                mta_sts.lookup, domain, _resolver_for(core), cafile=tls_options.cafile,
                capath=tls_options.capath, timeout=core.options.connect_timeout)
        except ValueError as exc:
            core.renderer.error(str(exc))
            return
        core.session.publish_check(sts_check(found))
    _show(core, "mta-sts", "MTA-STS (RFC 8461)",
          "no MTA-STS results yet: connect with --mx DOMAIN --mta-sts, or /mta-sts DOMAIN")
