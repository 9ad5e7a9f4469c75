"""``smtpshell demo``: the sandbox and the shell in one process, the sandbox's CA trusted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..context import Environment
from ..status import ExitStatus
from .common import parser
from .sandbox import add_server_arguments, config_from_args

if TYPE_CHECKING:
    from ..sandbox import Sandbox


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

    async with Sandbox(config_from_args(args)) as sb:
        with _server_log_to(sb.workdir / "server.log"):
            return await _shell(sb, args, env)


async def _shell(sb: Sandbox, args: argparse.Namespace, env: Environment) -> ExitStatus:
    from ..session import ConnectOptions
    from ..tls import TlsOptions
    from ..ui.core import Settings
    from .frontend import front_end

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
    if sb.config.workdir is not None:  # a temporary one goes, with its log, at the end
        intro.append(f"sandbox log (not shown here): {sb.workdir / 'server.log'}")
    if env.interactive:
        intro.append("try: EHLO me, STARTTLS, EHLO me, MAIL FROM:<a@example.org>, "
                     "RCPT TO:<b@example.org>, DATA, QUIT")
    return await front_end(options, Settings(user=sb.user, environ=env.environ), env,
                           colour=env.colour(args.no_color), intro=intro)


@contextlib.contextmanager
def _server_log_to(path: Path) -> Iterator[None]:
    """The in-process mail server's log goes to ``path``, never to the shell's screen
    (aiosmtpd logs, e.g., every unrecognised command at WARNING; with no handler, Python
    would print it to stderr, in the middle of the session)."""
    logger = logging.getLogger("mail.log")
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        handler.close()
