"""What every sub-command shares: the usage error, targets, ports and the help formatter."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

from ..status import ExitStatus


class UsageError(Exception):
    """A problem with the command line or a file it names: ``main`` prints it in one line
    after the command's name and returns ``status`` (2, usage, unless said otherwise)."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.USAGE) -> None:
        super().__init__(message)
        self.status = status


def _ascii_host_ok(host: str) -> bool:
    """What ``host.encode("idna")`` (the resolver's step) accepts: bidi or control
    characters cannot pass.  An ASCII name is checked as the codec checks it (labels of
    1 to 63 octets, the last may be empty), without loading the codec (``stringprep``,
    ``unicodedata``) on every start."""
    if host.isascii():
        *labels, last = host.split(".")
        return all(0 < len(label) < 64 for label in labels) and len(last) < 64
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True


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
    if not _ascii_host_ok(host):
        raise UsageError(f"invalid host name: {host}")
    if port_text is None:
        return host, default_port
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"invalid port: {port_text}")
    return host, int(port_text)


def port_number(text: str) -> int:
    """argparse type: a port, 0 (any free port) to 65535."""
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return int(text)


def seconds(text: str) -> float:
    """argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def check_file(option: str, path: str) -> None:
    """A usage error unless ``path`` is a regular file: for files a library opens later
    (``--cafile``: ssl reads it when the handshake starts)."""
    from ..context import SmallFileError, check_regular_file

    try:
        check_regular_file(path)
    except SmallFileError as exc:
        raise UsageError(f"{option}: {exc}") from None


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


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse makes a formatter per add_argument; this one does not import shutil."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        width = _terminal_columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


class Parser(argparse.ArgumentParser):
    """argparse quotes the command line in its errors (``unrecognized arguments: …``, a
    value it could not read): what it prints is escaped for the terminal."""

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        from ..escapes import for_terminal_lines

        super()._print_message(for_terminal_lines(message) if message else message, file)


def parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """An ArgumentParser for ``smtpshell PROG`` with the shared formatter."""
    return Parser(prog=prog, description=description, epilog=epilog,
                  formatter_class=HelpFormatter)
