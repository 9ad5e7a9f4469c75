"""A pygments lexer for raw SMTP sessions, and colour styles for it.

``SmtpLexer`` reads session text line by line: client commands, server replies
(coloured by the first digit of the code, as httpie does for HTTP status lines),
AUTH payloads, and the message sent after ``DATA`` (headers, folded headers,
body, the final dot).  Lines may start with a transcript direction marker
(``>``, ``<``, ``~>``, ``<~``, ``->``, ``<-``, ``C:``, ``S:``) followed by a space;
``# …`` lines are comments and ``* …`` lines are transcript events.

Reply codes get their own token types, each a child of a standard pygments type so
that any stock style colours them, while our styles colour them precisely:

- ``ReplyOk`` = ``Token.Generic.Inserted.Reply``: 2yz, positive completion
- ``ReplyIntermediate`` = ``Token.Generic.Subheading.Reply``: 3yz, positive intermediate
- ``ReplyTransient`` = ``Token.Literal.String.Escape.Reply``: 4yz, transient failure
- ``ReplyPermanent`` = ``Token.Generic.Error.Reply``: 5yz, permanent failure
- ``ReplyOther`` = ``Token.Literal.Number.Reply``: any other first digit

Installed as the ``smtp`` lexer (entry point ``pygments.lexers``), so
``pygmentize -l smtp session.txt`` works.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Final, TypeAlias

# The ignores are for environments without types-Pygments; with it they are unused.
from pygments.lexer import Lexer, RegexLexer, default, words  # type: ignore[import-untyped, unused-ignore]
from pygments.style import Style  # type: ignore[import-untyped, unused-ignore]
from pygments.token import (  # type: ignore[import-untyped, unused-ignore]
    Comment,
    Generic,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
    _TokenType,
)

__all__ = [
    "SMTP_STYLE_DARK",
    "SMTP_STYLE_LIGHT",
    "ReplyIntermediate",
    "ReplyOk",
    "ReplyOther",
    "ReplyPermanent",
    "ReplyTransient",
    "SmtpDarkStyle",
    "SmtpLexer",
    "SmtpLightStyle",
    "pygments_style_for",
    "reply_token",
    "style_for",
    "tokens",
]

ReplyOk: Final = Generic.Inserted.Reply
ReplyIntermediate: Final = Generic.Subheading.Reply
ReplyTransient: Final = String.Escape.Reply
ReplyPermanent: Final = Generic.Error.Reply
ReplyOther: Final = Number.Reply

_REPLY_TOKENS: Final = {
    "2": ReplyOk,
    "3": ReplyIntermediate,
    "4": ReplyTransient,
    "5": ReplyPermanent,
}

#: Client verbs highlighted as keywords (RFC 5321 and common extensions).
VERBS: Final = (
    "EHLO", "HELO", "LHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT",
    "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH", "ETRN", "ATRN", "TURN", "BURL",
    "XCLIENT", "XFORWARD",
)  # fmt: skip

#: EHLO keywords highlighted at the start of a reply line's text.
EHLO_KEYWORDS: Final = (
    "PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "STARTTLS", "AUTH", "CHUNKING",
    "BINARYMIME", "DSN", "ENHANCEDSTATUSCODES", "DELIVERBY", "ETRN", "REQUIRETLS",
    "MT-PRIORITY", "LIMITS", "VRFY", "EXPN", "HELP", "BURL", "FUTURERELEASE",
    "XCLIENT", "XFORWARD", "ATRN", "NO-SOLICITING",
)  # fmt: skip


def reply_token(code: str) -> _TokenType:
    """The token type for a reply code, chosen by its first digit."""
    return _REPLY_TOKENS.get(code[:1], ReplyOther)


_Lexed: TypeAlias = Iterator[tuple[int, _TokenType, str]]
_GroupAction: TypeAlias = Callable[[int, str], _Lexed]


def _reply_code(start: int, text: str) -> _Lexed:
    yield start, reply_token(text), text


def _separator(start: int, text: str) -> _Lexed:
    yield start, Punctuation if text == "-" else Whitespace, text


def _bygroups(*actions: _TokenType | _GroupAction) -> Callable[[Lexer, re.Match[str]], _Lexed]:
    """Like ``pygments.lexer.bygroups`` (typed): one action per group; empty groups skipped."""

    def callback(lexer: Lexer, match: re.Match[str]) -> _Lexed:
        for index, action in enumerate(actions, start=1):
            text = match.group(index)
            if not text:
                continue
            if isinstance(action, _TokenType):
                yield match.start(index), action, text
            else:
                yield from action(match.start(index), text)

    return callback


_END = r"(?=[ \t]*(?:\n|$))"  # only blanks left on this line
_CLIENT_ARROW = r"^(~>|->|>|C:)( |(?=\n)|$)"
_SERVER_ARROW = r"^(<~|<-|<|S:)( |(?=\n)|$)"
_ARROW = r"^(~>|<~|->|<-|[<>]|[CS]:)( |(?=\n)|$)"
_BASE64 = r"(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?|[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}="  # noqa: E501
_CODE_SEP = r"(-| |(?=\n)|$)"


class SmtpLexer(RegexLexer):  # type: ignore[misc, unused-ignore]
    """Lexer for raw SMTP session text: commands, replies and the DATA message."""

    name = "SMTP"
    aliases = ["smtp"]  # noqa: RUF012 - pygments reads these class attributes
    filenames = ["*.smtp"]  # noqa: RUF012
    mimetypes = ["text/x-smtp"]  # noqa: RUF012
    url = "https://www.rfc-editor.org/rfc/rfc5321"
    flags = re.MULTILINE | re.IGNORECASE

    tokens = {  # noqa: RUF012
        "root": [
            (r"^#[^\n]*", Comment.Single),
            (r"^\*[ \t][^\n]*", Comment.Preproc),
            # transcript files (docs/transcript-format.md): events and header fields
            (r"^(==)([ \t]+)([a-z][a-z0-9-]*)", _bygroups(Comment.Preproc, Whitespace,
                                                         Keyword.Pseudo), "args"),
            (r"^(target|recorded|tool|tls|description)(:)([^\n]*)",
             _bygroups(Name.Label, Punctuation, Comment.Preproc)),
            # exact bytes (transcript v2): the arrow, then the bytes as one string
            (r"^(~>>|->>)( )([^\n]*)", _bygroups(Comment.Special, Whitespace, String.Other)),
            (_ARROW, _bygroups(Comment.Special, Whitespace)),
            (r"(334)" + _CODE_SEP, _bygroups(ReplyIntermediate, _separator), "challenge"),
            (r"(354)( |(?=\n)|$)", _bygroups(ReplyIntermediate, _separator),
             ("headers", "replystart")),
            (r"([0-9]{3})" + _CODE_SEP, _bygroups(_reply_code, _separator), "replystart"),
            (r"(DATA)([ \t]*)(\n|$)", _bygroups(Keyword, Whitespace, Whitespace), "datawait"),
            (r"(AUTH)([ \t]+)([A-Za-z0-9_-]+)", _bygroups(Keyword, Whitespace, Name.Builtin),
             "authargs"),
            (r"(MAIL|RCPT)([ \t]+)(FROM|TO)(:)",
             _bygroups(Keyword, Whitespace, Keyword, Punctuation), "args"),
            (words(VERBS, suffix=r"(?=[ \t]|\n|$)"), Keyword, "args"),
            (r"\*" + _END, Keyword),
            (r"=" + _END, String.Other),
            (r"(?:" + _BASE64 + r")" + _END, String.Other),
            (r"[ \t]+", Whitespace),
            (r"\n", Whitespace),
            (r"[^ \t\n]+", Text, "args"),
        ],
        "args": [
            (r"<[^>\n]*>", String),
            (r"([A-Za-z0-9][A-Za-z0-9-]*)(=)([0-9]+)(?=[ \t]|\n|$)",
             _bygroups(Name.Attribute, Operator, Number)),
            (r"([A-Za-z0-9][A-Za-z0-9-]*)(=)([^ \t\n]*)",
             _bygroups(Name.Attribute, Operator, Name.Constant)),
            (r"[ \t]+", Whitespace),
            (r"[^ \t\n<]+", Text),
            (r"<", Text),
            (r"\n", Whitespace, "#pop"),
        ],
        "authargs": [
            (r"[ \t]+", Whitespace),
            (r"=" + _END, String.Other),
            (r"[A-Za-z0-9+/]+=*" + _END, String.Other),
            (r"[^ \t\n]+", Text),
            (r"\n", Whitespace, "#pop"),
        ],
        "challenge": [
            (r"[A-Za-z0-9+/]+=*" + _END, String.Other),
            (r"[^\n]+", Text),
            (r"\n", Whitespace, "#pop"),
        ],
        "replystart": [
            (r"[245]\.[0-9]{1,3}\.[0-9]{1,3}(?=[ \t]|\n|$)", Number, ("#pop", "replytext")),
            (words(EHLO_KEYWORDS, suffix=r"(?=[ \t=]|\n|$)"), Name.Builtin, ("#pop", "replytext")),
            default(("#pop", "replytext")),
        ],
        "replytext": [
            (r"<[^>\n]*>", String),
            (r"[^<\n]+", Text),
            (r"<", Text),
            (r"\n", Whitespace, "#pop"),
        ],
        # After a DATA command: the server's reply decides what follows.
        "datawait": [
            (r"^#[^\n]*\n?", Comment.Single),
            (_SERVER_ARROW, _bygroups(Comment.Special, Whitespace)),
            (_CLIENT_ARROW, _bygroups(Comment.Special, Whitespace), ("#pop", "headers")),
            (r"(354)( |(?=\n)|$)", _bygroups(ReplyIntermediate, _separator),
             ("#pop", "headers", "replystart")),
            (r"([0-9]{3})(-)", _bygroups(_reply_code, _separator), "replystart"),
            (r"([0-9]{3})( |(?=\n)|$)", _bygroups(_reply_code, _separator),
             ("#pop", "replystart")),
            default(("#pop", "headers")),
        ],
        # The message: every rule consumes a whole line (after an optional arrow).
        "headers": [
            (_CLIENT_ARROW, _bygroups(Comment.Special, Whitespace)),
            (_SERVER_ARROW, _bygroups(Comment.Special, Whitespace), "#pop"),
            (r"(\.)(\n|$)", _bygroups(Keyword, Whitespace), "#pop"),
            (r"([!-9;-~]+)(:)", _bygroups(Name.Attribute, Punctuation), "replytext"),
            (r"[ \t]+", Whitespace, "replytext"),
            (r"\n", Whitespace, ("#pop", "body")),
            default(("#pop", "body")),
        ],
        "body": [
            (_CLIENT_ARROW, _bygroups(Comment.Special, Whitespace)),
            (_SERVER_ARROW, _bygroups(Comment.Special, Whitespace), "#pop"),
            (r"(\.)(\n|$)", _bygroups(Keyword, Whitespace), "#pop"),
            (r"(\.)(\.[^\n]*\n?)", _bygroups(String.Escape, Text)),
            (r"[^\n]+\n?|\n", Text),
        ],
    }  # fmt: skip


SMTP_STYLE_DARK: Final[dict[_TokenType, str]] = {
    Comment: "italic #8a8a8a",
    Comment.Special: "bold #8a8a8a",
    Comment.Preproc: "italic #87afaf",
    Keyword: "bold #87afff",
    Name.Builtin: "#5fd7af",
    Name.Attribute: "#d7af87",
    Name.Constant: "#afd787",
    Number: "#d7afd7",
    String: "#ff87af",
    String.Other: "#a8a8a8",
    String.Escape: "bold #ff8700",
    Operator: "#bcbcbc",
    ReplyOk: "bold #5fd75f",
    ReplyIntermediate: "bold #00d7ff",
    ReplyTransient: "bold #ffd700",
    ReplyPermanent: "bold #ff5f5f",
    ReplyOther: "bold #d0d0d0",
}
"""Colours for dark terminal backgrounds (no dark blue)."""

SMTP_STYLE_LIGHT: Final[dict[_TokenType, str]] = {
    Comment: "italic #6c6c6c",
    Comment.Special: "bold #6c6c6c",
    Comment.Preproc: "italic #2f6f6f",
    Keyword: "bold #1f4fbf",
    Name.Builtin: "#00796b",
    Name.Attribute: "#8a4b08",
    Name.Constant: "#4e7a00",
    Number: "#8b2f8b",
    String: "#b0306a",
    String.Other: "#6c6c6c",
    String.Escape: "bold #c05000",
    Operator: "#4e4e4e",
    ReplyOk: "bold #1a7f1a",
    ReplyIntermediate: "bold #00708a",
    ReplyTransient: "bold #b35900",
    ReplyPermanent: "bold #c41a1a",
    ReplyOther: "bold #303030",
}
"""Colours for light terminal backgrounds (no yellow)."""


class SmtpDarkStyle(Style):  # type: ignore[misc, unused-ignore]
    """Pygments style for dark backgrounds, built from ``SMTP_STYLE_DARK``."""

    name = "smtp-dark"
    background_color = "#1c1c1c"
    # A copy: pygments fills in the dict it is given.
    styles = dict(SMTP_STYLE_DARK)  # noqa: RUF012


class SmtpLightStyle(Style):  # type: ignore[misc, unused-ignore]
    """Pygments style for light backgrounds, built from ``SMTP_STYLE_LIGHT``."""

    name = "smtp-light"
    background_color = "#ffffff"
    # A copy: pygments fills in the dict it is given.
    styles = dict(SMTP_STYLE_LIGHT)  # noqa: RUF012


def _background(background: str) -> str:
    key = background.strip().lower()
    if key not in ("dark", "light"):
        raise ValueError(f"unknown background {background!r}: use 'dark' or 'light'")
    return key


def style_for(background: str = "dark") -> dict[_TokenType, str]:
    """The token -> style string dict for a ``"dark"`` or ``"light"`` background.

    Usable with prompt_toolkit's ``style_from_pygments_dict`` and as a pygments
    ``Style.styles`` dict.
    """
    styles = SMTP_STYLE_LIGHT if _background(background) == "light" else SMTP_STYLE_DARK
    return dict(styles)


def pygments_style_for(background: str = "dark") -> type[Style]:
    """The pygments ``Style`` class for a ``"dark"`` or ``"light"`` background."""
    return SmtpLightStyle if _background(background) == "light" else SmtpDarkStyle


def tokens(text: str) -> list[tuple[_TokenType, str]]:
    """Lex ``text`` as SMTP; the token texts join back to ``text`` (with CRs made LFs)."""
    lexer = SmtpLexer(stripnl=False, ensurenl=False)
    return list(lexer.get_tokens(text))
