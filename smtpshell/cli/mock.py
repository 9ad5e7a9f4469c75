"""``smtpshell mock FILE``: serve a transcript's server side: exit 0 every connection
matched, 1 one did not or one of the transcript's connections never came, 2 error (130:
Ctrl-C or SIGTERM with ``--once`` before all the transcript's connections came).

However the mock stops (``--once`` done, ``--timeout``, SIGTERM, Ctrl-C), its summary names
each connection of the transcript that never came; with ``--once`` that is a failure, never
exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ..context import Environment
from ..escapes import for_terminal, for_terminal_lines
from ..status import ExitStatus
from ..transcript.mock import (
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    DEFAULT_TLS_PORT,
    Connection,
    MockResult,
    MockServer,
    connections,
    implicit_tls,
    mixed_kinds,
    needs_tls,
    serve_problem,
    tls_words,
)
from ..transcript.model import Expect, Send, Transcript, TranscriptError
from ..transcript.syntax import load
from ..transport import format_address
from .common import UsageError, parser, port_number, seconds
from .serving import make_server_context, run_until_signal, serve


def build_parser() -> argparse.ArgumentParser:
    p = parser(
        "smtpshell mock",
        "Serve the server side of a transcript to an SMTP client and report where "
        "the client deviates from it: exit 0 ok, 1 mismatch (or a connection of the "
        "transcript never came), 2 error.",
    )
    p.add_argument("file", metavar="FILE", help="the transcript to serve")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                   help=f"port to listen on ({DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--tls-port", type=port_number, default=DEFAULT_TLS_PORT,
                   help="port for the implicit-TLS connections of a transcript that also has "
                   f"plain or STARTTLS ones ({DEFAULT_TLS_PORT}; 0 picks a free one)")
    p.add_argument("--cert", metavar="PEM", help="server certificate chain (with the key, or "
                   "see --key); default: a fresh one from a throw-away CA")
    p.add_argument("--key", metavar="PEM", help="private key for --cert")
    p.add_argument("--ca-out", metavar="PATH", help="write the throw-away CA certificate here "
                   "(default: a temporary file, removed at exit)")
    p.add_argument("--cert-name", metavar="NAME", action="append",
                   help="another name for the throw-away certificate (repeatable)")
    p.add_argument("--once", action="store_true",
                   help="serve the transcript once (one client; one connection per "
                   "'== connect' in it), then exit 0 if it matched, 1 if not; Ctrl-C or "
                   "SIGTERM before every connection came: 130")
    p.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"give up on a silent client after S seconds ({DEFAULT_TIMEOUT:g}); "
                   "with --once, also on a client that does not open the transcript's next "
                   "connection within S seconds (exit 1)")
    p.add_argument("--secret-env", action="append", default=[], metavar="NAME",
                   help="let the transcript's secrets read this environment variable too "
                        "(repeatable; SMTPSHELL_* variables are always allowed)")
    return p


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if args.key and not args.cert:
        raise UsageError("--key needs --cert")
    try:
        transcript = load(args.file)
    except TranscriptError as exc:
        raise UsageError(str(exc)) from None
    if not any(isinstance(s, Expect | Send) for s in transcript.steps()):
        raise UsageError(f"{args.file}: nothing to serve (no client or server lines)")
    problem = serve_problem(transcript, args.secret_env)
    if problem is not None:  # FILE:LINE: message, the file named once
        line, sep, rest = problem.partition(": ")
        number = line.removeprefix("line ")
        where = f"{args.file}:{number}" if sep and number.isdigit() and line != number else ""
        raise UsageError(f"{where}: {rest}" if where else f"{args.file}: {problem}")
    state = _State(args.once, connections(transcript))
    with tempfile.TemporaryDirectory(prefix="smtpshell-mock-") as tmp:
        context, ca_path = _server_context(args, transcript, Path(tmp))
        return serve(lambda: _serve(args, transcript, context, ca_path, state, env),
                     lambda: state.stopped(env.stdout))


class _State:
    """What the mock has served so far, for its summary however it stops."""

    def __init__(self, once: bool, blocks: Sequence[Connection]) -> None:
        self.once = once
        self.connections = blocks
        self.results: list[MockResult] = []
        self.server: MockServer | None = None

    def missing(self) -> Sequence[Connection]:
        """The transcript's connections that never came: with ``--once``, those after the
        last that came; without, those after the last in the last client's round."""
        done = len(self.results)
        if self.once:
            return self.connections[done:]
        rest = done % len(self.connections)
        return self.connections[rest:] if rest else ()

    def never_came(self) -> list[str]:
        lines = []
        for block in self.missing():
            where = [] if block.lineno is None else [f"line {block.lineno}"]
            port = (None if self.server is None
                    else self.server.tls_port if block.implicit else self.server.port)
            where.append(block.kind + ("" if port is None else f" on port {port}"))
            lines.append(f"  connection {block.number} ({', '.join(where)}) never came")
        return lines

    def status(self) -> ExitStatus:
        ok = all(r.ok for r in self.results) and not self.missing()
        return ExitStatus.OK if ok else ExitStatus.ERROR

    def stopped(self, out: TextIO) -> ExitStatus:
        """The summary after SIGTERM or Ctrl-C, and the status: 130 with ``--once`` while
        connections were missing."""
        good = sum(r.ok for r in self.results)
        lines = [f"mock stopped: {len(self.results)} connection(s), {good} ok, "
                 f"{len(self.results) - good} did not follow the transcript.",
                 *self.never_came()]
        out.write("\n".join(lines) + "\n")
        out.flush()
        if self.once and self.missing():
            return ExitStatus.INTERRUPTED
        return self.status()

    def timed_out(self, out: TextIO, timeout: float | None) -> ExitStatus:
        """``--once``: no (further) client came within ``--timeout``."""
        if self.results:
            good = sum(r.ok for r in self.results)
            lines = [f"mock stopped: no further client connected within {timeout:g} s "
                     f"(--timeout); {len(self.results)} connection(s), {good} ok, "
                     f"{len(self.results) - good} did not follow the transcript."]
        else:
            lines = [f"mock stopped: no client connected within {timeout:g} s (--timeout)."]
        out.write("\n".join([*lines, *self.never_came()]) + "\n")
        out.flush()
        return ExitStatus.ERROR


def _server_context(
    args: argparse.Namespace, transcript: Transcript, tmp: Path
) -> tuple[ssl.SSLContext | None, Path | None]:
    """(context, CA file written), or (None, None) if no TLS is needed."""
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(args.cert, args.key)
        except (OSError, ssl.SSLError) as exc:
            what = args.cert + (f" / {args.key}" if args.key else "")
            detail = getattr(exc, "strerror", None) or tls_words(exc)
            raise UsageError(f"cannot load the certificate {what}: {detail}") from None
        return context, None
    if not needs_tls(transcript):
        return None, None
    ca_path = Path(args.ca_out) if args.ca_out else tmp / "ca.pem"
    try:
        context = make_server_context(_cert_names(args.host, args.cert_name or ()), ca_path)
    except OSError as exc:
        raise UsageError(f"cannot write the CA certificate {ca_path}: "
                         f"{exc.strerror or exc}") from None
    return context, ca_path


def _cert_names(host: str, extra: Sequence[str]) -> list[str]:
    names = ["localhost", "127.0.0.1", "::1"]
    for name in (host, *extra):
        if name and name not in names and name not in ("0.0.0.0", "::"):
            names.append(name)
    return names


async def _serve(
    args: argparse.Namespace,
    transcript: Transcript,
    context: ssl.SSLContext | None,
    ca_path: Path | None,
    state: _State,
    env: Environment,
) -> ExitStatus:
    out = env.stdout

    def report(result: MockResult) -> None:
        state.results.append(result)
        out.write(for_terminal_lines(result.render()) + "\n")  # quotes the client
        out.flush()

    count = len(connections(transcript))
    server = MockServer(transcript, args.host, args.port, ssl_context=context,
                        timeout=args.timeout, max_connections=count if args.once else None,
                        on_result=report, env=env.environ, tls_port=args.tls_port,
                        secret_env=args.secret_env)
    try:
        await server.start()
    except OSError as exc:
        where = format_address(args.host, server.binding)
        raise UsageError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    state.server = server
    try:
        banner = _banner(args, transcript, server, ca_path)
        done = await run_until_signal(banner, out,
                                      _once(server, args.timeout, count) if args.once else None)
    finally:
        await server.stop()  # a session still running ends with an error result
    if not done:
        return state.stopped(out)  # SIGTERM: as Ctrl-C
    if state.missing():
        return state.timed_out(out, args.timeout)
    return state.status()


async def _once(server: MockServer, timeout: float | None, count: int) -> None:
    """Until the ``count`` connections of ``--once`` have finished, or no client came within
    ``timeout`` while none was in progress: ``--timeout`` bounds the wait for each client to
    begin (the first and each next), so a CI job whose client never comes does not hang. A
    connection in progress is bounded by the session's own timeouts."""
    while len(server.results) < count:
        finished = len(server.results)
        if server.accepted > finished:
            await server.wait(finished + 1)
            continue
        try:
            async with asyncio.timeout(timeout):
                await server.connected(finished + 1)
        except TimeoutError:
            return


def _banner(args: argparse.Namespace, transcript: Transcript, server: MockServer,
            ca_path: Path | None) -> list[str]:
    where = format_address(server.host, server.port)
    if mixed_kinds(transcript) and server.tls_port is not None:
        tls_where = format_address(server.host, server.tls_port)
        lines = [f"smtpshell mock: serving {args.file} on {where} (plain/STARTTLS) and "
                 f"{tls_where} (implicit TLS)"]
    else:
        mode = ("implicit TLS" if implicit_tls(transcript)
                else "STARTTLS" if needs_tls(transcript) else "no TLS")
        lines = [f"smtpshell mock: serving {args.file} on {where} ({mode})"]
    count = len(connections(transcript))
    if ca_path is not None:
        lines.append(f"  CA certificate  {ca_path}  (the client must trust it)")
    elif args.cert:
        lines.append(f"  certificate     {args.cert}")
    if count > 1:
        lines.append(f"  {count} connections: the Nth a client opens walks the Nth "
                     "'== connect' of the transcript")
    lines.append(("  waiting for one client (--once)" if count == 1
                  else f"  waiting for one client: {count} connections (--once)") if args.once
                 else "  Ready. Press Ctrl-C to stop.")
    return [for_terminal(line) for line in lines]  # file names as given


__all__ = ["build_parser", "run"]
