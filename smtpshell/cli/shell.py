"""``smtpshell HOST [PORT]``: the shell's options, profiles, and the connection they make."""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
from typing import TYPE_CHECKING

from .. import __version__
from ..context import Environment, SmallFileError, SmallFileMissing, read_small_file
from ..status import ExitStatus
from .common import HelpFormatter, Parser, UsageError, check_file, parse_target, seconds

if TYPE_CHECKING:
    from ..session import ConnectOptions

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

where mail for a domain goes (MX, DANE, MTA-STS):
  smtpshell --mx DOMAIN [--dane] [--mta-sts] [--resolver ADDR[:PORT]] [PORT]

exit status: 0 ok, 1 last reply failed, 2 usage, 3 connect, 4 TLS, 5 AUTH,
             6 MAIL, 7 RCPT, 8 DATA, 9 protocol error, 130 interrupted
"""


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



def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="smtpshell",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
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
    conn.add_argument("--timeout", type=seconds, metavar="S",
                      help="connect and reply timeout in seconds (default 15 / 60)")
    conn.add_argument("--connect-timeout", type=seconds, metavar="S")
    conn.add_argument("--reply-timeout", type=seconds, metavar="S")
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
    mail = p.add_argument_group("where mail goes (MX, DANE, MTA-STS)")
    mail.add_argument("--mx", metavar="DOMAIN",
                      help="instead of a host: look up DOMAIN's MX hosts and connect to the"
                      " most preferred one that answers (give only PORT, if any)")
    mail.add_argument("--resolver", metavar="ADDR[:PORT]",
                      help="ask this DNS server (as dig @server does) instead of the system's")
    mail.add_argument("--dane", action="store_true",
                      help="with --mx: require the server to match its DNSSEC-validated TLSA"
                      " records when it has usable ones (RFC 7672); implies --starttls")
    mail.add_argument("--mta-sts", action="store_true",
                      help="with --mx: fetch the domain's MTA-STS policy and fail on an"
                      " enforce-mode violation (RFC 8461); implies --starttls")
    mail.add_argument("--mta-sts-url", metavar="URL",
                      help="fetch the MTA-STS policy from URL (implies --mta-sts)")
    rec = p.add_argument_group("transcripts")
    rec.add_argument("--record", metavar="FILE",
                     help="record the session to FILE (mode 0600; an existing FILE is kept)")
    rec.add_argument("--record-overwrite", action="store_true",
                     help="with --record: replace FILE if it exists (a regular file only;"
                          " a symbolic link is never followed)")
    rec.add_argument("--elide-data", metavar="BYTES", type=int,
                     help="in the transcript, elide DATA bodies (and BDAT chunks) larger "
                          "than this")
    out = p.add_argument_group("behaviour")
    out.add_argument("--require-tls", action="store_true",
                     help="refuse to send AUTH or MAIL on a connection that is not TLS")
    out.add_argument("--no-color", action="store_true", help="no colours (also: NO_COLOR=1)")
    out.add_argument("--no-hints", action="store_true", help="no automatic hints under failures")
    out.add_argument("--show-data", action="store_true",
                     help="batch mode: show every message line sent after DATA (default: the "
                     "first 10 and a count)")
    out.add_argument("--no-history", action="store_true", help="do not read or write history")
    p.add_argument("--version", action="version", version=f"smtpshell {__version__}")
    add_tls_arguments(p)
    return p


def apply_profile(args: argparse.Namespace, env: Environment) -> None:
    """Fill options the command line left unset from the chosen profile."""
    if not args.profile:
        return
    from ..config import CONFIG_LIMIT, ConfigError, config_path, load_profile  # tomllib: -p

    assert env.config_dir is not None
    path = config_path(env.config_dir)
    try:
        data = read_small_file(path, CONFIG_LIMIT)
    except SmallFileMissing:
        raise UsageError(f"profile {args.profile!r}: no config file at {path}") from None
    except SmallFileError as exc:
        raise UsageError(str(exc)) from None
    try:
        profile = load_profile(path, args.profile, data)
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
    from ..session import DEFAULT_CONNECT_TIMEOUT, DEFAULT_REPLY_TIMEOUT, ConnectOptions
    from ..tls import TlsOptionError, TlsOptions, check_options

    default_port = 465 if args.implicit else (24 if args.lmtp else 25)
    if args.unix:
        host, port = "localhost", 0
    elif args.mx is not None:  # the host comes from DNS later (cli/mailsec.py)
        from .mailsec import mx_target

        host, port = mx_target(args, default_port)
    elif args.target is None:
        raise UsageError("give a server (HOST[:PORT]), --unix PATH, or -p PROFILE")
    else:
        host, port = parse_target(args.target, args.port, default_port)
    for option, value in (("--timeout", args.timeout),
                          ("--connect-timeout", args.connect_timeout),
                          ("--reply-timeout", args.reply_timeout)):
        if value is not None and not 0 < value < float("inf"):  # from a profile
            raise UsageError(f"{option}: not a positive number of seconds: {value}")
    if args.ehlo is not None:
        check_ehlo_name(args.ehlo)
    for option, value in (("--cafile", args.cafile), ("--cert", args.cert),
                          ("--key", args.key)):
        if value is not None:
            check_file(option, value)  # ssl reads it later, only after connecting
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
    try:
        check_options(tls_options)  # values that can never work: a usage error, exit 2
    except TlsOptionError as exc:
        raise UsageError(str(exc)) from None
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


EHLO_LIMIT = 255
"""The longest EHLO name: a domain is at most 255 octets (RFC 1035)."""


def check_ehlo_name(name: str) -> None:
    """A usage error unless ``name`` can follow EHLO on one line: one word, no control
    characters (a CR LF would make the rest a second command), at most 255 octets."""
    if not name:
        raise UsageError("--ehlo: empty name")
    if any(ord(c) <= 32 or ord(c) == 127 or 0x80 <= ord(c) < 0xA0 for c in name):
        raise UsageError(f"--ehlo: not one word of printable text: {name!r}")
    if not _utf8(name) or len(name.encode("utf-8")) > EHLO_LIMIT:
        raise UsageError(f"--ehlo: longer than {EHLO_LIMIT} octets or not UTF-8 text")


def default_ehlo_name() -> str:
    """The local host name (never a file name); "localhost" when there is none.

    ``socket.gethostname()`` is one system call (swaks uses it too); ``socket.getfqdn()``
    can wait seconds for DNS before the first byte is sent, so it is not used: give
    ``--ehlo`` a fully qualified name when a server insists on one.
    """
    name = socket.gethostname()
    return name if name and "/" not in name else "localhost"


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    from ..ui.core import Settings
    from .frontend import front_end

    apply_profile(args, env)
    options = options_from_args(args, env)
    if args.mx is not None or args.resolver is not None:  # DNS and HTTPS before connecting
        from .mailsec import prepare

        options = prepare(args, options, env)
    elif args.dane or args.mta_sts or args.mta_sts_url:
        raise UsageError("--dane and --mta-sts check the MX hosts of a domain: add --mx DOMAIN")
    if args.user is not None and not _utf8(args.user):
        raise UsageError("--user: not UTF-8 text (SASL sends user names as UTF-8)")
    if args.password_file is not None:
        _check_password_file(args.password_file)
    if args.record_overwrite and args.record is None:
        raise UsageError("--record-overwrite replaces the file of --record FILE: add it")
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
        show_data=args.show_data,
    )
    if env.interactive:
        options = _ask_key_passphrase(options)
    return asyncio.run(front_end(
        options, settings, env, colour=env.colour(args.no_color), show_certs=args.show_certs,
        record=args.record, record_overwrite=args.record_overwrite,
        history=not args.no_history))


def _ask_key_passphrase(options: ConnectOptions) -> ConnectOptions:
    """Interactive only: prompt (no echo) for an encrypted client key's passphrase."""
    from dataclasses import replace

    from ..tls import TlsConfigError, make_client_context

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


def _check_password_file(path: str) -> None:
    """Up front, before connecting: a password file that can never give a password."""
    from ..ui.commands.auth import PASSWORD_FILE_LIMIT

    try:
        data = read_small_file(path, PASSWORD_FILE_LIMIT)
    except SmallFileError as exc:
        raise UsageError(f"--password-file: {exc}") from None
    try:
        first = data.decode("utf-8").splitlines()[:1]
    except UnicodeDecodeError:
        raise UsageError(f"--password-file: {path} is not UTF-8 text") from None
    if not first or not first[0]:
        raise UsageError(f"--password-file: {path} is empty")


def _utf8(text: str) -> bool:
    """False for bytes from the command line that are not UTF-8 (kept as surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
