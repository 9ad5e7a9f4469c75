"""A transcript highlighted for the terminal, or as a standalone HTML page
(``smtpshell show``; its command line is ``smtpshell.cli.show``).

A transcript is a file from outside: a raw control character in it (the format writes them
as escapes, but a file can hold anything) is shown escaped, on the terminal and in the HTML
page alike (``escapes.for_terminal_lines``, before the highlighter adds its own colours or
markup).  Error lines that quote a file name or a message go through ``for_terminal``.
"""

from __future__ import annotations

import html

from ..escapes import for_terminal, for_terminal_lines


def render_html(text: str, title: str, background: str = "light") -> str:
    """A standalone HTML page of ``text`` highlighted with the SMTP lexer.

    ``text`` and ``title`` (plain text, a file name) are escaped for the terminal first, so
    no control character reaches the page, then HTML-escaped."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter

    from .lexer import SmtpLexer, pygments_style_for

    formatter = HtmlFormatter(full=True, title=html.escape(for_terminal(title)),
                              style=pygments_style_for(background), linenos="table",
                              lineanchors="line", wrapcode=True, encoding="utf-8")
    page = highlight(for_terminal_lines(text), SmtpLexer(), formatter)
    return page.decode("utf-8") if isinstance(page, bytes) else str(page)


def render_terminal(text: str, background: str = "dark") -> str:
    """``text`` highlighted for the terminal: escaped first, so the highlighter's colours
    are the only control sequences in the result."""
    from pygments import highlight
    from pygments.formatters import Terminal256Formatter

    from .lexer import SmtpLexer, pygments_style_for

    return str(highlight(for_terminal_lines(text), SmtpLexer(), Terminal256Formatter(
        style=pygments_style_for(background))))


def render_plain(text: str) -> str:
    """``text`` for a terminal without colour (or a pipe): escaped, line by line."""
    return for_terminal_lines(text)


def error_line(message: str) -> str:
    """``smtpshell show: MESSAGE`` for stderr; the message may quote a file name or a
    parse error with the file's text in it, so it is escaped."""
    return f"smtpshell show: {for_terminal(message)}\n"
