"""``smtpshell show FILE``: a transcript highlighted on the terminal, or a standalone HTML page."""

from __future__ import annotations

import argparse
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
    from ..transcript.model import TranscriptError
    from ..transcript.syntax import parse
    from ..ui.show import render_html, render_plain, render_terminal

    try:
        text = Path(args.transcript).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {args.transcript}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{args.transcript} is not UTF-8 text") from None
    try:
        parse(text, source=args.transcript)
    except TranscriptError as exc:
        env.stderr.write(f"smtpshell show: warning: {for_terminal(str(exc))}\n")
    if args.html:
        page = render_html(text, Path(args.transcript).name)
        if args.html == "-":
            env.stdout.write(page)
        else:
            try:
                Path(args.html).write_text(page, encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot write {args.html}: {exc.strerror}") from None
        return ExitStatus.OK
    if env.colour(args.no_color):
        env.stdout.write(render_terminal(text, env.background))
    else:
        env.stdout.write(render_plain(text))
    return ExitStatus.OK
