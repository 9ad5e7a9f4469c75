"""A minimal SMTP sink for the benchmarks: STARTTLS, AUTH PLAIN, PIPELINING; bodies discarded.

The sandbox (aiosmtpd) keeps every message in memory and in a Maildir, so a 400 MB
message would measure the server.  This one only scans each DATA body for the
terminating CRLF.CRLF and throws it away, so the client is what gets measured.

    python bench/sink_server.py [--host 127.0.0.1] [--port 0] [--dir DIR]

prints ``listening HOST:PORT``, ``ca PATH`` (trust it with --cafile) and ``ready``,
then serves until SIGTERM or Ctrl-C.  Account: demo / demo-password.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import signal
import ssl
import sys
import tempfile
from pathlib import Path

TERMINATOR = b"\r\n.\r\n"
USER = b"demo"
PASSWORD = b"demo-password"
HOSTNAME = "sink.smtpshell.test"


class SinkProtocol(asyncio.Protocol):
    def __init__(self, tls_context: ssl.SSLContext, stats: dict[str, int]) -> None:
        self.tls_context = tls_context
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.in_data = False
        self.tail = b""
        self.tls = False
        self.auth_pending = False
        self.upgrading = False
        self.handshaking = False
        self.pending = b""
        self.tls_task: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(f"220 {HOSTNAME} ESMTP bench sink\r\n".encode())

    def data_received(self, data: bytes) -> None:
        if self.upgrading:
            return  # plaintext after STARTTLS is discarded (RFC 3207 §4, injection)
        if self.handshaking:  # decrypted data that came before start_tls() returned
            self.pending += data
            return
        replies: list[bytes] = []
        while data:
            if self.in_data:
                data = self._data(data)
                if self.in_data:
                    break
                self.stats["messages"] += 1
                replies.append(b"250 2.0.0 OK: discarded\r\n")
                continue
            self.buffer += data
            data = b""
            while not self.in_data and not self.upgrading:
                line, sep, rest = self.buffer.partition(b"\r\n")
                if not sep:
                    if len(self.buffer) > 4096:
                        replies.append(b"500 5.5.6 line too long\r\n")
                        self.buffer = b""
                    break
                self.buffer = rest
                replies.append(self._command(line))
            if self.in_data:
                data, self.buffer = self.buffer, b""
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))
            if self.upgrading:
                self.tls_task = asyncio.ensure_future(self._starttls())

    def _data(self, data: bytes) -> bytes:
        """Discard body bytes; return what follows the terminator (pipelined commands)."""
        probe = self.tail + data[:4]
        at = probe.find(TERMINATOR)
        if at != -1:
            end = at + len(TERMINATOR) - len(self.tail)
        else:
            at = data.find(TERMINATOR)
            end = at + len(TERMINATOR) if at != -1 else -1
        if end == -1:
            self.stats["bytes"] += len(data)
            self.tail = (self.tail + data)[-4:]
            return b""
        self.stats["bytes"] += end
        self.in_data = False
        return data[end:]

    def _command(self, line: bytes) -> bytes:
        if self.auth_pending:
            self.auth_pending = False
            return self._check_plain(line)
        verb, _, arg = line.decode("utf-8", "replace").partition(" ")
        verb = verb.upper()
        if verb in ("EHLO", "HELO"):
            if verb == "HELO":
                return f"250 {HOSTNAME}\r\n".encode()
            extra = ["AUTH PLAIN"] if self.tls else ["STARTTLS"]
            caps = [HOSTNAME, "PIPELINING", "SIZE 0", "8BITMIME", *extra]
            text = "".join(f"250-{c}\r\n" for c in caps[:-1]) + f"250 {caps[-1]}\r\n"
            return text.encode()
        if verb == "STARTTLS" and not self.tls:
            self.upgrading = True
            self.buffer = b""
            return b"220 2.0.0 Ready to start TLS\r\n"
        if verb == "AUTH":
            mech, _, initial = arg.partition(" ")
            if mech.upper() != "PLAIN" or not self.tls:
                return b"504 5.5.4 only AUTH PLAIN, after STARTTLS\r\n"
            if not initial:
                self.auth_pending = True
                return b"334 \r\n"
            return self._check_plain(initial.encode())
        if verb in ("MAIL", "RCPT", "RSET", "NOOP"):
            return b"250 2.0.0 OK\r\n"
        if verb == "DATA":
            self.in_data = True
            self.tail = b"\r\n"  # a lone "." right after 354 ends an empty message
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb == "QUIT":
            assert self.transport is not None
            asyncio.get_running_loop().call_soon(self.transport.close)
            return b"221 2.0.0 Bye\r\n"
        return b"502 5.5.2 not implemented by the bench sink\r\n"

    def _check_plain(self, blob: bytes) -> bytes:
        try:
            parts = base64.b64decode(blob, validate=True).split(b"\0")
        except ValueError:
            return b"501 5.5.2 bad base64\r\n"
        if len(parts) == 3 and parts[1] == USER and parts[2] == PASSWORD:
            return b"235 2.7.0 Authentication successful\r\n"
        return b"535 5.7.8 Authentication credentials invalid\r\n"

    async def _starttls(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.transport is not None
        self.upgrading, self.handshaking = False, True
        try:
            new = await loop.start_tls(self.transport, self, self.tls_context, server_side=True)
        except (OSError, ssl.SSLError, ConnectionError):
            self.transport.abort()
            return
        if new is None:
            return
        assert isinstance(new, asyncio.Transport)
        self.transport = new
        self.tls = True
        self.handshaking = False
        self.buffer = b""
        pending, self.pending = self.pending, b""
        if pending:
            self.data_received(pending)


def make_certificates(directory: Path) -> tuple[ssl.SSLContext, Path]:
    import trustme

    ca = trustme.CA(organization_name="smtpshell bench sink")
    cert = ca.issue_cert("127.0.0.1", "::1", "localhost", HOSTNAME)
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context, ca_file


async def serve(host: str, port: int, directory: Path) -> None:
    context, ca_file = make_certificates(directory)
    stats = {"messages": 0, "bytes": 0}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SinkProtocol(context, stats), host, port)
    bound = server.sockets[0].getsockname()
    print(f"listening {bound[0]}:{bound[1]}\nca {ca_file}\nready", flush=True)
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        print(f"sink: {stats['messages']} messages, {stats['bytes']} bytes discarded",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--dir", help="where ca.pem goes (default: a temporary directory)")
    args = p.parse_args(argv)
    with contextlib.ExitStack() as stack:
        directory = Path(args.dir) if args.dir else Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="smtpshell-sink-")))
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(args.host, args.port, directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
