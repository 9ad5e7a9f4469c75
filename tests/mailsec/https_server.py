"""A small HTTPS server for MTA-STS tests: 127.0.0.1, a port chosen by the OS, a trustme
certificate for ``mta-sts.DOMAIN``, and a reply chosen per path by the test.

Use::

    from tests.mailsec.https_server import PolicyServer, Reply

    with PolicyServer(ca.issue_cert("mta-sts.example.net")) as web:
        web.serve(Reply(body=b"version: STSv1\\r\\nmode: enforce\\r\\n…"))
        url = web.url()           # https://127.0.0.1:PORT/.well-known/mta-sts.txt
        …
        assert web.requests[0].sni == "mta-sts.example.net"

or the fixtures ``sts_ca``, ``sts_cafile`` and ``policy_server`` below (a started server with
a certificate for ``mta-sts.example.net`` from ``sts_ca``; nothing served until the test
calls ``serve``). Tests elsewhere import them:
``from tests.mailsec.https_server import policy_server, sts_ca, sts_cafile  # noqa: F401``.

What a ``Reply`` can be: any status and reason phrase, any ``Content-Type`` (or none), extra
headers (``Location`` for a redirect), a body with or without ``Content-Length``, ``more``
bytes streamed after the body (an oversized policy that never says its size), and
``hold=True``: the server reads the request and then answers nothing until the server is
closed (a slow server, for the client's time limit); ``trickle=0.02``: the answer's head
comes one byte every 20 ms, without end (a server that keeps each read within the
client's socket timeout).

``requests`` lists what arrived (path, ``Host:``, SNI); a handshake the client broke off
(it refused the certificate) is counted in ``handshake_failures`` and never reaches a reply.
Threads: one accepting, one per connection; every error in them is kept, not raised, so
pytest's unhandled-thread-exception check stays quiet.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pytest
import trustme

__all__ = ["POLICY_PATH", "PolicyServer", "Reply", "Request", "policy_server", "sts_ca",
           "sts_cafile"]

POLICY_PATH = "/.well-known/mta-sts.txt"


@dataclass
class Reply:
    """What the server answers on one path."""

    body: bytes = b""
    status: int = 200
    reason: str = "OK"
    content_type: str | None = "text/plain"
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_length: bool = True  # send Content-Length (False: the body ends at close)
    more: int = 0  # bytes streamed after the body (and no Content-Length)
    hold: bool = False  # read the request, then answer nothing until the server closes
    trickle: float = 0.0  # send the status line and headers a byte at a time, this far apart


@dataclass(frozen=True)
class Request:
    path: str
    host: str | None
    sni: str | None


class PolicyServer:
    """See the module's docstring."""

    def __init__(self, cert: trustme.LeafCert, *, plain: bool = False) -> None:
        self.plain = plain  # answer in plain HTTP at once: a server that is not HTTPS
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.context)
        self.context.sni_callback = self._sni
        self.routes: dict[str, Reply] = {}
        self.requests: list[Request] = []
        self.handshake_failures = 0
        self.errors: list[BaseException] = []
        self.port = 0
        self._sni_seen: dict[int, str | None] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._listener: socket.socket | None = None
        self._stop_r, self._stop_w = socket.socketpair()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []

    # ---- set-up ------------------------------------------------------------------------

    def serve(self, reply: Reply, path: str = POLICY_PATH) -> None:
        self.routes[path] = reply

    def policy(self, text: str, **kwargs: object) -> None:
        """Serve ``text`` (LF line ends become CRLF) as the policy, as text/plain."""
        body = text.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        self.serve(Reply(body=body, **kwargs))  # type: ignore[arg-type]

    def url(self, path: str = POLICY_PATH, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}{path}"

    def start(self) -> PolicyServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self._listener = listener
        self.port = listener.getsockname()[1]
        thread = threading.Thread(target=self._accept_loop, name="policy-server", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def close(self) -> None:
        self._closing.set()
        self._stop_w.send(b"x")
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in list(self._threads):
            thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
        self._stop_r.close()
        self._stop_w.close()

    def __enter__(self) -> PolicyServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- serving -------------------------------------------------------------------------

    def _sni(self, sslobj: ssl.SSLSocket | ssl.SSLObject, name: str | None,
             ctx: ssl.SSLContext) -> None:
        with self._lock:
            self._sni_seen[id(sslobj)] = name

    def _accept_loop(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            sel.register(self._stop_r, selectors.EVENT_READ)
            while not self._closing.is_set():
                for key, _ in sel.select():
                    if key.fileobj is self._stop_r:
                        return
                    try:
                        conn, _ = self._listener.accept()
                    except OSError as exc:
                        self.errors.append(exc)
                        return
                    with self._lock:
                        self._conns.append(conn)
                    thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
                    self._threads.append(thread)
                    thread.start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            if self.plain:  # answers at once, as a plain HTTP server does to a ClientHello
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            try:
                tls = self.context.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                self.handshake_failures += 1
                return
            with self._lock:
                self._conns.append(tls)
                sni = self._sni_seen.pop(id(tls), None)
            try:
                self._answer(tls, sni)
            except (OSError, ssl.SSLError):
                pass  # the client went away (it read enough, or it gave up)
            finally:
                tls.close()
        except BaseException as exc:  # kept for the test to see
            self.errors.append(exc)
        finally:
            conn.close()

    def _answer(self, tls: ssl.SSLSocket, sni: str | None) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = tls.recv(4096)
            if not chunk:
                return
            head += chunk
            if len(head) > 65536:
                return
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        path = parts[1] if len(parts) > 1 else ""
        host = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "host":
                host = value.strip()
        self.requests.append(Request(path, host, sni))
        reply = self.routes.get(path, Reply(b"not here\n", 404, "Not Found"))
        if reply.hold:
            self._closing.wait()
            return
        out = [f"HTTP/1.1 {reply.status} {reply.reason}"]
        if reply.content_type is not None:
            out.append(f"Content-Type: {reply.content_type}")
        if reply.content_length and not reply.more:
            out.append(f"Content-Length: {len(reply.body)}")
        out += [f"{k}: {v}" for k, v in reply.headers]
        out.append("Connection: close")
        head = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
        if reply.trickle:  # an endless header, one byte at a time (at most 400 of them)
            stream = head.split(b"\r\n", 1)[0] + b"\r\nX-Slow: " + b"a" * 400
            for i in range(len(stream)):
                if self._closing.wait(reply.trickle):
                    return
                tls.sendall(stream[i:i + 1])
            return
        tls.sendall(head + reply.body)
        left = reply.more
        block = b"x" * 16384
        while left > 0 and not self._closing.is_set():
            tls.sendall(block[:left])
            left -= len(block)


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sts_ca() -> trustme.CA:
    """The CA of the policy servers (one per xdist worker)."""
    return trustme.CA()


@pytest.fixture
def sts_cafile(sts_ca: trustme.CA, tmp_path: Path) -> str:
    """``sts_ca`` as a PEM file, for ``cafile=`` / ``--cafile``."""
    path = tmp_path / "sts-ca.pem"
    sts_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def policy_server(sts_ca: trustme.CA) -> Iterator[PolicyServer]:
    """A started ``PolicyServer`` with a certificate for ``mta-sts.example.net``."""
    with PolicyServer(sts_ca.issue_cert("mta-sts.example.net")) as server:
        yield server
