"""The shell's own meta-commands: how they are declared, found and split from SMTP text.

A command is an async function ``handler(core, args)`` registered with ``@command``.
It DECLARES its arguments (``Arg``) and options (``Flag``), so the usage line, /help
and completion all read the same declaration instead of parsing a usage string::

    @command("record", "record this session to a transcript file, or stop recording",
             args=(Arg("FILE", Kind.FILE, words=("off",), optional=True),))
    async def _record(core: ShellCore, args: str) -> None: ...

Meta-commands start with ``/`` (no SMTP verb does).  In DATA mode every line goes to
the server; there the escape is ``/!``, e.g. ``/!status``.  Nothing here imports the
shell core: command modules import ``ShellCore`` only for typing.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core import ShellCore

__all__ = [
    "DATA_ESCAPE",
    "PREFIX",
    "REGISTRY",
    "Arg",
    "CommandSpec",
    "Flag",
    "Handler",
    "Kind",
    "MetaCommand",
    "command",
    "lookup",
    "split_meta",
    "unique_commands",
]

PREFIX = "/"
DATA_ESCAPE = "/!"

Handler = Callable[["ShellCore", str], Awaitable[None]]


class Kind(enum.Enum):
    """What an argument is, so completion knows what to offer there."""

    TEXT = "text"
    """Free text: nothing to offer (beyond the declared ``words``)."""
    WORD = "word"
    """Exactly one of the declared ``words`` (a sub-command, a switch name, on/off)."""
    FILE = "file"
    """A file name (the declared ``words``, e.g. ``off``, are offered too)."""
    MECHANISM = "mechanism"
    """A SASL mechanism, one of the declared ``words``: the ones the server advertised
    come first (the usage line shows only the placeholder)."""
    USER = "user"
    """A user name: nothing to guess."""
    COMMAND = "command"
    """The name of one of the shell's own commands."""
    TOPIC = "topic"
    """Something /explain knows: an EHLO keyword or a verb (or a code, typed)."""
    SECRET = "secret"
    """Text that may carry a secret (/b64's): the history file keeps the command without it."""


@dataclass(frozen=True)
class Arg:
    """One positional argument."""

    name: str
    """The placeholder in the usage line, e.g. ``FILE``; unused for ``Kind.WORD``."""
    kind: Kind = Kind.TEXT
    words: tuple[str, ...] = ()
    """Literal words accepted here (all the choices of a ``Kind.WORD``)."""
    optional: bool = False

    def usage(self) -> str:
        if self.kind is Kind.MECHANISM:
            names: tuple[str, ...] = (self.name,)
        else:
            names = self.words if self.kind is Kind.WORD else (self.name, *self.words)
        text = "|".join(names)
        return f"[{text}]" if self.optional else text


@dataclass(frozen=True)
class Flag:
    """An option such as ``--bdat`` or ``--chunk N`` (``value`` names its value)."""

    name: str
    value: str | None = None

    def usage(self) -> str:
        return f"[{self.name} {self.value}]" if self.value else f"[{self.name}]"


def on_off(optional: bool = False) -> Arg:
    """The usual ``on|off`` argument."""
    return Arg("on|off", Kind.WORD, words=("on", "off"), optional=optional)


@dataclass(frozen=True, kw_only=True)
class CommandSpec:
    """What /help and completion know about a command: everything but its code."""

    name: str
    help: str = ""
    args: tuple[Arg, ...] = ()
    flags: tuple[Flag, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        parts = [PREFIX + self.name]
        parts += [a.usage() for a in self.args]
        parts += [f.usage() for f in self.flags]
        return " ".join(parts)


@dataclass(frozen=True, kw_only=True)
class MetaCommand(CommandSpec):
    """A registered command: its spec and the function that runs it."""

    handler: Handler


REGISTRY: dict[str, MetaCommand] = {}
"""Name and alias -> command; filled by the command modules as the package loads."""


def command(
    name: str,
    help: str,
    *,
    args: Sequence[Arg] = (),
    flags: Sequence[Flag] = (),
    aliases: Sequence[str] = (),
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as ``/name`` (and its aliases), with its declared arguments."""

    def register(handler: Handler) -> Handler:
        meta = MetaCommand(name=name, help=help, args=tuple(args), flags=tuple(flags),
                           aliases=tuple(aliases), handler=handler)  # fmt: skip
        for key in (name, *aliases):
            old = REGISTRY.get(key)
            if old is not None and _origin(old.handler) != _origin(handler):
                raise ValueError(f"/{key} is registered twice")
            REGISTRY[key] = meta
        return handler

    return register


def _origin(handler: Handler) -> tuple[str, str]:
    return handler.__module__, handler.__qualname__


def lookup(name: str) -> MetaCommand | None:
    return REGISTRY.get(name.lower())


def unique_commands() -> list[MetaCommand]:
    seen: dict[str, MetaCommand] = {}
    for meta in REGISTRY.values():
        seen.setdefault(meta.name, meta)
    return sorted(seen.values(), key=lambda m: m.name)


def split_meta(line: str, *, in_data: bool) -> tuple[str, str] | None:
    """(name, argument text) when ``line`` is a meta-command, else None.

    The one decision, used by dispatch, the history file and recording alike: blanks
    (spaces, tabs) before the ``/`` do not make a line SMTP text (no SMTP command starts
    with a blank), so `` /b64 secret`` runs /b64 and is never sent; the name ends at any
    blank, so ``/b64<TAB>secret`` is /b64 with its argument, not an unknown command.
    """
    prefix = DATA_ESCAPE if in_data else PREFIX
    stripped = line.lstrip(" \t")
    if not stripped.startswith(prefix):
        return None
    parts = stripped[len(prefix) :].split(None, 1)
    if not parts:
        return None
    return parts[0], parts[1].strip() if len(parts) > 1 else ""
