"""The shell's basic commands: /help, /quit, /reconnect, /close, /tls, /status."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ... import tls
from .registry import Arg, Flag, Kind, command, lookup, unique_commands

if TYPE_CHECKING:
    from ..core import ShellCore


@command("help", "list the shell's commands, or explain one", aliases=("?",),
         args=(Arg("COMMAND", Kind.COMMAND, optional=True),))
async def _help(core: ShellCore, args: str) -> None:
    if args:
        meta = lookup(args.lstrip("/"))
        if meta is None:
            core.renderer.error(f"no such command: {args}")
        else:
            core.renderer.write(meta.usage)  # one line per call: the writer escapes a newline
            core.renderer.write(f"    {meta.help}")
        return
    core.renderer.write("Type SMTP commands; each line goes to the server with CRLF.")
    core.renderer.write("Shell commands start with '/' (in DATA mode with '/!'):")
    for meta in unique_commands():
        core.renderer.write(f"  {meta.usage:<28} {meta.help}")


@command("quit", "send QUIT if connected, then leave the shell", aliases=("exit",))
async def _quit(core: ShellCore, args: str) -> None:
    core.left_inside_data = core.session.connected and core.session.in_data
    if core.session.connected and not core.session.in_data:
        await core.session.send("QUIT", origin="shell")
    await core.session.close()
    core.quit_requested = True


@command("reconnect", "open a new connection with the same options (or trust the"
         " server's certificate by its fingerprint, or look without checking it)",
         flags=(Flag("--pin", "SHA256"), Flag("--insecure")))
async def _reconnect(core: ShellCore, args: str) -> None:
    try:
        tls_options = _reconnect_tls(core.options.tls, args.split())
    except ValueError as exc:
        core.renderer.error(f"/reconnect: {exc}")
        return
    if tls_options is not core.options.tls:
        # kept for later /reconnects too; a shared context (replays) belongs to old options
        core.options = replace(core.options, tls=tls_options, ssl_context=None)
    await core.session.close()
    core.status = await core.connect()


def _reconnect_tls(opts: tls.TlsOptions, words: list[str]) -> tls.TlsOptions:
    """The TLS options for ``/reconnect [--pin SHA256] [--insecure]``; ValueError in words."""
    pins: list[str] = []
    insecure = False
    rest = iter(words)
    for word in rest:
        if word == "--pin":
            pin = next(rest, None)
            if pin is None:
                raise ValueError("--pin needs the certificate's SHA-256 fingerprint")
            pins.append(pin)
        elif word in ("--insecure", "-k"):
            insecure = True
        else:
            raise ValueError(f"unknown argument {word!r} (use --pin SHA256 or --insecure)")
    if not pins and not insecure:
        return opts
    new = replace(opts, pins=tuple(pins) or opts.pins, insecure=insecure or opts.insecure)
    try:
        tls.check_options(new)
    except tls.TlsOptionError as exc:
        raise ValueError(str(exc)) from exc
    return new


@command("close", "close the connection without QUIT (stay in the shell)")
async def _close(core: ShellCore, args: str) -> None:
    await core.session.close()
    core.renderer.info("connection closed; /reconnect to open a new one")


@command("tls", "show the TLS report of this connection (chain: all certificates)",
         args=(Arg("chain", Kind.WORD, words=("chain",), optional=True),))
async def _tls(core: ShellCore, args: str) -> None:
    report = core.session.tls_report
    if not core.session.connected:
        why = core.session.closed_reason or "the connection is closed"
        core.renderer.info(f"not connected ({why}): /reconnect to open a new connection")
        return
    if report is None or not core.session.is_tls:
        core.renderer.info("this connection is not encrypted (type STARTTLS to start TLS)")
        return
    for line in tls.render_report(report, show_chain=args.strip() == "chain"):
        core.renderer.write(f"  {line}")


@command("status", "connection, TLS, authentication and transaction state")
async def _status(core: ShellCore, args: str) -> None:
    snap = core.session.snapshot()
    r = core.renderer
    r.write(f"  target      {snap.target}  ({'connected' if snap.connected else 'closed'})")
    r.write(f"  tls         {snap.tls_summary or 'none (plain text)'}")
    r.write(f"  auth        {snap.auth_user or ('yes' if snap.authenticated else 'no')}")
    r.write(f"  stage       {snap.stage.value}")
    caps = snap.capabilities
    if caps is None:
        r.write("  ehlo        not sent on this connection (or reset by STARTTLS)")
    else:
        r.write("  ehlo        " + " ".join(sorted(caps.keywords)))
    if snap.closed_reason:
        r.write(f"  closed      {snap.closed_reason}")
