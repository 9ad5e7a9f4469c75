"""``smtpshell demo``: the sandbox and the shell in one process, the sandbox's CA trusted."""

from __future__ import annotations

import argparse
import asyncio

from ..context import Environment
from ..status import ExitStatus
from .common import parser
from .sandbox import add_server_arguments, config_from_args


def build_parser() -> argparse.ArgumentParser:
    p = parser("smtpshell demo", "Start the sandbox and connect the shell to it: the "
               "one-command tour (batch mode when stdin is not a terminal).")
    add_server_arguments(p, 0, 0)
    p.add_argument("--no-color", action="store_true")
    p.add_argument("--tls", action="store_true", help="connect to the implicit TLS port")
    return p


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    return asyncio.run(_demo(args, env))


async def _demo(args: argparse.Namespace, env: Environment) -> ExitStatus:
    from ..sandbox import Sandbox
    from ..session import ConnectOptions
    from ..tls import TlsOptions
    from ..ui.core import Settings
    from .frontend import front_end

    async with Sandbox(config_from_args(args)) as sb:
        port = sb.tls_port if args.tls and sb.tls_port else sb.port
        options = ConnectOptions(
            host=sb.host,
            port=port,
            tls_mode="implicit" if args.tls else "plain",
            tls=TlsOptions(cafile=str(sb.ca_file)),
            ehlo_name="demo.client",
        )
        intro = [
            f"sandbox: {sb.host} port {sb.port} (STARTTLS), {sb.tls_port} (implicit TLS); "
            f"account {sb.user} / {sb.password}; CA {sb.ca_file}; mail kept in {sb.maildir}",
        ]
        if env.interactive:
            intro.append("try: EHLO me, STARTTLS, EHLO me, MAIL FROM:<a@example.org>, "
                         "RCPT TO:<b@example.org>, DATA, QUIT")
        return await front_end(options, Settings(user=sb.user, environ=env.environ), env,
                               colour=env.colour(args.no_color), intro=intro)
