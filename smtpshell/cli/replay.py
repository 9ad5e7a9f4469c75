"""``smtpshell replay FILE|DIR…``: replay transcripts against a server: exit 0 every file
passed, 1 a mismatch, 2 an error (an unreadable transcript, no server)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import replace

from ..context import Environment
from ..escapes import for_terminal, for_terminal_lines
from ..status import ExitStatus
from ..tls import TlsOptionError, TlsOptions, check_options
from ..transcript.model import secret_env_problem
from ..transcript.replay import (
    SUFFIX,
    ReplayOptions,
    ReplayResult,
    ask_missing_secrets,
    collect,
    load_all,
    refuse_secret_env,
    replay_many,
    split_target,
)
from .common import UsageError, parser, seconds

Ask = Callable[[str], "str | None"]


def build_parser() -> argparse.ArgumentParser:
    p = parser("smtpshell replay",
               "Replay transcripts against a server: exit 0 pass, 1 mismatch, 2 error.")
    p.add_argument("paths", nargs="+", metavar="FILE|DIR", help=f"transcripts (*{SUFFIX})")
    p.add_argument("--server", metavar="HOST:PORT",
                   help="connect here instead of each transcript's target (with --tls-server: "
                        "the plain and STARTTLS transcripts)")
    p.add_argument("--tls-server", metavar="HOST:PORT",
                   help="connect here for implicit-TLS transcripts (tls: implicit)")
    p.add_argument("--cafile", metavar="PEM")
    p.add_argument("--capath", metavar="DIR")
    p.add_argument("-k", "--insecure", action="store_true")
    p.add_argument("--sni", metavar="NAME")
    p.add_argument("--timeout", type=seconds, default=10.0, metavar="S")
    p.add_argument("-j", "--jobs", type=int, default=8, metavar="N",
                   help="transcripts replayed at the same time (default 8)")
    p.add_argument("-q", "--quiet", action="store_true", help="print failures and the summary only")
    p.add_argument("--secret-env", action="append", default=[], metavar="NAME",
                   help="let the transcripts' secrets read this environment variable too "
                        "(repeatable; SMTPSHELL_* variables are always allowed)")
    return p


def run(args: argparse.Namespace, env: Environment, ask: Ask | None = None) -> ExitStatus:
    """Replay; ``ask`` supplies secrets the environment lacks (default: the terminal)."""
    if args.jobs < 1:
        raise UsageError(f"-j/--jobs: needs 1 or more transcripts at a time, not {args.jobs}")
    allowed = frozenset(args.secret_env)
    server = _address("--server", args.server)
    options = ReplayOptions(
        server=server,
        tls_server=_address("--tls-server", args.tls_server),
        tls=TlsOptions(cafile=args.cafile, capath=args.capath, insecure=args.insecure,
                       server_name=args.sni),
        timeout=args.timeout,
        # only the variables a secret may be read from (SMTPSHELL_*, --secret-env NAME)
        env={k: v for k, v in env.environ.items() if secret_env_problem(k, allowed) is None},
        secret_env=allowed,
    )
    try:
        check_options(options.tls)  # a malformed --sni: a usage error, exit 2
    except TlsOptionError as exc:
        raise UsageError(str(exc)) from None
    files, problems = collect(args.paths)
    for problem in problems:
        env.stderr.write(f"smtpshell replay: {for_terminal(problem)}\n")
    loaded = refuse_secret_env(load_all(files), allowed)  # before anything is sent or asked
    asked = ask_missing_secrets((t for _, t in loaded), options.env,
                                ask or (lambda name: _ask_tty(name, env)))
    options = replace(options, env={**options.env, **asked})

    def report(result: ReplayResult) -> None:
        if args.quiet and result.passed:
            return
        env.stdout.write(for_terminal_lines(result.render()) + "\n")  # quotes the server
        for note in result.notes:
            env.stdout.write(f"  note: {for_terminal(note)}\n")
        env.stdout.flush()

    results = asyncio.run(replay_many(loaded, options, args.jobs, report))
    passed = sum(r.status == "pass" for r in results)
    failed = sum(r.status == "mismatch" for r in results)
    errors = sum(r.status == "error" for r in results) + len(problems)
    env.stdout.write(f"{passed} passed, {failed} failed, {errors} errors\n")
    env.stdout.flush()
    if errors:
        return ExitStatus.USAGE
    return ExitStatus.ERROR if failed else ExitStatus.OK


def _address(option: str, value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    try:
        return split_target(value)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def _ask_tty(name: str, env: Environment) -> str | None:
    """Ask on the terminal without echo; never when stdin is not a terminal (scripts, CI)."""
    import getpass

    if not env.stdin_isatty:
        return None
    try:
        return getpass.getpass(f"{for_terminal(name)} (for the transcripts' secrets; not echoed): ")
    except (EOFError, KeyboardInterrupt):
        return None

