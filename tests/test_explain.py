from __future__ import annotations

import re

import pytest

from smtpshell.explain import ENHANCED_DETAILS, KEYWORDS, REPLY_CODES, explain, hint_for

BASIC_CODES = [
    220, 221, 235, 250, 251, 252, 334, 354, 421, 450, 451, 452, 454, 455, 500, 501, 502,
    503, 504, 521, 530, 534, 535, 538, 550, 551, 552, 553, 554, 555,
]  # fmt: skip

SOURCE = re.compile(r"\((?:RFC \d+[^)]*|IANA [^)]*)\)$")


@pytest.mark.parametrize("code", BASIC_CODES)
def test_basic_reply_codes(code: int) -> None:
    lines = explain(str(code))
    assert lines is not None
    assert 1 <= len(lines) <= 2
    assert lines[0].startswith(f"{code}: ")
    assert SOURCE.search(lines[0]), lines[0]
    assert "RFC 5321 §4.2.1" in lines[1]


@pytest.mark.parametrize(
    ("code", "source"),
    [("250", "RFC 5321 §4.2.2"), ("521", "RFC 7504"), ("535", "RFC 4954"),
     ("252", "RFC 5321 §3.5.3"), ("334", "RFC 4954")],
)  # fmt: skip
def test_reply_code_sources(code: str, source: str) -> None:
    lines = explain(code)
    assert lines is not None
    assert source in lines[0]


@pytest.mark.parametrize(
    ("code", "klass"),
    [("250", "positive completion"), ("354", "positive intermediate"),
     ("451", "transient"), ("554", "permanent")],
)  # fmt: skip
def test_reply_class_line(code: str, klass: str) -> None:
    lines = explain(code)
    assert lines is not None
    assert klass in lines[1]


def test_unregistered_reply_code_is_explained_by_class_and_category() -> None:
    assert explain("259") == [
        "259: not a standard reply code; x5z mail system (RFC 5321 §4.2.1)",
        "2yz positive completion: the command was accepted (RFC 5321 §4.2.1)",
    ]


def test_rfc3463_example() -> None:
    assert explain("5.7.1") == [
        "5.7.1: Permanent failure · Security or policy status · "
        "Delivery not authorized, message refused (RFC 3463 §3.8)"
    ]


@pytest.mark.parametrize(
    ("code", "words", "source"),
    [
        ("5.7.8", "Authentication credentials invalid", "RFC 4954"),
        ("5.7.9", "too weak", "RFC 4954"),
        ("5.7.11", "Encryption required", "RFC 4954"),
        ("4.7.12", "password transition", "RFC 4954"),
        ("5.7.0", "Other or undefined security status", "RFC 3463 §3.8"),
        ("5.7.10", "Encryption needed", "RFC 5248"),
        ("5.6.7", "Non-ASCII addresses", "RFC 6531"),
        ("5.7.13", "account disabled", "RFC 5248"),
        ("5.7.15", "Priority level", "RFC 6710"),
        ("5.7.17", "Mailbox owner", "RFC 7293"),
        ("5.7.23", "SPF validation failed", "RFC 7372"),
        ("5.7.26", "Multiple authentication", "RFC 7372"),
        ("5.7.30", "REQUIRETLS", "RFC 8689"),
        ("5.5.6", "line is too long", "RFC 4954"),
        ("5.1.1", "Bad destination mailbox address", "RFC 3463 §3.2"),
        ("4.2.2", "Mailbox full", "RFC 3463 §3.3"),
        ("5.3.4", "too big", "RFC 3463 §3.4"),
        ("4.4.1", "No answer", "RFC 3463 §3.5"),
        ("2.0.0", "Other undefined status", "RFC 3463 §3.1"),
    ],
)
def test_enhanced_codes(code: str, words: str, source: str) -> None:
    lines = explain(code)
    assert lines is not None
    assert len(lines) == 1
    assert lines[0].startswith(f"{code}: ")
    assert words in lines[0]
    assert lines[0].endswith(f"({source})")


@pytest.mark.parametrize("key", sorted(ENHANCED_DETAILS))
def test_every_enhanced_detail_has_a_source(key: tuple[int, int]) -> None:
    subject, detail = key
    for klass, name in (("2", "Success"), ("4", "transient"), ("5", "Permanent")):
        lines = explain(f"{klass}.{subject}.{detail}")
        assert lines is not None
        assert name in lines[0]
        assert SOURCE.search(lines[0]), lines[0]


@pytest.mark.parametrize(
    ("code", "klass"),
    [("2.1.5", "Success"), ("4.7.1", "Persistent transient failure"),
     ("5.7.1", "Permanent failure"), ("X.7.1", "Any class"), ("x.7.1", "Any class")],
)  # fmt: skip
def test_enhanced_class(code: str, klass: str) -> None:
    lines = explain(code)
    assert lines is not None
    assert f": {klass} · " in lines[0]


def test_unknown_detail_explains_class_and_subject() -> None:
    assert explain("4.7.99") == [
        "4.7.99: Persistent transient failure · Security or policy status · "
        "detail 99 is not registered (RFC 3463 §3.8)"
    ]
    lines = explain("5.2.42")
    assert lines is not None
    assert "Mailbox status" in lines[0]


KEYWORD_SOURCES = {
    "PIPELINING": "RFC 2920", "SIZE": "RFC 1870", "8BITMIME": "RFC 6152",
    "SMTPUTF8": "RFC 6531", "STARTTLS": "RFC 3207", "AUTH": "RFC 4954",
    "CHUNKING": "RFC 3030", "BINARYMIME": "RFC 3030", "DSN": "RFC 3461",
    "ENHANCEDSTATUSCODES": "RFC 2034", "DELIVERBY": "RFC 2852", "ETRN": "RFC 1985",
    "REQUIRETLS": "RFC 8689", "MT-PRIORITY": "RFC 6710", "LIMITS": "RFC 9422",
    "VRFY": "RFC 5321", "EXPN": "RFC 5321", "HELP": "RFC 5321", "BURL": "RFC 4468",
    "FUTURERELEASE": "RFC 4865", "XCLIENT": "Postfix", "XFORWARD": "Postfix",
    "EHLO": "RFC 5321", "HELO": "RFC 5321", "MAIL": "RFC 5321", "RCPT": "RFC 5321",
    "DATA": "RFC 5321", "BDAT": "RFC 3030", "RSET": "RFC 5321", "NOOP": "RFC 5321",
    "QUIT": "RFC 5321", "LHLO": "RFC 2033",
}  # fmt: skip


@pytest.mark.parametrize(("word", "source"), sorted(KEYWORD_SOURCES.items()))
def test_keywords_and_verbs(word: str, source: str) -> None:
    for query in (word, word.lower(), f"  {word.title()}  "):
        lines = explain(query)
        assert lines is not None, query
        assert 1 <= len(lines) <= 2
        assert lines[0].startswith(word)
        assert source in " ".join(lines)


def test_keyword_table_is_covered() -> None:
    assert set(KEYWORDS) == set(KEYWORD_SOURCES)
    assert set(BASIC_CODES) <= set(REPLY_CODES)


def test_auth_is_keyword_and_command() -> None:
    lines = explain("auth")
    assert lines is not None
    assert "EHLO keyword" in lines[0]
    assert "command" in lines[1]


@pytest.mark.parametrize(
    ("query", "word"),
    [("MAIL FROM:<a@b> SIZE=10", "MAIL FROM"), ("rcpt to:<c@d>", "RCPT TO"),
     ("SIZE 35882577", "SIZE [n]"), ("AUTH=LOGIN", "AUTH mech"), ("> EHLO client", "EHLO")],
)  # fmt: skip
def test_command_lines(query: str, word: str) -> None:
    lines = explain(query)
    assert lines is not None
    assert lines[0].startswith(word)


@pytest.mark.parametrize(
    "query",
    ["", "   ", "FOOBAR", "hello world", "999", "099", "12", "5.9.1", "7.1.1", "3.1.1", "5.7",
     "2500", "<"],
)  # fmt: skip
def test_unknown_query(query: str) -> None:
    assert explain(query) is None


def test_whole_reply_line_explains_both_codes() -> None:
    lines = explain("550 5.7.1 Relaying denied")
    assert lines is not None
    assert lines[0].startswith("550: Requested action not taken")
    assert lines[-1].startswith("5.7.1: Permanent failure · Security or policy status")
    assert len(lines) == 3


@pytest.mark.parametrize(
    "line", ["< 535 5.7.8 Authentication credentials invalid", "S: 535 5.7.8 bad", "535-5.7.8 x"]
)
def test_reply_lines_from_transcripts(line: str) -> None:
    lines = explain(line)
    assert lines is not None
    assert lines[0].startswith("535: ")
    assert lines[-1].startswith("5.7.8: ")


def test_ehlo_reply_line_explains_the_keyword() -> None:
    lines = explain("250-PIPELINING")
    assert lines is not None
    assert lines[0].startswith("250: ")
    assert lines[-1].startswith("PIPELINING (EHLO keyword, RFC 2920)")
    lines = explain("250-SIZE 35882577")
    assert lines is not None
    assert "RFC 1870" in lines[-1]


def test_reply_line_with_numbers_is_not_an_enhanced_code() -> None:
    lines = explain("250-234 Text beginning with numbers")
    assert lines is not None
    assert len(lines) == 2


def test_auth_challenge_is_decoded() -> None:
    lines = explain("334 VXNlcm5hbWU6")
    assert lines is not None
    assert lines[-1] == "the challenge decodes to 'Username:'"
    assert len(explain("334 ") or []) == 2
    assert len(explain("334 not*base64") or []) == 2
    assert len(explain("334 //79") or []) == 2  # not UTF-8


# --- hints -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "enhanced", "text", "expected"),
    [
        (530, "5.7.0", "Authentication required", "authentication required: AUTH (after STARTTLS)"),
        (530, "5.7.0", "Must issue a STARTTLS command first", "send STARTTLS first"),
        (554, "5.7.0", "authentication needed", "authentication required"),
        (554, "5.7.1", "<c@d>: Relay access denied", "relay denied"),
        (550, "5.7.1", "Relaying denied", "recipient's MX"),
        (550, None, "relay not permitted", "relay denied"),
        (538, "5.7.11", "Encryption required", "STARTTLS first"),
        (503, "5.5.1", "Error: need MAIL command", "EHLO, MAIL FROM, RCPT TO, DATA"),
        (552, "5.3.4", "Message size exceeds fixed limit", "message too big"),
        (552, None, "", "SIZE"),
        (452, "4.3.4", "", "message too big"),
        (552, "5.5.3", "Too many recipients", "too many recipients"),
        (421, "4.3.2", "Service shutting down", "closing the connection"),
        (550, "5.1.1", "<x@y>: Recipient address rejected: User unknown", "no such user"),
        (550, None, "user unknown", "no such user"),
        (535, "5.7.8", "Authentication credentials invalid", "wrong username or password"),
        (534, "5.7.9", "", "another AUTH mechanism"),
        (454, "4.7.0", "TLS not available due to local problem", "TLS not available"),
        (454, "4.7.0", "Temporary authentication failure", "temporary authentication failure"),
        (500, "5.5.2", "Error: command not recognized", "command not recognised"),
        (500, "5.5.2", "Error: line too long", "512 octets"),
        (502, "5.5.1", "Error: command not implemented", "not implemented"),
        (555, "5.5.4", "Unsupported option: FOO=BAR", "parameters not recognised"),
        (501, "5.5.4", "Syntax: MAIL FROM:<address>", "syntax error"),
        (451, "4.7.1", "Greylisted, please try again later", "greylisted"),
        (554, "5.7.1", "Message rejected as spam", "refused by policy"),
    ],
)
def test_hints(code: int, enhanced: str | None, text: str, expected: str) -> None:
    hint = hint_for(code, enhanced, text)
    assert hint is not None
    assert expected in hint
    assert "\n" not in hint


@pytest.mark.parametrize(
    ("code", "enhanced", "text"),
    [(250, "2.0.0", "OK"), (220, None, "ready"), (354, None, "go ahead"),
     (550, None, ""), (450, "4.2.0", "mailbox busy"), (221, "2.0.0", "Bye")],
)  # fmt: skip
def test_no_hint(code: int, enhanced: str | None, text: str) -> None:
    assert hint_for(code, enhanced, text) is None


def test_hint_default_text() -> None:
    assert hint_for(503, None) is not None
