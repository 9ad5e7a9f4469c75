"""``smtpshell --mx DOMAIN [PORT]``: the lookups made before connecting (issue 17).

DNS (MX, the A/AAAA of each host, TLSA at ``_PORT._tcp.HOST``) and the MTA-STS policy are
looked up here, in the front end, before the session exists; the session gets the hosts to
try (``ConnectOptions.route``), what was found (``lookups``, published as events when it
connects) and the check to run after each handshake (``peer_check``: DANE, MTA-STS).
This module, and with it dnspython, is imported only when ``--mx`` or ``--resolver`` is
given.

Exit statuses (``status.py``): a DNS failure, a domain that does not exist, a null MX or
no host with an address is a connect-stage failure (3), said in one line; a DANE or
enforced MTA-STS failure after the handshake is a TLS-stage failure (4), decided by the
session.
"""

from __future__ import annotations

import argparse
import socket
from dataclasses import replace

from ..context import Environment
from ..mailsec.dane import TlsaLookup, lookup_tlsa
from ..mailsec.dnsclient import DnsError, parse_resolver
from ..mailsec.mx import lookup_mx
from ..session import ConnectOptions, Hop, MailCheck
from ..status import ExitStatus
from ..ui.commands.mailsec import (
    PeerPolicy,
    dane_unusable,
    make_resolver,
    mx_check,
    sts_check,
    tlsa_check,
)
from .common import UsageError, check_file, parse_target


def mx_target(args: argparse.Namespace, default_port: int) -> tuple[str, int]:
    """``--mx DOMAIN [PORT]``: the domain and port (the positional holds only the port)."""
    if args.port is not None:
        raise UsageError("--mx DOMAIN replaces the host: give at most a PORT after the options")
    if args.unix:
        raise UsageError("--mx and --unix do not go together")
    if ":" in args.mx:
        raise UsageError(f"--mx takes a domain, not a host and port: {args.mx}")
    port_text = args.target
    domain, port = parse_target(args.mx, None, default_port)
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"invalid port: {port_text}: --mx DOMAIN takes its hosts from"
                             " DNS, give only a PORT after the options (a host, or a"
                             " profile's host, contradicts --mx)")
        port = int(port_text)
    return domain.rstrip(".") or domain, port


def _resolver_address(args: argparse.Namespace) -> tuple[str, int] | None:
    if args.resolver is None:
        return None
    try:
        return parse_resolver(args.resolver)
    except ValueError as exc:
        raise UsageError(f"--resolver: {exc}") from None


def prepare(args: argparse.Namespace, options: ConnectOptions, env: Environment) -> ConnectOptions:
    """Look up what ``--mx`` asks for and return the options the session connects with."""
    server = _resolver_address(args)
    options = replace(options, resolver=server)
    if args.mx is not None and args.unix:  # the shell's options took --unix's "localhost"
        raise UsageError("--mx and --unix do not go together: --mx DOMAIN finds the hosts"
                         " to connect to in DNS")
    if args.mx is None:
        if args.dane or args.mta_sts or args.mta_sts_url:
            raise UsageError("--dane and --mta-sts check the MX hosts of a domain:"
                             " add --mx DOMAIN")
        return options  # --resolver alone: for /mx and /mta-sts in the shell
    enforce_sts = bool(args.mta_sts or args.mta_sts_url)
    if (args.dane or enforce_sts) and args.plain:
        raise UsageError("--dane and --mta-sts need TLS: drop --plain")
    if args.capath is not None:
        import os

        if not os.path.isdir(args.capath):
            raise UsageError(f"--capath: {args.capath} is not a directory")
    if args.mta_sts_url is not None:
        if not args.mta_sts_url.startswith("https://"):
            raise UsageError(f"--mta-sts-url: an https:// URL, not {args.mta_sts_url}")
    if args.cafile is not None:
        check_file("--cafile", args.cafile)
    domain, port = options.host, options.port
    resolver = make_resolver(server, options.connect_timeout)
    try:
        result = lookup_mx(resolver, domain)
    except DnsError as exc:
        raise UsageError(f"--mx {domain}: {exc}", ExitStatus.CONNECT) from None
    except ValueError as exc:
        raise UsageError(f"--mx: {exc}") from None
    first = result.lines()[0] if result.lines() else f"--mx {domain}: no answer"
    if result.nxdomain or result.null_mx:
        raise UsageError(first, ExitStatus.CONNECT)
    family = options.family
    hosts = [(host, tuple(a for a in host.addresses if _family_ok(a, family)))
             for host in result.usable_hosts()]
    hosts = [(host, addresses) for host, addresses in hosts if addresses]
    if not hosts:
        details = "; ".join(f"{h.name}: {h.error or 'no address of the family asked for'}"
                            for h in result.hosts) or "no hosts"
        more = result.more_line()
        if more:
            details += f"; {more}"
        raise UsageError(f"--mx {domain}: no MX host has an address to connect to ({details})",
                         ExitStatus.CONNECT)
    lookups: list[MailCheck] = [mx_check(result)]
    tlsa: dict[str, TlsaLookup | str] = {}
    route: list[Hop] = []
    skipped: list[str] = []
    for host, addresses in hosts:
        found: TlsaLookup | str
        try:
            found = lookup_tlsa(resolver, host.name, port)
        except DnsError as exc:
            found = str(exc)
        tlsa[host.name.rstrip(".").lower()] = found
        lookups.append(tlsa_check(host.name, port, found, mx_validated=result.validated,
                                  enforce=args.dane, addresses_validated=host.validated))
        if args.dane and isinstance(found, str):
            # RFC 7672 §2.2: a TLSA lookup that failed (not "no records") means the host
            # cannot be used securely; as Postfix's "dane" policy, it is not connected to
            skipped.append(f"{host.name}: {found}")
            continue
        dane = bool(args.dane) and not isinstance(found, str) and dane_unusable(
            found, result.validated, host.validated) is None
        preference = None if result.implicit else host.preference
        route += [Hop(name=host.name, address=address, preference=preference, dane=dane)
                  for address in addresses]
    if not route:  # --dane, and every host's TLSA lookup failed: connect to none
        count = len(skipped)
        raise UsageError(
            f"--dane: no MX host of {domain} can be used (RFC 7672 §2.2), none was connected"
            " to: the TLSA lookup failed for " + "; ".join(skipped[:3])
            + (f"; … and {count - 3} more" if count > 3 else ""), ExitStatus.TLS)
    sts = None
    if enforce_sts or args.mta_sts_url:
        from ..mailsec import mta_sts

        sts = mta_sts.lookup(domain, resolver, url=args.mta_sts_url, cafile=args.cafile,
                             capath=args.capath, timeout=options.connect_timeout)
        lookups.append(sts_check(sts))
    insecure = frozenset(h.name.rstrip(".").lower() for h, _ in hosts if not h.validated)
    policy = PeerPolicy(port=port, tlsa=tlsa, mx_validated=result.validated,
                        insecure_addresses=insecure,
                        dane=bool(args.dane), sts=sts, sts_enforce=enforce_sts,
                        cafile=args.cafile, capath=args.capath)
    tls_mode = options.tls_mode
    if (args.dane or enforce_sts) and tls_mode == "plain":
        tls_mode = "starttls"  # DANE and MTA-STS are about the TLS that follows
    return replace(options, tls_mode=tls_mode, route=tuple(route), lookups=tuple(lookups),
                   peer_check=policy)


def _family_ok(address: str, family: int) -> bool:
    if family == socket.AF_INET:
        return ":" not in address
    if family == socket.AF_INET6:
        return ":" in address
    return True
