"""The shell's own meta-commands: a registry shared by the REPL and batch mode.

Meta-commands start with ``/`` (no SMTP verb does).  In DATA mode every line goes to
the server; there the escape is ``/!``, e.g. ``/!status``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core import ShellCore

PREFIX = "/"
DATA_ESCAPE = "/!"

Handler = Callable[["ShellCore", str], Awaitable[None]]


@dataclass(frozen=True)
class MetaCommand:
    name: str
    usage: str
    help: str
    handler: Handler
    takes_file: bool = False
    aliases: tuple[str, ...] = ()


REGISTRY: dict[str, MetaCommand] = {}


def command(
    name: str, usage: str, help: str, *, takes_file: bool = False, aliases: tuple[str, ...] = ()
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        meta = MetaCommand(name, usage, help, handler, takes_file, aliases)
        REGISTRY[name] = meta
        for alias in aliases:
            REGISTRY[alias] = meta
        return handler

    return register


def lookup(name: str) -> MetaCommand | None:
    return REGISTRY.get(name.lower())


def unique_commands() -> list[MetaCommand]:
    seen: dict[str, MetaCommand] = {}
    for meta in REGISTRY.values():
        seen.setdefault(meta.name, meta)
    return sorted(seen.values(), key=lambda m: m.name)


def split_meta(line: str, *, in_data: bool) -> tuple[str, str] | None:
    """(name, argument text) when ``line`` is a meta-command, else None."""
    prefix = DATA_ESCAPE if in_data else PREFIX
    if not line.startswith(prefix):
        return None
    body = line[len(prefix) :].strip()
    if not body:
        return None
    name, _, rest = body.partition(" ")
    return name, rest.strip()
