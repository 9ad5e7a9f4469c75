"""``smtpshell show TRANSCRIPT``: a transcript highlighted, or a standalone HTML page."""

from __future__ import annotations

import argparse
import html
from collections.abc import Sequence
from pathlib import Path

from ..context import Environment


def render_html(text: str, title: str, background: str = "light") -> str:
    """A standalone HTML page of ``text`` highlighted with the SMTP lexer."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter

    from .lexer import SmtpLexer, pygments_style_for

    formatter = HtmlFormatter(full=True, title=title, style=pygments_style_for(background),
                              linenos="table", lineanchors="line", wrapcode=True, encoding="utf-8")
    page = highlight(text, SmtpLexer(), formatter)
    return page.decode("utf-8") if isinstance(page, bytes) else str(page)


def render_terminal(text: str, background: str = "dark") -> str:
    from pygments import highlight
    from pygments.formatters import Terminal256Formatter

    from .lexer import SmtpLexer, pygments_style_for

    return str(highlight(text, SmtpLexer(), Terminal256Formatter(
        style=pygments_style_for(background))))


def show_main(argv: Sequence[str], env: Environment) -> int:
    p = argparse.ArgumentParser(prog="smtpshell show",
                                description="Print a transcript highlighted, or write HTML.")
    p.add_argument("transcript", metavar="FILE")
    p.add_argument("--html", metavar="OUT",
                   help="write a standalone HTML page to OUT ('-': stdout)")
    p.add_argument("--no-color", action="store_true")
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    try:
        text = Path(args.transcript).read_text(encoding="utf-8")
    except OSError as exc:
        env.stderr.write(f"smtpshell show: cannot read {args.transcript}: {exc.strerror}\n")
        return 2
    except UnicodeDecodeError:
        env.stderr.write(f"smtpshell show: {args.transcript} is not UTF-8 text\n")
        return 2
    from ..transcript.model import TranscriptError
    from ..transcript.syntax import parse

    try:
        parse(text, source=args.transcript)
    except TranscriptError as exc:
        env.stderr.write(f"smtpshell show: warning: {exc}\n")
    if args.html:
        page = render_html(text, html.escape(Path(args.transcript).name))
        if args.html == "-":
            env.stdout.write(page)
        else:
            try:
                Path(args.html).write_text(page, encoding="utf-8")
            except OSError as exc:
                env.stderr.write(f"smtpshell show: cannot write {args.html}: {exc.strerror}\n")
                return 2
        return 0
    if env.colour(args.no_color):
        env.stdout.write(render_terminal(text, env.background))
    else:
        env.stdout.write(text)
    return 0
