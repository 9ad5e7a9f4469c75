"""Command line: ``main(argv, env) -> ExitStatus``.

    smtpshell HOST [PORT]          interactive (or batch when stdin is not a terminal)
    smtpshell sandbox              run the local test server
    smtpshell demo                 sandbox + shell in one process, CA trusted
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import __version__
from .context import Environment
from .status import ExitStatus

if TYPE_CHECKING:
    from .session import ConnectOptions
    from .ui.core import ShellCore

SUBCOMMANDS = ("sandbox", "demo", "replay", "mock", "show")

DESCRIPTION = (
    "smtpshell: an interactive SMTP client for testing and teaching. Type raw SMTP; "
    "STARTTLS upgrades the connection in place. Shell commands start with '/' (try /help)."
)

EPILOG = """\
other commands:
  smtpshell sandbox   run the built-in local SMTP server (STARTTLS, AUTH, trustme CA)
  smtpshell demo      start the sandbox and connect to it: the one-command tour
  smtpshell replay    replay transcripts against a server as regression tests
  smtpshell mock      serve a transcript's server side to test an SMTP client
  smtpshell show      print a transcript highlighted (--html for a web page)

exit status: 0 ok, 1 last reply failed, 2 usage, 3 connect, 4 TLS, 5 AUTH,
             6 MAIL, 7 RCPT, 8 DATA, 9 protocol error, 130 interrupted
"""


class UsageError(Exception):
    pass


def parse_target(target: str, port: str | None, default_port: int) -> tuple[str, int]:
    """HOST, HOST:PORT, [IPv6]:PORT, a bare IPv6 literal; PORT may also come separately."""
    host, port_text = target, port
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", target)
    if m:
        host, inline = m.group(1), m.group(2)
        port_text = port_text or inline
    elif target.count(":") == 1:
        host, inline = target.split(":")
        if port_text and inline:
            raise UsageError("port given twice")
        port_text = port_text or inline
    if not host:
        raise UsageError("empty host name")
    if port_text is None:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"invalid port: {port_text}")
    return host, int(port_text)


def add_tls_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("TLS")
    g.add_argument("--cafile", metavar="PEM", help="trust the CA certificates in this file")
    g.add_argument("--capath", metavar="DIR", help="trust the CA certificates in this directory")
    g.add_argument("-k", "--insecure", action="store_true",
                   help="do not verify the server certificate (the report says so)")
    g.add_argument("--sni", metavar="NAME",
                   help="server name for SNI and certificate check (default: HOST)")
    g.add_argument("--no-sni", action="store_true", help="send no SNI")
    g.add_argument("--min-version", "--tls-min", dest="tls_min", metavar="V",
                   help="minimum TLS version: 1.0 1.1 1.2 1.3")
    g.add_argument("--max-version", "--tls-max", dest="tls_max", metavar="V",
                   help="maximum TLS version")
    g.add_argument("--ciphers", metavar="LIST", help="OpenSSL cipher list (TLS 1.2 and older)")
    g.add_argument("--ciphersuites", metavar="LIST",
                   help="TLS 1.3 suites (Python's ssl cannot set them: explains the alternative)")
    g.add_argument("--cert", metavar="PEM", help="client certificate (PEM)")
    g.add_argument("--key", metavar="PEM", help="client private key (PEM; default: in --cert)")
    g.add_argument("--key-password-env", metavar="VAR",
                   help="environment variable holding the client key's passphrase")
    g.add_argument("--pin", metavar="SHA256", action="append", default=[],
                   help="accept the server certificate with this SHA-256 fingerprint "
                   "(self-signed too); repeatable")
    g.add_argument("--show-certs", action="store_true", help="show every certificate received")


def _terminal_columns() -> int:
    """What ``shutil.get_terminal_size()`` answers, without importing shutil (start-up)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    stdout = sys.__stdout__
    if columns <= 0 and stdout is not None:
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse makes a formatter per add_argument; this one does not import shutil."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        width = _terminal_columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="smtpshell",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    p.add_argument("target", metavar="HOST[:PORT]", nargs="?",
                   help="server: host, host:port, [v6]:port")
    p.add_argument("port", metavar="PORT", nargs="?",
                   help="port (default 25; 465 with --tls; 24 with --lmtp)")
    p.add_argument("-p", "--profile", metavar="NAME",
                   help="use [profiles.NAME] from the config file; options override it")
    conn = p.add_argument_group("connection")
    mode = conn.add_mutually_exclusive_group()
    mode.add_argument("--tls", "--implicit-tls", dest="implicit", action="store_true",
                      help="TLS from the first byte (port 465 style)")
    mode.add_argument("--starttls", action="store_true",
                      help="EHLO and STARTTLS right after the greeting; fail if not offered")
    mode.add_argument("--plain", action="store_true",
                      help="no TLS at connect (overrides a profile)")
    conn.add_argument("--timeout", type=float, metavar="S",
                      help="connect and reply timeout in seconds (default 15 / 60)")
    conn.add_argument("--connect-timeout", type=float, metavar="S")
    conn.add_argument("--reply-timeout", type=float, metavar="S")
    fam = conn.add_mutually_exclusive_group()
    fam.add_argument("-4", dest="ipv4", action="store_true", help="IPv4 only")
    fam.add_argument("-6", dest="ipv6", action="store_true", help="IPv6 only")
    conn.add_argument("--bind", metavar="ADDR[:PORT]", help="local address (and port) to use")
    conn.add_argument("--unix", metavar="PATH", help="connect to a UNIX socket (local LMTP)")
    conn.add_argument("--ehlo", metavar="NAME",
                      help="name the shell uses when it sends EHLO itself (default: host name)")
    conn.add_argument("--lmtp", action="store_true", help="speak LMTP: LHLO instead of EHLO")
    auth = p.add_argument_group("authentication")
    auth.add_argument("--auth", metavar="MECH", nargs="?", const="auto",
                      help="authenticate after connecting (and STARTTLS): plain, login, "
                      "cram-md5, xoauth2, or auto (the strongest offered)")
    auth.add_argument("--user", metavar="USER", help="user name for --auth and /auth")
    auth.add_argument("--password-env", metavar="VAR",
                      help="read the password (or XOAUTH2 token) from this environment variable")
    auth.add_argument("--password-file", metavar="FILE",
                      help="read the password (or token) from the first line of this file")
    auth.add_argument("--auth-in-clear", action="store_true",
                      help="allow AUTH on a connection that is not TLS without asking")
    rec = p.add_argument_group("transcripts")
    rec.add_argument("--record", metavar="FILE", help="record the session to FILE (mode 0600)")
    rec.add_argument("--elide-data", metavar="BYTES", type=int,
                     help="in the transcript, elide DATA bodies larger than this")
    out = p.add_argument_group("behaviour")
    out.add_argument("--require-tls", action="store_true",
                     help="refuse to send AUTH or MAIL on a connection that is not TLS")
    out.add_argument("--no-color", action="store_true", help="no colours (also: NO_COLOR=1)")
    out.add_argument("--no-hints", action="store_true", help="no automatic hints under failures")
    out.add_argument("--no-history", action="store_true", help="do not read or write history")
    p.add_argument("--version", action="version", version=f"smtpshell {__version__}")
    add_tls_arguments(p)
    return p


def build_sandbox_parser(prog: str) -> argparse.ArgumentParser:
    from .sandbox import DEFAULT_PORT, DEFAULT_TLS_PORT

    p = argparse.ArgumentParser(prog=f"smtpshell {prog}")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT if prog == "sandbox" else 0,
                   help="plain/STARTTLS port")
    p.add_argument("--tls-port", type=int, default=DEFAULT_TLS_PORT if prog == "sandbox" else 0,
                   help="implicit TLS port")
    p.add_argument("--dir", metavar="DIR", help="where the CA, certificate and maildir go")
    if prog == "demo":
        p.add_argument("--no-color", action="store_true")
        p.add_argument("--tls", action="store_true", help="connect to the implicit TLS port")
    return p


def apply_profile(args: argparse.Namespace, env: Environment) -> None:
    """Fill options the command line left unset from the chosen profile."""
    if not args.profile:
        return
    from .config import ConfigError, config_path, load_profile  # tomllib: only with -p

    assert env.config_dir is not None
    try:
        profile = load_profile(config_path(env.config_dir), args.profile)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    for dest, value in profile.items():
        if dest == "tls_mode":
            if not (args.implicit or args.starttls or args.plain):
                args.implicit = value == "implicit"
                args.starttls = value == "starttls"
            continue
        if dest == "timeout" and (args.connect_timeout or args.reply_timeout):
            continue
        if getattr(args, dest, None) in (None, False, []):
            setattr(args, dest, value)


def parse_bind(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:]+)(?::(\d+))?|([0-9a-fA-F:]+)", text)
    if m is None:
        raise UsageError(f"--bind: not an address: {text}")
    host = m.group(1) or m.group(3) or m.group(5)
    port = int(m.group(2) or m.group(4) or 0)
    if port > 65535:
        raise UsageError(f"--bind: invalid port in {text}")
    return host, port


def options_from_args(args: argparse.Namespace, env: Environment) -> ConnectOptions:
    from .session import DEFAULT_CONNECT_TIMEOUT, DEFAULT_REPLY_TIMEOUT, ConnectOptions
    from .tls import TlsOptions

    default_port = 465 if args.implicit else (24 if args.lmtp else 25)
    if args.unix:
        host, port = "localhost", 0
    elif args.target is None:
        raise UsageError("give a server (HOST[:PORT]), --unix PATH, or -p PROFILE")
    else:
        host, port = parse_target(args.target, args.port, default_port)
    key_password = None
    if args.key_password_env:
        key_password = env.environ.get(args.key_password_env)
        if key_password is None:
            raise UsageError(f"--key-password-env: {args.key_password_env} is not set")
    tls_options = TlsOptions(
        cafile=args.cafile,
        capath=args.capath,
        insecure=args.insecure,
        server_name=args.sni,
        no_sni=args.no_sni,
        min_version=args.tls_min,
        max_version=args.tls_max,
        ciphers=args.ciphers,
        ciphersuites=args.ciphersuites,
        certfile=args.cert,
        keyfile=args.key,
        key_password=key_password,
        pins=tuple(args.pin),
    )
    connect_timeout = args.connect_timeout or args.timeout or DEFAULT_CONNECT_TIMEOUT
    reply_timeout = args.reply_timeout or args.timeout or DEFAULT_REPLY_TIMEOUT
    family = socket.AF_INET if args.ipv4 else (socket.AF_INET6 if args.ipv6 else 0)
    return ConnectOptions(
        host=host,
        port=port,
        tls_mode="implicit" if args.implicit else ("starttls" if args.starttls else "plain"),
        tls=tls_options,
        connect_timeout=connect_timeout,
        reply_timeout=reply_timeout,
        send_timeout=reply_timeout,
        unix_path=args.unix,
        family=family,
        local_addr=parse_bind(args.bind),
        lmtp=args.lmtp,
        ehlo_name=args.ehlo or default_ehlo_name(),
    )


def default_ehlo_name() -> str:
    """The local host name (never a file name); "localhost" when there is none.

    ``socket.gethostname()`` is one system call (swaks uses it too); ``socket.getfqdn()``
    can wait seconds for DNS before the first byte is sent, so it is not used: give
    ``--ehlo`` a fully qualified name when a server insists on one.
    """
    name = socket.gethostname()
    return name if name and "/" not in name else "localhost"


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> ExitStatus:
    env = env or Environment()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "replay":
        from .transcript.replay import replay_main

        return ExitStatus(replay_main(argv[1:], env.stdout, env.stderr, env.environ))
    if argv and argv[0] == "mock":
        from .transcript.mock import mock_main

        return ExitStatus(mock_main(argv[1:], env.stdout, env.stderr))
    if argv and argv[0] == "show":
        from .ui.show import show_main

        return ExitStatus(show_main(argv[1:], env))
    if argv and argv[0] in SUBCOMMANDS:
        return _subcommand(argv[0], argv[1:], env)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        apply_profile(args, env)
        options = options_from_args(args, env)
    except SystemExit as exc:
        return ExitStatus.OK if exc.code == 0 else ExitStatus.USAGE
    except UsageError as exc:
        env.stderr.write(f"smtpshell: {exc}\n")
        return ExitStatus.USAGE
    return _run_shell(options, args, env)


def _run_shell(options: ConnectOptions, args: argparse.Namespace, env: Environment) -> ExitStatus:
    from .ui.core import Settings, ShellCore
    from .ui.render import Renderer

    colour = env.colour(args.no_color)
    settings = Settings(
        hints=not args.no_hints,
        require_tls=args.require_tls,
        allow_plain_auth=args.auth_in_clear,
        user=args.user,
        password_env=args.password_env,
        password_file=args.password_file,
        auth=args.auth,
        environ=env.environ,
        elide_data=args.elide_data,
    )
    if env.interactive:
        options = _ask_key_passphrase(options)
    try:
        if env.interactive:
            from .ui.render import pygments_highlighter
            from .ui.terminal import PromptSecrets, StdoutWriter, start_repl

            renderer = Renderer(StdoutWriter(), colour=colour,  # type: ignore[arg-type]
                                hints=settings.hints,
                                highlight=pygments_highlighter(env.background) if colour else None)
            renderer.show_chain = args.show_certs
            core = ShellCore(options, renderer, prompter=PromptSecrets(), settings=settings,
                             interactive=True)
            if args.record and not _start_record(core, args):
                return ExitStatus.USAGE
            history = None if args.no_history else env.history_file
            return asyncio.run(start_repl(core, history_file=history, colour=colour,
                                          background=env.background))
        from .ui.batch import run_batch

        _bytes_as_typed(env)
        renderer = Renderer(env.stdout, colour=colour, echo=True, arrows=True,
                            hints=settings.hints)
        renderer.show_chain = args.show_certs
        core = ShellCore(options, renderer, settings=settings)
        if args.record and not _start_record(core, args):
            return ExitStatus.USAGE
        return asyncio.run(run_batch(core, env.stdin))
    except KeyboardInterrupt:
        env.stderr.write("smtpshell: interrupted\n")
        return ExitStatus.INTERRUPTED


def _bytes_as_typed(env: Environment) -> None:
    """Batch mode: bytes that are not UTF-8 go to the server (and the screen) as they are."""
    for stream in (env.stdin, env.stdout):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="surrogateescape")
            except (ValueError, OSError):
                pass


def _ask_key_passphrase(options: ConnectOptions) -> ConnectOptions:
    """Interactive only: prompt (no echo) for an encrypted client key's passphrase."""
    from dataclasses import replace

    from .tls import TlsConfigError, make_client_context

    if not options.tls.certfile or options.tls.key_password is not None:
        return options
    try:
        make_client_context(options.tls)
    except TlsConfigError as exc:
        if "encrypted" not in str(exc):
            return options  # the connect attempt reports it
        import getpass

        key = options.tls.keyfile or options.tls.certfile
        try:
            passphrase = getpass.getpass(f"Passphrase for {key}: ")
        except (EOFError, KeyboardInterrupt):
            return options
        return replace(options, tls=replace(options.tls, key_password=passphrase))
    return options


def _start_record(core: ShellCore, args: argparse.Namespace) -> bool:
    from .ui.record_commands import start_recording

    return start_recording(core, args.record)


def _subcommand(name: str, argv: list[str], env: Environment) -> ExitStatus:
    from pathlib import Path

    from .sandbox import SandboxConfig

    parser = build_sandbox_parser(name)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return ExitStatus.OK if exc.code == 0 else ExitStatus.USAGE
    config = SandboxConfig(
        host=args.host,
        port=args.port,
        tls_port=args.tls_port,
        workdir=Path(args.dir) if args.dir else None,
    )
    if name == "sandbox":
        from .sandbox import serve

        return ExitStatus(serve(config, env.stdout, env.stderr))
    return _demo(config, args, env)


def _demo(config, args: argparse.Namespace, env: Environment) -> ExitStatus:  # type: ignore[no-untyped-def]
    from .sandbox import Sandbox
    from .session import ConnectOptions
    from .tls import TlsOptions
    from .ui.core import Settings, ShellCore
    from .ui.render import Renderer

    async def run() -> ExitStatus:
        async with Sandbox(config) as sb:
            port = sb.tls_port if args.tls and sb.tls_port else sb.port
            options = ConnectOptions(
                host=sb.host,
                port=port,
                tls_mode="implicit" if args.tls else "plain",
                tls=TlsOptions(cafile=str(sb.ca_file)),
                ehlo_name="demo.client",
            )
            colour = env.colour(args.no_color)
            intro = (
                f"sandbox: {sb.host} port {sb.port} (STARTTLS), {sb.tls_port} (implicit TLS); "
                f"account {sb.user} / {sb.password}; CA {sb.ca_file}; mail kept in {sb.maildir}"
            )
            if env.interactive:
                from .ui.render import pygments_highlighter
                from .ui.terminal import PromptSecrets, StdoutWriter, start_repl

                renderer = Renderer(StdoutWriter(), colour=colour,  # type: ignore[arg-type]
                                    highlight=pygments_highlighter(env.background))
                renderer.info(intro)
                renderer.info("try: EHLO me, STARTTLS, EHLO me, MAIL FROM:<a@example.org>, "
                              "RCPT TO:<b@example.org>, DATA, QUIT")
                core = ShellCore(options, renderer, prompter=PromptSecrets(), interactive=True,
                                 settings=Settings(user=sb.user, environ=env.environ))
                return await start_repl(core, history_file=env.history_file, colour=colour,
                                        background=env.background)
            from .ui.batch import run_batch

            renderer = Renderer(env.stdout, colour=colour, echo=True, arrows=True)
            renderer.info(intro)
            core = ShellCore(options, renderer, settings=Settings(user=sb.user,
                                                                  environ=env.environ))
            return await run_batch(core, env.stdin)

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED


def run() -> None:
    """Console-script entry point."""
    sys.exit(int(main()))
