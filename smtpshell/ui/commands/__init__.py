"""The shell's own commands (``/help``, ``/send``, ``/auth``…), one module per family.

Importing this package loads every command module, and each registers its commands
in ``registry.REGISTRY``; the shell core reads the registry and imports no command
module itself.  How to add a command: ``registry``'s docstring.
"""

from __future__ import annotations

from . import auth, builtin, info, mail, mailsec, record
from .registry import (
    DATA_ESCAPE,
    PREFIX,
    Arg,
    CommandSpec,
    Flag,
    Kind,
    MetaCommand,
    command,
    lookup,
    split_meta,
    unique_commands,
)

__all__ = [
    "DATA_ESCAPE",
    "PREFIX",
    "Arg",
    "CommandSpec",
    "Flag",
    "Kind",
    "MetaCommand",
    "auth",
    "builtin",
    "command",
    "info",
    "lookup",
    "mail",
    "mailsec",
    "record",
    "split_meta",
    "unique_commands",
]
