"""``smtpshell show FILE``: a transcript highlighted on the terminal, or a standalone HTML page."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from ..context import Environment
from ..escapes import for_terminal
from ..status import ExitStatus
from .common import UsageError, parser


def build_parser() -> argparse.ArgumentParser:
    p = parser("smtpshell show", "Print a transcript highlighted, or write HTML.")
    p.add_argument("transcript", metavar="FILE")
    p.add_argument("--html", metavar="OUT",
                   help="write a standalone HTML page to OUT ('-': stdout)")
    p.add_argument("--no-color", action="store_true")
    return p


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    from ..ui.show import render_html

    path = Path(args.transcript)
    _check(path, env)
    if args.html:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read {args.transcript}: {exc.strerror}") from None
        page = render_html(text, path.name)
        if args.html == "-":
            env.stdout.write(page)
        else:
            try:
                Path(args.html).write_text(page, encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot write {args.html}: {exc.strerror}") from None
        return ExitStatus.OK
    _print(path, env, env.colour(args.no_color))
    return ExitStatus.OK


def _check(path: Path, env: Environment) -> None:
    """Parse the file as a stream: a usage error if it cannot be shown at all, a warning
    line if it is not a valid transcript (it is shown all the same)."""
    from ..transcript.model import TranscriptError
    from ..transcript.syntax import iter_load

    try:
        _, entries = iter_load(path)
        for _ in entries:
            pass
    except TranscriptError as exc:
        if exc.lineno is None:  # cannot read it
            raise UsageError(f"cannot read {path}: {exc.message.removeprefix('cannot read: ')}"
                             ) from None
        if exc.message.startswith("not UTF-8 text"):
            raise UsageError(f"{path} is not UTF-8 text (line {exc.lineno})") from None
        if exc.message.startswith("line longer than"):
            raise UsageError(f"{path}:{exc.lineno}: {exc.message}") from None
        env.stderr.write(f"smtpshell show: warning: {for_terminal(str(exc))}\n")


def _print(path: Path, env: Environment, colour: bool) -> None:
    """The file, escaped (and highlighted), a block of lines at a time: bounded memory."""
    from ..ui.show import render_plain, render_terminal

    with path.open("r", encoding="utf-8", newline="") as f:
        while True:
            block = "".join(itertools.islice(f, SHOW_BLOCK_LINES))
            if not block:
                return
            env.stdout.write(render_terminal(block, env.background) if colour
                             else render_plain(block))


SHOW_BLOCK_LINES = 2000
"""Lines highlighted and written at a time (transcript lines are highlighted one by one)."""
