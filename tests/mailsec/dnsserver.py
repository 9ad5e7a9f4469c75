"""An in-process DNS server for tests: 127.0.0.1, one port for UDP and TCP, records from text.

Built on dnspython's message functions (``dns.message.from_wire``, ``make_response``) and
``dns.zone.from_text``; it answers authoritatively from the records it was given, and lets
a test decide what a validating resolver would have said (the AD bit) and how the server
misbehaves (SERVFAIL, REFUSED, truncated UDP answers, silence, garbage).

Use::

    from tests.mailsec.dnsserver import DnsServer

    with DnsServer('''
        example.            MX   10 mx.example.
        mx.example.         A    127.0.0.1
        _25._tcp.mx.example. TLSA 3 1 1 0123…
    ''', signed={"example.", "mx.example."}) as server:
        resolver = Resolver(("127.0.0.1", server.port), timeout=1)   # or --resolver server.spec
        ...

or the fixtures of ``tests/mailsec/conftest.py``: ``dns_server`` (a started, empty
``DnsServer``; add records with ``dns_server.add(...)``) and ``resolver_spec`` (its
``"127.0.0.1:PORT"``). Tests outside ``tests/mailsec`` can import them:
``from tests.mailsec.conftest import dns_server, resolver_spec  # noqa: F401``.

Records: ``add(text)``, one per line, ``NAME [TTL] [IN] TYPE RDATA`` in zone-file syntax;
names are absolute (a missing final dot is added); the TTL defaults to 300; ``;`` starts a
comment; blank lines are skipped. ``add_raw(name, type, data)`` adds one record as raw
bytes, for data dnspython refuses to build from text (a TLSA digest of the wrong length).
A CNAME is followed within the server's records, as a recursive resolver would (the CNAME
and the target's records both go into the answer).

What the server does with a question for NAME (the sets hold absolute names; ``"*.x."``
in a set stands for x. and every name under it):

* ``signed``: the response has AD when every name in the answer chain (the question's
  name and CNAME targets) is signed. NXDOMAIN and "no records" answers too.
* ``servfail``: RCODE SERVFAIL; ``refuse``: RCODE REFUSED.
* ``truncate``: over UDP, an empty answer with TC set; over TCP, the full answer.
* ``silent``: no answer at all (UDP and TCP), for timeouts.
* ``garbage``: a few bytes that are not a DNS message.
* ``spoof``: over UDP, first a forged reply (another message ID, the answer
  ``A 192.0.2.66``), then the real one: a client must ignore the forgery.
* ``misquestion``: over UDP, only a reply with the right message ID but another question
  (``forged.invalid.``, type A); no real answer follows.
* ``truncate_tcp``: an empty answer with TC set over UDP and over TCP too (a broken
  server: a TCP answer cannot be truncated).

Change any of these while the server runs (they are read per query):
``server.signed.add("mx.example.")``. ``server.queries`` lists what was asked, as
``(name, type, "udp"|"tcp")`` tuples, so a test can see that the client fell back to TCP;
``server.messages`` holds the same queries as dnspython messages (flags, EDNS).

A name with no records at it and none below it is NXDOMAIN; a name that has records of
other types (or names below it, an "empty non-terminal") is NOERROR with no answer.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from collections.abc import Iterable
from types import TracebackType

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone

__all__ = ["DnsServer"]


def _absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


def _normalize(lines: str) -> str:
    out = []
    for raw in lines.splitlines():
        line = raw.split(";", 1)[0].strip() if '"' not in raw else raw.strip()
        if not line:
            continue
        name, _, rest = line.partition(" ")
        fields = rest.split()
        if fields and not fields[0].isdigit():
            rest = "300 " + rest.strip()
        out.append(f"{_absolute(name)} {rest.strip()}")
    return "\n".join(out) + "\n"


class _NameSet(set[str]):
    """A set of absolute names; ``"*.x."`` covers x. and every name below it."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        super().__init__(_absolute(n).lower() for n in names)

    def add(self, name: str) -> None:
        super().add(_absolute(name).lower())

    def covers(self, name: dns.name.Name) -> bool:
        text = name.to_text().lower()
        if text in self:
            return True
        for entry in self:
            if entry.startswith("*."):
                base = dns.name.from_text(entry[2:])
                if name.is_subdomain(base):
                    return True
        return False


class DnsServer:
    """See the module's docstring."""

    def __init__(self, records: str = "", *, signed: Iterable[str] = (),
                 servfail: Iterable[str] = (), refuse: Iterable[str] = (),
                 truncate: Iterable[str] = (), silent: Iterable[str] = (),
                 garbage: Iterable[str] = (), spoof: Iterable[str] = (),
                 misquestion: Iterable[str] = (), truncate_tcp: Iterable[str] = ()) -> None:
        self.zone = dns.zone.Zone(dns.name.root, relativize=False)
        self.signed = _NameSet(signed)
        self.servfail = _NameSet(servfail)
        self.refuse = _NameSet(refuse)
        self.truncate = _NameSet(truncate)
        self.silent = _NameSet(silent)
        self.garbage = _NameSet(garbage)
        self.spoof = _NameSet(spoof)
        self.misquestion = _NameSet(misquestion)
        self.truncate_tcp = _NameSet(truncate_tcp)
        self.queries: list[tuple[str, str, str]] = []
        self.messages: list[dns.message.Message] = []  # the queries as received
        self._lock = threading.Lock()
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._stop_r: socket.socket | None = None  # made by start(), so a server that
        self._stop_w: socket.socket | None = None  # never started holds no sockets
        self._thread: threading.Thread | None = None
        self.port = 0
        if records:
            self.add(records)

    # ---- set-up ------------------------------------------------------------------------

    @property
    def spec(self) -> str:
        """``"127.0.0.1:PORT"``: what ``--resolver`` takes."""
        return f"127.0.0.1:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def add(self, records: str) -> None:
        """Add records (zone-file lines, see the module's docstring)."""
        parsed = dns.zone.from_text(_normalize(records), origin=dns.name.root,
                                    relativize=False, check_origin=False)
        with self._lock:
            for name, node in parsed.nodes.items():
                for rdataset in node.rdatasets:
                    mine = self.zone.find_rdataset(name, rdataset.rdtype, rdataset.covers,
                                                   create=True)
                    mine.update(rdataset)

    def add_raw(self, name: str, rdtype: str, data: bytes) -> None:
        """Add one record whose data is sent as these bytes, unchecked (RFC 3597 form): for
        records that dnspython would refuse to build from text, as a hostile server sends."""
        rdata = dns.rdata.GenericRdata(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), data)
        with self._lock:
            rdataset = self.zone.find_rdataset(_absolute(name), rdata.rdtype, create=True)
            rdataset.add(rdata, 300)

    def start(self) -> DnsServer:
        for _ in range(20):  # a UDP port whose TCP twin is free
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            self._udp, self._tcp, self.port = udp, tcp, port
            break
        else:
            raise RuntimeError("no free UDP+TCP port pair on 127.0.0.1")
        self._stop_r, self._stop_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name=f"dns:{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None and self._stop_w is not None:
            self._stop_w.send(b"x")
            self._thread.join(5)
            self._thread = None
        for sock in (self._udp, self._tcp, self._stop_r, self._stop_w):
            if sock is not None:
                sock.close()

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ---- serving -----------------------------------------------------------------------

    def _serve(self) -> None:
        assert self._udp is not None and self._tcp is not None and self._stop_r is not None
        held: list[socket.socket] = []  # TCP connections of silent names, closed at stop
        with selectors.DefaultSelector() as selector:
            selector.register(self._udp, selectors.EVENT_READ, "udp")
            selector.register(self._tcp, selectors.EVENT_READ, "tcp")
            selector.register(self._stop_r, selectors.EVENT_READ, "stop")
            running = True
            while running:
                for key, _ in selector.select():
                    if key.data == "stop":
                        running = False
                    elif key.data == "udp":
                        try:
                            data, peer = self._udp.recvfrom(65535)
                            forged = self._forgery(data)
                            if forged is not None:
                                self._udp.sendto(forged, peer)
                            reply = self._answer(data, "udp")
                            if reply is not None:
                                self._udp.sendto(reply, peer)
                        except OSError:
                            pass
                    else:
                        try:
                            conn, _ = self._tcp.accept()
                        except OSError:
                            continue
                        if self._serve_tcp(conn):
                            conn.close()
                        else:
                            held.append(conn)
        for conn in held:
            conn.close()

    def _serve_tcp(self, conn: socket.socket) -> bool:
        """One query on a TCP connection; False when it is to be held open unanswered."""
        conn.settimeout(2)
        try:
            head = _recv_exactly(conn, 2)
            data = _recv_exactly(conn, struct.unpack("!H", head)[0])
        except (OSError, EOFError):
            return True
        reply = self._answer(data, "tcp")
        if reply is None:
            return False
        try:
            conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            pass
        return True

    def _forgery(self, data: bytes) -> bytes | None:
        """For a ``spoof`` name: a reply with the wrong message ID and a false answer."""
        try:
            query = dns.message.from_wire(data)
        except Exception:  # junk: no forgery either
            return None
        if not query.question or not self.spoof.covers(query.question[0].name):
            return None
        forged = dns.message.make_response(query)
        forged.id = (query.id + 1) % 65536
        forged.flags |= dns.flags.AD
        question = query.question[0]
        forged.answer.append(dns.rrset.from_text(question.name, 300, "IN", "A", "192.0.2.66"))
        return forged.to_wire(max_size=65535)

    def _answer(self, data: bytes, transport: str) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except Exception:  # junk: no answer at all
            return None
        if not query.question:
            return None
        question = query.question[0]
        qname, qtype = question.name, question.rdtype
        with self._lock:
            self.queries.append((qname.to_text(), dns.rdatatype.to_text(qtype), transport))
            self.messages.append(query)
            if self.silent.covers(qname):
                return None
            if self.garbage.covers(qname):
                return b"\x00\x01garbage"
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            response.flags &= ~dns.flags.AD
            if self.servfail.covers(qname):
                response.set_rcode(dns.rcode.SERVFAIL)
                return response.to_wire()
            if self.refuse.covers(qname):
                response.set_rcode(dns.rcode.REFUSED)
                return response.to_wire()
            if transport == "udp" and self.misquestion.covers(qname):
                other = dns.message.make_query("forged.invalid.", "A")
                other.id = query.id
                forged = dns.message.make_response(other)
                return forged.to_wire()
            if self.truncate_tcp.covers(qname) or (
                    transport == "udp" and self.truncate.covers(qname)):
                response.flags |= dns.flags.TC
                return response.to_wire()
            chain = [qname]
            name = qname
            for _ in range(8):
                node = self.zone.get_node(name)
                if node is None:
                    break
                rdataset = node.get_rdataset(dns.rdataclass.IN, qtype)
                if rdataset is not None:
                    response.answer.append(_rrset(name, rdataset))
                    break
                cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
                if cname is None or qtype == dns.rdatatype.CNAME:
                    break
                response.answer.append(_rrset(name, cname))
                name = next(iter(cname)).target
                chain.append(name)
            if not response.answer and not self._exists(qname):
                response.set_rcode(dns.rcode.NXDOMAIN)
            if all(self.signed.covers(n) for n in chain):
                response.flags |= dns.flags.AD
            wire = response.to_wire(max_size=65535)
            if transport == "udp" and len(wire) > max(512, query.payload):
                response.answer.clear()  # too big for the client's buffer: TC, as a server does
                response.flags |= dns.flags.TC
                wire = response.to_wire(max_size=65535)
            return wire

    def _exists(self, name: dns.name.Name) -> bool:
        return any(n == name or n.is_subdomain(name) for n in self.zone.nodes)


def _rrset(name: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdataset.rdtype)
    rrset.update(rdataset)
    return rrset


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data
