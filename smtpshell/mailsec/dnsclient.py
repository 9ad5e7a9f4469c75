"""A small DNS client that tells whether its resolver validated the answer.

``Resolver(("127.0.0.1", 5353)).query("example.", "MX")`` asks that server, as
``dig @127.0.0.1 -p 5353 example. MX +dnssec`` does: one UDP query with EDNS and the DO
bit (so that a validating resolver sets AD, RFC 6840 §5.7/§5.8), the AD bit also set in
the query, and the same query again over TCP when the UDP answer comes back truncated
(TC, RFC 7766). The client does not validate DNSSEC itself: like Postfix it trusts the AD
bit of the resolver it was told to use (RFC 7672 §2.2), which should be on the same host
or reached over a trusted path.

An answer is an ``Answer``: the records of the asked type (CNAMEs in the answer section are
followed), whether the response carried AD, and whether the name does not exist.
Everything that is not an answer (no reply in time, SERVFAIL, REFUSED, a port that refuses,
a malformed reply) is a ``DnsError`` whose text is one line naming the server and the name.

Names and record data are kept as DNS presentation text (``mx\\027.example.`` for a label
holding ESC): that is what ``dig`` shows, and the printer still passes it through
``escapes.for_terminal``.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["Answer", "DnsError", "Resolver", "parse_resolver"]

DEFAULT_PORT = 53
UDP_PAYLOAD = 1232  # the EDNS buffer size of DNS flag day 2020


class DnsError(Exception):
    """A DNS query that got no usable answer; ``str(e)`` is one line. ``kind`` says which:
    "timeout", "unreachable", "rcode" (SERVFAIL, REFUSED…), "malformed", "name" (not a
    domain name), "config" (no system resolver)."""

    def __init__(self, message: str, kind: str = "rcode") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Answer:
    """What the resolver said about ``name`` and ``rdtype``."""

    name: str  # the name asked, in presentation form with the final dot
    rdtype: str  # "MX", "TLSA", …
    records: tuple[Any, ...]  # dnspython rdata objects of that type (empty: none)
    validated: bool  # the response carried the AD bit
    nxdomain: bool = False  # the name does not exist (RCODE 3)
    canonical: str = ""  # the name the records are at, after CNAMEs ("" when none)
    server: str = ""  # "127.0.0.1:5353"
    tcp: bool = False  # the answer came over TCP (the UDP one was truncated)


def format_server(server: tuple[str, int]) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_resolver(spec: str) -> tuple[str, int]:
    """``ADDR[:PORT]`` → (address, port): ``127.0.0.1``, ``127.0.0.1:5353``, ``::1``,
    ``[::1]:5353``. Only IP addresses: a name would need a resolver to find the resolver."""
    text = spec.strip()
    how = "expected an IP address with an optional port: 127.0.0.1, 127.0.0.1:5353, ::1, [::1]:5353"
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"not a resolver address: {spec!r} (no closing ']'; {how})")
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"not a resolver address: {spec!r} ({how})")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"not a resolver address: {spec!r} ({how})") from None
    if text.startswith("[") and address.version != 6:
        raise ValueError(f"not a resolver address: {spec!r} (brackets are for IPv6; {how})")
    port = DEFAULT_PORT
    if port_text or text.endswith(":"):
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
            raise ValueError(f"not a resolver port: {port_text!r} in {spec!r} (1-65535)")
        port = int(port_text)
    return str(address), port


def _system_servers() -> list[tuple[str, int]]:
    import dns.resolver

    try:
        system = dns.resolver.Resolver(configure=True)
    except dns.exception.DNSException as exc:
        raise DnsError(f"no system resolver configured ({exc}); give one with --resolver",
                       "config") from None
    servers = [(str(s), int(system.port)) for s in system.nameservers]
    if not servers:
        raise DnsError("no system resolver configured; give one with --resolver", "config")
    return servers


def shorten(text: str, limit: int = 80) -> str:
    """``text`` quoted, cut in the middle when longer than ``limit`` (an error stays one
    readable line)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit // 2]!r}…{text[-limit // 4:]!r} ({len(text)} characters)"


def _to_name(name: str) -> dns.name.Name:
    if not name.strip("."):
        raise DnsError(f"not a domain name: {name!r} (empty)", "name")
    try:
        return dns.name.from_text(name)
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        detail = str(exc).rstrip(".") or type(exc).__name__
        raise DnsError(f"not a domain name: {shorten(name)} ({detail})", "name") from None


class Resolver:
    """Queries one DNS server (or the system's, when ``server`` is None)."""

    def __init__(self, server: tuple[str, int] | None, *, timeout: float = 5.0) -> None:
        self.server = server
        self.timeout = timeout

    def describe(self) -> str:
        return format_server(self.server) if self.server else "the system's resolver"

    def query(self, name: str, rdtype: str) -> Answer:
        qname = _to_name(name)
        try:
            qtype = dns.rdatatype.from_text(rdtype)
        except dns.exception.DNSException:
            raise ValueError(f"not a DNS record type: {rdtype!r}") from None
        servers = [self.server] if self.server else _system_servers()
        error: DnsError | None = None
        for server in servers:
            try:
                return self._ask(server, qname, qtype)
            except DnsError as exc:
                error = exc
        assert error is not None
        raise error

    # ---- one server --------------------------------------------------------------------

    def _ask(self, server: tuple[str, int], qname: dns.name.Name,
             qtype: dns.rdatatype.RdataType) -> Answer:
        where = format_server(server)
        shown = f"{qname.to_text()} {dns.rdatatype.to_text(qtype)}"
        query = dns.message.make_query(qname, qtype, want_dnssec=True, payload=UDP_PAYLOAD)
        query.flags |= dns.flags.AD
        response = self._udp(query, server, where, shown)
        tcp = False
        if response.flags & dns.flags.TC:
            response = self._tcp(query, server, where, shown)
            tcp = True
        rcode = response.rcode()
        validated = bool(response.flags & dns.flags.AD)
        if rcode == dns.rcode.NXDOMAIN:
            return Answer(qname.to_text(), dns.rdatatype.to_text(qtype), (), validated,
                          nxdomain=True, server=where, tcp=tcp)
        if rcode != dns.rcode.NOERROR:
            text = dns.rcode.to_text(rcode)
            raise DnsError(f"{text} for {shown} from {where}"
                           + (" (the server could not get an answer)" if text == "SERVFAIL"
                              else " (the server will not answer this question)"
                              if text == "REFUSED" else ""))
        records, canonical = _records(response, qname, qtype)
        return Answer(qname.to_text(), dns.rdatatype.to_text(qtype), records, validated,
                      canonical=canonical, server=where, tcp=tcp)

    def _udp(self, query: dns.message.Message, server: tuple[str, int], where: str,
             shown: str) -> dns.message.Message:
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        wire = query.to_wire()
        deadline = time.monotonic() + self.timeout
        other: str | None = None  # a reply with our ID for another question: ignored
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                # connected, so that a closed port is ECONNREFUSED at once, not a timeout
                sock.connect(server)
                sock.send(wire)
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError
                    sock.settimeout(left)
                    data = sock.recv(65535)
                    try:
                        response = dns.message.from_wire(data, ignore_trailing=True)
                    except dns.message.Truncated:
                        # the header says TC but the records are cut: ask over TCP
                        return self._tcp(query, server, where, shown)
                    except dns.exception.DNSException as exc:
                        raise DnsError(f"malformed DNS reply from {where} for {shown} "
                                       f"({str(exc).rstrip('.')})", "malformed") from None
                    if query.is_response(response):
                        return response
                    # not ours (wrong id or question): keep waiting, as dig does; a reply
                    # with our ID but another question is remembered, to be said
                    if response.id == query.id and response.question:
                        asked = response.question[0]
                        other = (f"{asked.name.to_text()} "
                                 f"{dns.rdatatype.to_text(asked.rdtype)}")
        except TimeoutError:
            extra = "" if other is None else (
                f"; it answered for another question ({other}) with this query's ID,"
                " ignored as a possible forgery")
            raise DnsError(f"{where} did not answer within {self.timeout:g}s "
                           f"(asking {shown}{extra})", "timeout") from None
        except ConnectionRefusedError:
            raise DnsError(f"{where} refused the query: nothing listens there "
                           f"(asking {shown})", "unreachable") from None
        except OSError as exc:
            raise DnsError(f"cannot ask {where}: {exc.strerror or exc} (asking {shown})",
                           "unreachable") from None

    def _tcp(self, query: dns.message.Message, server: tuple[str, int], where: str,
             shown: str) -> dns.message.Message:
        try:
            response = dns.query.tcp(query, server[0], timeout=self.timeout, port=server[1])
        except dns.exception.Timeout:
            raise DnsError(f"{where} did not answer over TCP within {self.timeout:g}s "
                           f"(asking {shown}; the UDP answer was truncated)", "timeout") from None
        except ConnectionRefusedError:
            raise DnsError(f"{where} refused a TCP connection (asking {shown}; the UDP "
                           "answer was truncated)", "unreachable") from None
        except EOFError:
            raise DnsError(f"{where} closed the TCP connection without an answer "
                           f"(asking {shown})", "malformed") from None
        except OSError as exc:
            raise DnsError(f"cannot ask {where} over TCP: {exc.strerror or exc} "
                           f"(asking {shown})", "unreachable") from None
        except dns.exception.DNSException as exc:
            raise DnsError(f"bad DNS reply over TCP from {where} for {shown} "
                           f"({str(exc).rstrip('.')})", "malformed") from None
        if response.flags & dns.flags.TC:  # nothing limits a TCP answer's size (RFC 7766)
            raise DnsError(f"malformed DNS reply over TCP from {where} for {shown} "
                           "(truncated (TC) over TCP, where an answer cannot be cut)",
                           "malformed")
        return response


def _records(response: dns.message.Message, qname: dns.name.Name,
             qtype: dns.rdatatype.RdataType) -> tuple[tuple[Any, ...], str]:
    """The records of ``qtype`` at ``qname`` in the answer, following CNAMEs (at most 16)."""
    name = qname
    canonical = ""
    for _ in range(16):
        rrset = _find(response, name, qtype)
        if rrset is not None:
            return tuple(rrset), canonical
        if qtype == dns.rdatatype.CNAME:
            break
        cname = _find(response, name, dns.rdatatype.CNAME)
        if cname is None:
            break
        name = next(iter(cname)).target
        canonical = name.to_text()
    return (), canonical


def _find(response: dns.message.Message, name: dns.name.Name,
          rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset | None:
    for rrset in response.answer:
        if rrset.name == name and rrset.rdtype == rdtype and rrset.rdclass == dns.rdataclass.IN:
            return rrset
    return None
