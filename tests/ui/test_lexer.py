from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import PygmentsTokens, to_formatted_text
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.styles import style_from_pygments_dict
from pygments import highlight
from pygments.formatters import TerminalTrueColorFormatter
from pygments.lexers import find_lexer_class_for_filename, get_lexer_by_name
from pygments.token import (
    Comment,
    Error,
    Generic,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)

from smtpshell.ui.lexer import (
    SMTP_STYLE_DARK,
    SMTP_STYLE_LIGHT,
    ReplyIntermediate,
    ReplyOk,
    ReplyOther,
    ReplyPermanent,
    ReplyTransient,
    SmtpDarkStyle,
    SmtpLexer,
    SmtpLightStyle,
    pygments_style_for,
    reply_token,
    style_for,
    tokens,
)


def significant(text: str) -> list[tuple[object, str]]:
    """The tokens of ``text`` without whitespace, with values stripped."""
    return [(t, v.strip()) for t, v in tokens(text) if t not in Whitespace and v.strip()]


def token_of(text: str, value: str) -> object:
    """The token type of the first token whose value is ``value``."""
    for token, got in tokens(text):
        if got.strip() == value:
            return token
    raise AssertionError(f"{value!r} not among {tokens(text)!r}")


# --- replies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "token"),
    [
        ("220", ReplyOk),
        ("250", ReplyOk),
        ("334", ReplyIntermediate),
        ("354", ReplyIntermediate),
        ("421", ReplyTransient),
        ("451", ReplyTransient),
        ("550", ReplyPermanent),
        ("554", ReplyPermanent),
        ("199", ReplyOther),
        ("999", ReplyOther),
        ("", ReplyOther),
    ],
)
def test_reply_token_by_first_digit(code: str, token: Any) -> None:
    assert reply_token(code) is token


@pytest.mark.parametrize(
    ("token", "parent"),
    [
        (ReplyOk, Generic.Inserted),
        (ReplyIntermediate, Generic.Subheading),
        (ReplyTransient, String.Escape),
        (ReplyPermanent, Generic.Error),
        (ReplyOther, Number),
    ],
)
def test_reply_tokens_derive_from_standard_types(token: Any, parent: Any) -> None:
    assert token in parent  # pygments: "is a subtype of"
    assert token is not parent


def test_multiline_ehlo_reply() -> None:
    text = (
        "250-mx.example.com Hello client\n"
        "250-PIPELINING\n"
        "250-SIZE 35882577\n"
        "250-AUTH PLAIN LOGIN\n"
        "250-AUTH=PLAIN LOGIN\n"
        "250 ENHANCEDSTATUSCODES\n"
    )
    assert significant(text) == [
        (ReplyOk, "250"), (Punctuation, "-"), (Text, "mx.example.com Hello client"),
        (ReplyOk, "250"), (Punctuation, "-"), (Name.Builtin, "PIPELINING"),
        (ReplyOk, "250"), (Punctuation, "-"), (Name.Builtin, "SIZE"), (Text, "35882577"),
        (ReplyOk, "250"), (Punctuation, "-"), (Name.Builtin, "AUTH"), (Text, "PLAIN LOGIN"),
        (ReplyOk, "250"), (Punctuation, "-"), (Name.Builtin, "AUTH"), (Text, "=PLAIN LOGIN"),
        (ReplyOk, "250"), (Name.Builtin, "ENHANCEDSTATUSCODES"),
    ]  # fmt: skip


def test_permanent_failure_with_enhanced_code_and_address() -> None:
    assert significant("550 5.7.1 <bob@example.org>: Relay access denied\n") == [
        (ReplyPermanent, "550"),
        (Number, "5.7.1"),
        (String, "<bob@example.org>"),
        (Text, ": Relay access denied"),
    ]


def test_transient_failure_and_greeting() -> None:
    assert token_of("421 4.3.2 Service shutting down\n", "421") is ReplyTransient
    assert token_of("421 4.3.2 Service shutting down\n", "4.3.2") is Number
    assert significant("220 mx.example.com ESMTP\n")[0] == (ReplyOk, "220")


def test_reply_code_without_text() -> None:
    assert significant("250\n") == [(ReplyOk, "250")]
    assert significant("250") == [(ReplyOk, "250")]


def test_numbers_in_text_are_not_an_enhanced_code() -> None:
    # RFC 5321 §4.2.1's own example: text beginning with numbers.
    assert significant("250-234 Text beginning with numbers\n") == [
        (ReplyOk, "250"),
        (Punctuation, "-"),
        (Text, "234 Text beginning with numbers"),
    ]


def test_auth_challenge_is_base64() -> None:
    assert significant("334 VXNlcm5hbWU6\n") == [
        (ReplyIntermediate, "334"),
        (String.Other, "VXNlcm5hbWU6"),
    ]
    assert significant("334 \n") == [(ReplyIntermediate, "334")]


# --- commands ----------------------------------------------------------------------------


def test_mail_from_with_parameters() -> None:
    assert significant("MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME\n") == [
        (Keyword, "MAIL"),
        (Keyword, "FROM"),
        (Punctuation, ":"),
        (String, "<a@b>"),
        (Name.Attribute, "SIZE"),
        (Operator, "="),
        (Number, "10"),
        (Name.Attribute, "BODY"),
        (Operator, "="),
        (Name.Constant, "8BITMIME"),
    ]


def test_rcpt_to_null_path_and_space() -> None:
    assert significant("rcpt to: <c@d> NOTIFY=SUCCESS,FAILURE\n") == [
        (Keyword, "rcpt"),
        (Keyword, "to"),
        (Punctuation, ":"),
        (String, "<c@d>"),
        (Name.Attribute, "NOTIFY"),
        (Operator, "="),
        (Name.Constant, "SUCCESS,FAILURE"),
    ]
    assert (String, "<>") in significant("MAIL FROM:<>\n")


def test_auth_plain_initial_response() -> None:
    assert significant("AUTH PLAIN AHVzZXIAcGFzcw==\n") == [
        (Keyword, "AUTH"),
        (Name.Builtin, "PLAIN"),
        (String.Other, "AHVzZXIAcGFzcw=="),
    ]
    assert significant("AUTH PLAIN =\n")[-1] == (String.Other, "=")
    assert significant("auth login\n") == [(Keyword, "auth"), (Name.Builtin, "login")]


@pytest.mark.parametrize("line", ["dXNlcg==", "cGFzcw==", "AHVzZXIAcGFzcw==", "="])
def test_bare_base64_response_line(line: str) -> None:
    assert significant(line + "\n") == [(String.Other, line)]


def test_auth_cancel() -> None:
    assert significant("*\n") == [(Keyword, "*")]


@pytest.mark.parametrize(
    "verb", ["EHLO", "helo", "Lhlo", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP", "STARTTLS"]
)
def test_verbs_are_keywords_in_any_case(verb: str) -> None:
    assert significant(f"{verb} something\n")[0] == (Keyword, verb)


def test_unknown_command_is_plain_text() -> None:
    assert significant("FOO bar\n") == [(Text, "FOO"), (Text, "bar")]
    assert significant("MAILBOX x\n")[0] == (Text, "MAILBOX")


# --- DATA ---------------------------------------------------------------------------------

MESSAGE = (
    "DATA\n"
    "354 End data with <CR><LF>.<CR><LF>\n"
    "From: Alice <alice@example.com>\n"
    "Subject: a folded\n"
    "  subject line\n"
    "\n"
    "MAIL FROM:<not@a.command>\n"
    "..leading dot\n"
    ".\n"
    "250 2.0.0 Ok: queued\n"
    "QUIT\n"
)


def test_data_block_headers_body_and_final_dot() -> None:
    assert significant(MESSAGE) == [
        (Keyword, "DATA"),
        (ReplyIntermediate, "354"),
        (Text, "End data with"),
        (String, "<CR>"), (String, "<LF>"), (Text, "."), (String, "<CR>"), (String, "<LF>"),
        (Name.Attribute, "From"), (Punctuation, ":"), (Text, "Alice"),
        (String, "<alice@example.com>"),
        (Name.Attribute, "Subject"), (Punctuation, ":"), (Text, "a folded"),
        (Text, "subject line"),
        (Text, "MAIL FROM:<not@a.command>"),
        (String.Escape, "."), (Text, ".leading dot"),
        (Keyword, "."),
        (ReplyOk, "250"), (Number, "2.0.0"), (Text, "Ok: queued"),
        (Keyword, "QUIT"),
    ]  # fmt: skip


def test_data_without_a_visible_reply_goes_straight_to_the_message() -> None:
    # What a user types in the shell: the server's 354 is not part of the text.
    text = "DATA\nSubject: x\n\nQUIT is body text here\n.\nQUIT\n"
    assert significant(text) == [
        (Keyword, "DATA"),
        (Name.Attribute, "Subject"), (Punctuation, ":"), (Text, "x"),
        (Text, "QUIT is body text here"),
        (Keyword, "."),
        (Keyword, "QUIT"),
    ]  # fmt: skip


def test_refused_data_does_not_open_a_message() -> None:
    text = "DATA\n554 5.5.1 Error: no valid recipients\nQUIT\n"
    assert significant(text) == [
        (Keyword, "DATA"),
        (ReplyPermanent, "554"),
        (Number, "5.5.1"),
        (Text, "Error: no valid recipients"),
        (Keyword, "QUIT"),
    ]


def test_pipelined_replies_before_354() -> None:
    text = (
        "MAIL FROM:<a@b>\nRCPT TO:<c@d>\nDATA\n"
        "250 2.1.0 Ok\n250 2.1.5 Ok\n354 go ahead\n"
        "Subject: hi\n\nbody\n.\n"
    )
    found = significant(text)
    assert (ReplyIntermediate, "354") in found
    assert (Name.Attribute, "Subject") in found
    assert found[-2:] == [(Text, "body"), (Keyword, ".")]


def test_headerless_message_is_body() -> None:
    assert significant("354 go\nnot a header line\n.\n")[-2:] == [
        (Text, "not a header line"),
        (Keyword, "."),
    ]


def test_a_dot_inside_a_line_does_not_end_the_message() -> None:
    found = significant("DATA\n\n. not the end\n.x\n.\nNOOP\n")
    assert (Keyword, "NOOP") in found
    assert found.count((Keyword, ".")) == 1


# --- transcripts ---------------------------------------------------------------------------


@pytest.mark.parametrize("marker", [">", "<", "~>", "<~", "->", "<-", "C:", "S:"])
def test_direction_markers(marker: str) -> None:
    assert significant(f"{marker} EHLO x\n")[:2] == [(Comment.Special, marker), (Keyword, "EHLO")]
    assert significant(f"{marker} 250 OK\n")[:2] == [(Comment.Special, marker), (ReplyOk, "250")]


def test_transcript_with_data_block() -> None:
    text = (
        "# a recorded session\n"
        "* connected to 127.0.0.1:2525\n"
        "< 220 sandbox ESMTP\n"
        "~> DATA\n"
        "<~ 354 End data with <CR><LF>.<CR><LF>\n"
        "~> Subject: hello\n"
        "~>\n"
        "~> > quoted reply text\n"
        "~> .\n"
        "<~ 250 OK\n"
    )
    found = significant(text)
    assert found[:2] == [(Comment.Single, "# a recorded session"),
                         (Comment.Preproc, "* connected to 127.0.0.1:2525")]  # fmt: skip
    assert (Name.Attribute, "Subject") in found
    assert (Text, "> quoted reply text") in found
    assert found[-5:] == [
        (Comment.Special, "~>"),
        (Keyword, "."),
        (Comment.Special, "<~"),
        (ReplyOk, "250"),
        (Text, "OK"),
    ]


def test_server_line_ends_an_unterminated_message() -> None:
    text = "> DATA\n< 354 go\n> Subject: x\n< 421 4.4.2 timeout\n> QUIT\n"
    found = significant(text)
    assert (ReplyTransient, "421") in found
    assert found[-1] == (Keyword, "QUIT")


def test_comment_only_at_line_start() -> None:
    assert significant("# note\n") == [(Comment.Single, "# note")]
    assert significant("> # sent to the server\n")[1] == (Text, "#")


# --- robustness -----------------------------------------------------------------------------

SMTPISH = st.lists(
    st.sampled_from(
        ["\n", "\r\n", "\r", " ", "\t", "<", ">", "~>", "<~", "C: ", "S: ", "-", ".", "..",
         "=", ":", "*", "#", "DATA", "data\n", "354 ", "354-", "250-", "250 ", "5.7.1", "334 ",
         "AUTH ", "MAIL FROM:", "Subject: ", "\x00", "é", "\u2028", "AHVzZXIAcGFzcw==", "x"]
    ),
    max_size=60,
).map("".join)  # fmt: skip


def check_lexes(text: str) -> None:
    found = tokens(text)
    # pygments drops a leading byte-order mark (the screen never lexes one: outside text is
    # escaped first, U+FEFF included)
    expected = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    assert "".join(value for _, value in found) == expected
    assert all(value for _, value in found)
    assert not any(token in Error for token, _ in found)


@given(st.text())
def test_any_text_lexes(text: str) -> None:
    check_lexes(text)


@given(SMTPISH)
def test_smtp_like_text_lexes(text: str) -> None:
    check_lexes(text)
    list(SmtpLexer().get_tokens(text))  # the default options (stripnl, ensurenl) too


# --- registration and pygmentize ---------------------------------------------------------------


def test_entry_point_registered() -> None:
    entry = {ep.name: ep for ep in importlib.metadata.entry_points(group="pygments.lexers")}
    assert entry["smtp"].value == "smtpshell.ui.lexer:SmtpLexer"
    assert entry["smtp"].load() is SmtpLexer


def test_pygments_finds_the_lexer() -> None:
    assert isinstance(get_lexer_by_name("smtp"), SmtpLexer)
    assert find_lexer_class_for_filename("session.smtp") is SmtpLexer


def pygmentize_commands() -> list[list[str]]:
    commands = [[sys.executable, "-m", "pygments"]]
    script = Path(sys.executable).parent / "pygmentize"
    if script.exists():
        commands.append([str(script)])
    return commands


@pytest.mark.parametrize("command", pygmentize_commands(), ids=lambda c: Path(c[-1]).name)
def test_pygmentize_raw(command: list[str], tmp_path: Path) -> None:
    session = tmp_path / "session.smtp"
    session.write_text("> RCPT TO:<c@d>\n< 550 5.7.1 Relaying denied\n")
    result = subprocess.run(
        [*command, "-l", "smtp", "-f", "raw", str(session)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Token.Generic.Error.Reply\t'550'" in result.stdout
    assert "Token.Keyword\t'RCPT'" in result.stdout


def test_pygmentize_terminal_colours(tmp_path: Path) -> None:
    session = tmp_path / "s.txt"
    session.write_text("250 OK\n")
    result = subprocess.run(
        [sys.executable, "-m", "pygments", "-l", "smtp", "-f", "terminal256", str(session)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b[" in result.stdout
    assert re.sub(r"\x1b\[[0-9;]*m", "", result.stdout) == "250 OK\n"


# --- styles --------------------------------------------------------------------------------------


def luminance(hex_colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(
    ("styles", "background"), [(SMTP_STYLE_DARK, "000000"), (SMTP_STYLE_LIGHT, "ffffff")]
)
def test_style_colours_are_readable(styles: dict[object, str], background: str) -> None:
    for token, style in styles.items():
        colour = re.search(r"#([0-9a-fA-F]{6})\b", style)
        assert colour is not None, (token, style)
        assert contrast(colour[1], background) >= 4.5, (token, style)  # WCAG AA


@pytest.mark.parametrize("background", ["dark", "light", "LIGHT "])
def test_style_for(background: str) -> None:
    styles = style_for(background)
    assert {ReplyOk, ReplyIntermediate, ReplyTransient, ReplyPermanent} <= styles.keys()
    assert len({styles[t] for t in (ReplyOk, ReplyIntermediate, ReplyTransient,
                                    ReplyPermanent)}) == 4  # fmt: skip
    styles[ReplyOk] = "changed"  # a copy: the module's dicts stay as they are
    assert style_for(background)[ReplyOk] != "changed"


def test_style_for_unknown_background() -> None:
    with pytest.raises(ValueError, match="dark' or 'light"):
        style_for("purple")


def test_style_dicts_are_not_filled_in_by_pygments() -> None:
    assert len(SMTP_STYLE_DARK) == len(SMTP_STYLE_LIGHT) < 30
    assert all(SMTP_STYLE_DARK.values())


def test_pygments_styles_render() -> None:
    assert pygments_style_for() is SmtpDarkStyle
    assert pygments_style_for("light") is SmtpLightStyle
    for style in (SmtpDarkStyle, SmtpLightStyle):
        assert style.style_for_token(ReplyPermanent)["bold"]
        out = highlight("550 no\n", SmtpLexer(), TerminalTrueColorFormatter(style=style))
        assert "\x1b[" in out


@pytest.mark.parametrize("background", ["dark", "light"])
def test_prompt_toolkit_style_and_fragments(background: str) -> None:
    style = style_from_pygments_dict(style_for(background))
    fragments = to_formatted_text(PygmentsTokens(tokens("550 5.7.1 denied\n")))
    attrs = style.get_attrs_for_style_str(fragments[0][0])
    assert fragments[0][1] == "550"
    assert attrs.bold
    assert attrs.color == style_for(background)[ReplyPermanent].split("#")[1]


# --- helpers for the shell --------------------------------------------------------------------


def test_tokens_round_trip() -> None:
    text = "\n\nEHLO x\r\n250 ok"
    assert "".join(v for _, v in tokens(text)) == "\n\nEHLO x\n250 ok"


def test_prompt_toolkit_lexer_on_a_document() -> None:
    lexer = PygmentsLexer(SmtpLexer, sync_from_start=True)
    get_line = lexer.lex_document(Document("MAIL FROM:<a@b>\nDATA\nSubject: x"))
    first = get_line(0)
    assert first[0] == ("class:pygments.keyword", "MAIL")
    assert ("class:pygments.name.attribute", "Subject") in get_line(2)


def test_transcript_header_and_event_lines() -> None:
    from pygments.token import Comment, Keyword, Name

    from smtpshell.ui.lexer import tokens

    text = "target: 127.0.0.1:25\n== tls via=starttls protocol=TLSv1.3\n<~ 250 OK\n"
    toks = [(t, v) for t, v in tokens(text) if v.strip()]
    assert toks[0] == (Name.Label, "target")
    assert (Comment.Preproc, "==") in toks
    assert (Keyword.Pseudo, "tls") in toks
    assert (Name.Attribute, "via") in toks
