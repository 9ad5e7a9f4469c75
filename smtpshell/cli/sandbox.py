"""``smtpshell sandbox``: the local test server in the foreground, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TextIO

from ..context import Environment
from ..escapes import for_terminal, for_terminal_lines
from ..sandbox import DEFAULT_PORT, DEFAULT_TLS_PORT, Delivery, Sandbox, SandboxConfig
from ..status import ExitStatus
from ..transport import format_address
from .common import parser, port_number
from .serving import run_until_signal, serve


def add_server_arguments(p: argparse.ArgumentParser, port: int, tls_port: int) -> None:
    """Where the sandbox listens and keeps its files (``sandbox`` and ``demo``)."""
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    p.add_argument("--port", type=port_number, default=port, help="plain/STARTTLS port")
    p.add_argument("--tls-port", type=port_number, default=tls_port, help="implicit TLS port")
    p.add_argument("--dir", metavar="DIR", help="where the CA, certificate and maildir go")
    p.add_argument("--chunking", action="store_true",
                   help="offer CHUNKING too: BDAT n [LAST] (RFC 3030)")


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    return SandboxConfig(host=args.host, port=args.port, tls_port=args.tls_port,
                         workdir=Path(args.dir) if args.dir else None,
                         chunking=bool(getattr(args, "chunking", False)))


def build_parser() -> argparse.ArgumentParser:
    p = parser("smtpshell sandbox", "Run the built-in local SMTP server (STARTTLS, AUTH, a "
               "throw-away CA) until Ctrl-C: exit 0, or 1 if it cannot start.")
    add_server_arguments(p, DEFAULT_PORT, DEFAULT_TLS_PORT)
    return p


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    def stopped() -> ExitStatus:
        env.stdout.write("\nsandbox stopped.\n")
        env.stdout.flush()
        return ExitStatus.OK

    return serve(lambda: _serve(config_from_args(args), env.stdout, env.stderr), stopped)


def banner(sb: Sandbox) -> list[str]:
    ca = sb.ca_file
    lines = ["smtpshell sandbox: a local mail server for testing and teaching"]
    if sb.lmtp:
        lines.append(f"  LMTP              {format_address(sb.host, sb.port)}  (no TLS)")
    else:
        lines.append(f"  SMTP + STARTTLS   {format_address(sb.host, sb.port)}")
        if sb.tls_port is not None:
            lines.append(f"  implicit TLS      {format_address(sb.host, sb.tls_port)}")
    lines += [f"  server name       {sb.hostname}", f"  CA certificate    {ca}"]
    if not sb.lmtp:
        lines.append(f"    trust it with:  smtpshell --cafile {ca} {sb.host} {sb.port}")
    tls_note = "after STARTTLS" if sb.config.auth_require_tls else "TLS not required"
    lines.append(f"  test account      {sb.user} / {sb.password}")
    if not sb.lmtp:
        lines.append(f"    AUTH PLAIN, LOGIN, CRAM-MD5 ({tls_note})")
    if sb.config.chunking and not sb.lmtp:
        lines.append("  CHUNKING          on: BDAT n [LAST] (RFC 3030)")
    if sb.config.reject_recipients:
        lines.append(f"  rejected (550)    {', '.join(sb.config.reject_recipients)}")
    lines += [f"  maildir           {sb.maildir}", "Ready. Press Ctrl-C to stop."]
    return lines


class _EscapedFormatter(logging.Formatter):
    """The mail server's log lines quote what clients sent: escaped for the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return for_terminal_lines(super().format(record))


async def _serve(config: SandboxConfig, out: TextIO, err: TextIO) -> ExitStatus:
    def report(d: Delivery) -> None:
        rcpts = ", ".join(d.rcpt_tos)
        via = " over TLS" if d.tls else ""
        line = (f"  message from <{d.mail_from}> to {rcpts}{via}: {len(d.data)} bytes, "
                f"stored as {d.key}")
        out.write(for_terminal(line) + "\n")  # the addresses are what a client sent
        out.flush()

    sandbox = Sandbox(config, on_delivery=report)
    try:
        await sandbox.start()
    except OSError as exc:
        where = format_address(config.host, config.port)
        err.write(f"smtpshell sandbox: cannot start on {where}: {exc.strerror or exc}\n")
        return ExitStatus.ERROR
    handler = logging.StreamHandler(out)
    handler.setFormatter(_EscapedFormatter("  server: %(message)s"))
    handler.setLevel(logging.WARNING)
    server_log = logging.getLogger("mail.log")
    server_log.addHandler(handler)
    try:
        await run_until_signal(banner(sandbox), out)
    finally:
        server_log.removeHandler(handler)
        await sandbox.stop()
    out.write("sandbox stopped.\n")
    out.flush()
    return ExitStatus.OK
