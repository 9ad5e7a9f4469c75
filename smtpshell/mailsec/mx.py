"""Where mail for a domain goes: MX records, implicit MX and null MX.

RFC 5321 §5.1: the MX records of the domain, lowest preference first, each host's
addresses from its A and AAAA records; a domain without MX records (but existing) is its
own mail host ("implicit MX", its A/AAAA); RFC 7505: a single ``MX 0 .`` ("null MX") says
that the domain accepts no mail at all, and a sender gives up at once.

Equal preferences: the RFC asks senders to spread their load by picking among them at
random. smtpshell is for testing and teaching, where the same run should try the same
host, so it keeps them in name order and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from .dnsclient import Answer, DnsError, Resolver

__all__ = ["MxHost", "MxResult", "lookup_mx"]

MAX_HOSTS = 10
"""MX hosts whose addresses are looked up; the others are only counted (``MxResult.more``),
shown as one line (a hostile answer can hold thousands of MX records; Postfix tries at
most 5 addresses)."""
MAX_TIMEOUTS = 2
"""After this many address queries that got no answer in time, the remaining hosts are not
looked up: a resolver that stopped answering would otherwise cost two timeouts per host."""

EQUAL_PREFERENCES = ("equal preferences are tried in name order here, so each run tries the "
                     "same host (RFC 5321 §5.1 asks senders to pick among them at random)")


@dataclass(frozen=True)
class MxHost:
    name: str  # host name without the final dot ("mx1.example.com"), presentation form
    preference: int
    addresses: tuple[str, ...]  # IPv4 first, then IPv6, each in the resolver's order
    error: str | None = None  # why there are no addresses, in one line
    # the A and AAAA answers both had AD: DANE uses the TLSA records of a host only when its
    # address records are DNSSEC-validated too (RFC 7672 §2.2)
    validated: bool = False


@dataclass(frozen=True)
class MxResult:
    domain: str  # without the final dot
    hosts: tuple[MxHost, ...]  # ordered by preference (RFC 5321 §5.1)
    implicit: bool  # no MX: the domain itself (A/AAAA) is the host, RFC 5321 §5.1
    null_mx: bool  # RFC 7505 "0 ." — no mail accepted
    validated: bool  # the MX answer had AD
    nxdomain: bool = False  # the domain does not exist
    notes: tuple[str, ...] = ()  # oddities seen on the way, one line each
    more: int = 0  # MX hosts after the first MAX_HOSTS: not looked up, not kept

    def more_line(self) -> str | None:
        """``… and N more MX hosts not looked up (only the first 10 are)``, or None."""
        if not self.more:
            return None
        return (f"… and {self.more} more MX host{'s' if self.more != 1 else ''} not looked up"
                f" (only the first {MAX_HOSTS} are)")

    def lines(self) -> list[str]:
        """The result in words, with the RFC section of each rule."""
        signed = ("DNSSEC-validated (the resolver set AD)" if self.validated
                  else "not DNSSEC-validated (no AD bit)")
        out: list[str] = []
        if self.nxdomain:
            out.append(f"{self.domain}: no such domain (NXDOMAIN): there is nowhere to deliver "
                       f"mail for it; {signed}")
        elif self.null_mx:
            out.append(f"{self.domain} has a null MX (\"MX 0 .\"): it accepts no mail at all "
                       f"(RFC 7505 §3); {signed}")
        elif self.implicit:
            out.append(f"{self.domain} has no MX records: the domain itself is its mail host "
                       f"(implicit MX, RFC 5321 §5.1); {signed}")
        else:
            count = len(self.hosts) + self.more
            out.append(f"MX for {self.domain}: {count} host{'s' if count != 1 else ''}, lowest "
                       f"preference first (RFC 5321 §5.1); {signed}")
        for host in self.hosts:
            where = (", ".join(host.addresses) if host.addresses
                     else f"no address: {host.error or 'no A/AAAA records'}")
            pref = "" if self.implicit else f"{host.preference:>5}  "
            out.append(f"  {pref}{host.name}  {where}")
        more = self.more_line()
        if more:
            out.append(f"  {more}")
        preferences = [h.preference for h in self.hosts]
        if len(set(preferences)) < len(preferences):
            out.append(f"  ({EQUAL_PREFERENCES})")
        out.extend(f"  note: {note}" for note in self.notes)
        return out

    def usable_hosts(self) -> tuple[MxHost, ...]:
        """The hosts with at least one address, in the order to try them."""
        return tuple(h for h in self.hosts if h.addresses)


def host_addresses(resolver: Resolver, name: str,
                   timeouts: list[DnsError] | None = None,
                   ) -> tuple[tuple[str, ...], str | None, bool]:
    """A then AAAA of ``name``: (addresses, None, validated) or ((), why not, validated).
    A DNS failure of one type is the error only when the other type gave nothing either;
    validated: both answers came, with AD. Queries that timed out are added to
    ``timeouts``."""
    addresses: list[str] = []
    errors: list[str] = []
    nxdomain = False
    validated = True
    for rdtype in ("A", "AAAA"):
        try:
            answer = resolver.query(name, rdtype)
        except DnsError as exc:
            errors.append(str(exc))
            validated = False
            if exc.kind == "timeout" and timeouts is not None:
                timeouts.append(exc)
            continue
        nxdomain = nxdomain or answer.nxdomain
        validated = validated and answer.validated
        addresses.extend(r.address for r in answer.records)
    if addresses:
        return tuple(addresses), None, validated
    if errors:
        return (), errors[0], validated
    if nxdomain:
        return (), "no such host (NXDOMAIN)", validated
    return (), "no A/AAAA records", validated


def _absolute(domain: str) -> str:
    return domain if domain.endswith(".") else domain + "."


def lookup_mx(resolver: Resolver, domain: str) -> MxResult:
    """The mail hosts of ``domain`` (raises DnsError when the MX query itself fails)."""
    answer: Answer = resolver.query(_absolute(domain), "MX")
    shown = answer.name.rstrip(".") or "."
    if answer.nxdomain:
        return MxResult(shown, (), implicit=False, null_mx=False, validated=answer.validated,
                        nxdomain=True)
    notes: list[str] = []
    if answer.canonical:
        target = answer.canonical.rstrip(".")
        notes.append(f"{shown} is an alias (CNAME) of {target}; its MX records are used "
                     "(RFC 5321 §5.1)")
    if not answer.records:
        addresses, error, signed = host_addresses(resolver, answer.canonical or answer.name)
        host = MxHost(shown, 0, addresses, error, signed)
        return MxResult(shown, (host,), implicit=True, null_mx=False,
                        validated=answer.validated, notes=tuple(notes))
    records = sorted(answer.records, key=lambda r: (r.preference, r.exchange.to_text().lower()))
    null = [r for r in records if r.exchange.to_text() == "."]
    if null and len(records) == 1:
        return MxResult(shown, (), implicit=False, null_mx=True, validated=answer.validated,
                        notes=tuple(notes) + (() if records[0].preference == 0 else (
                            f"the null MX has preference {records[0].preference}, not 0 "
                            "(RFC 7505 §3 says 0); taken as a null MX all the same",)))
    if null:
        notes.append("a null MX (\".\") stands among other MX records, which RFC 7505 §3 "
                     "forbids; it is left out and the other hosts are used")
    hosts: list[MxHost] = []
    timeouts: list[DnsError] = []
    more = 0
    for record in records:
        if record.exchange.to_text() == ".":
            continue
        if len(hosts) >= MAX_HOSTS:
            more += 1  # counted only: thousands of names would make thousands of lines
            continue
        name = record.exchange.to_text(omit_final_dot=True)
        preference = int(record.preference)
        if len(timeouts) >= MAX_TIMEOUTS:
            hosts.append(MxHost(name, preference, (), "not looked up: the resolver did not "
                                f"answer {len(timeouts)} address queries in time"))
            continue
        addresses, error, signed = host_addresses(resolver, record.exchange.to_text(),
                                                  timeouts)
        hosts.append(MxHost(name, preference, addresses, error, signed))
    return MxResult(shown, tuple(hosts), implicit=False, null_mx=False,
                    validated=answer.validated, notes=tuple(notes), more=more)
