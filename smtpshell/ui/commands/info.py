"""/explain and /set: knowledge and the shell's switches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .registry import Arg, Kind, command, on_off

if TYPE_CHECKING:
    from ..core import ShellCore

SWITCHES = {
    "hints": "print a short hint under common failure replies",
    "require-tls": "refuse to send AUTH or MAIL on a connection that is not TLS",
    "auth-in-clear": "allow /auth on a plain connection without asking",
}


@command("explain", "explain a reply code, an enhanced status code (RFC 3463) or an EHLO keyword",
         args=(Arg("CODE|X.Y.Z|KEYWORD|REPLY", Kind.TOPIC, words=("DANE", "MTA-STS", "TLSA")),))
async def _explain(core: ShellCore, args: str) -> None:
    query = args.strip()
    if not query and core.last_replies:
        query = core.last_replies[-1].lines[0]
    if not query:
        core.renderer.error("usage: /explain 550, /explain 5.7.1, /explain PIPELINING")
        return
    from ...explain.lookup import explain  # its tables: only when /explain runs

    lines = explain(query)
    if lines is None:
        core.renderer.error(f"nothing known about {query!r}")
        return
    for line in lines:
        core.renderer.write(f"  {line}")


@command("set", "show or change the shell's switches",
         args=(Arg("SWITCH", Kind.WORD, words=tuple(SWITCHES), optional=True), on_off(True)))
async def _set(core: ShellCore, args: str) -> None:
    words = args.split()
    settings = core.settings
    values = {
        "hints": settings.hints,
        "require-tls": settings.require_tls,
        "auth-in-clear": settings.allow_plain_auth,
    }
    if not words:
        for name, value in values.items():
            core.renderer.write(f"  {name:<14} {'on' if value else 'off':<4} {SWITCHES[name]}")
        return
    if len(words) != 2 or words[0] not in SWITCHES or words[1] not in ("on", "off"):
        core.renderer.error("usage: /set hints|require-tls|auth-in-clear on|off")
        return
    on = words[1] == "on"
    if words[0] == "hints":
        settings.hints = core.renderer.hints = on
    elif words[0] == "require-tls":
        settings.require_tls = on
    else:
        settings.allow_plain_auth = on
    core.renderer.info(f"{words[0]} is {words[1]}")
