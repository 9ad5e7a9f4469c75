from __future__ import annotations

import re

import pytest

from smtpshell.explain import (
    ENHANCED_DETAILS,
    KEYWORDS,
    REPLY_CODES,
    Facts,
    diagnose,
    explain,
    hint_for,
    mechanism_problem,
)
from smtpshell.protocol.replies import Capabilities

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
    "QUIT": "RFC 5321", "LHLO": "RFC 2033", "PIPECONNECT": "Exim", "AUTH=": "RFC 4954 §5",
    "PRDR": "Exim", "ATRN": "RFC 2645", "TURN": "RFC 821", "UTF8SMTP": "RFC 5336",
    "RRVS": "RFC 7293", "NO-SOLICITING": "RFC 3865", "SUBMITTER": "RFC 4405",
    "CHECKPOINT": "RFC 1845", "VERB": "Sendmail", "ONEX": "Sendmail", "XVERP": "Postfix",
    "X-EXPS": "Exchange", "XEXCH50": "Exchange", "X-ANONYMOUSTLS": "Exchange",
    "X-LINK2STATE": "Exchange", "XSHADOW": "Exchange", "XSHADOWREQUEST": "Exchange",
    "XOORG": "Exchange",
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
     ("SIZE 35882577", "SIZE [n]"), ("AUTH=LOGIN", "AUTH=mech"), ("> EHLO client", "EHLO")],
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
    assert lines[2].startswith("PIPELINING (EHLO keyword, RFC 2920)")
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


# ---- EHLO keywords real servers send -------------------------------------------------------
def test_pipelining_lists_every_group_ender_of_rfc_2920() -> None:
    lines = explain("PIPELINING")
    assert lines is not None
    text = " ".join(lines)
    assert "RFC 2920 §3.1" in text
    for verb in ("EHLO", "DATA", "VRFY", "EXPN", "TURN", "QUIT", "NOOP", "STARTTLS", "AUTH"):
        assert verb in text, verb


@pytest.mark.parametrize(
    ("query", "source"),
    [("PIPECONNECT", "Exim"), ("SMTPUTF8", "RFC 6531"), ("CHUNKING", "RFC 3030"),
     ("BINARYMIME", "RFC 3030"), ("DSN", "RFC 3461"), ("ETRN", "RFC 1985"),
     ("SIZE 52428800", "RFC 1870"), ("8BITMIME", "RFC 6152"),
     ("ENHANCEDSTATUSCODES", "RFC 2034"), ("REQUIRETLS", "RFC 8689"),
     ("MT-PRIORITY STANAG4406", "RFC 6710"), ("DELIVERBY 240", "RFC 2852"),
     ("XCLIENT ADDR NAME HELO", "Postfix"), ("XFORWARD NAME ADDR", "Postfix"),
     ("X-EXPS GSSAPI NTLM", "Exchange"), ("AUTH=LOGIN PLAIN", "pre-standard"),
     ("XEXCH50", "Exchange"), ("X-ANONYMOUSTLS", "Exchange"), ("XSHADOW", "Exchange"),
     ("PRDR", "Exim"), ("XVERP", "Postfix"), ("LIMITS RCPTMAX=100", "RFC 9422"),
     ("TURN", "RFC 821"), ("ATRN", "RFC 2645"), ("250-PIPECONNECT", "Exim"),
     ("250-AUTH=LOGIN", "pre-standard")],
)  # fmt: skip
def test_keywords_real_servers_send(query: str, source: str) -> None:
    lines = explain(query)
    assert lines is not None, query
    assert source in " ".join(lines)


# ---- diagnoses from the connection's state (diagnose) ----------------------------------------
PLAIN_EHLO = Capabilities({"STARTTLS": "", "PIPELINING": "", "SIZE": "1000"})
TLS_EHLO = Capabilities({"AUTH": "PLAIN LOGIN", "PIPELINING": ""})


def test_auth_after_starttls_without_a_second_ehlo() -> None:
    why = diagnose("AUTH", 503, Facts(tls=True, capabilities=None))
    assert why is not None
    assert why.startswith("AUTH was not advertised in this session: no EHLO since STARTTLS")
    assert "send EHLO again (RFC 3207 §4.2)" in why
    assert "already authenticated" not in why and "transaction" not in why


def test_auth_before_starttls_is_not_advertised_in_clear() -> None:
    why = diagnose("auth", 503, Facts(capabilities=PLAIN_EHLO))
    assert why is not None
    assert why.startswith("AUTH was not advertised on this plain connection")
    assert "STARTTLS, then EHLO again, then AUTH" in why
    # any refusal in that state has the same root (the sandbox answers 538)
    assert diagnose("AUTH", 538, Facts(capabilities=PLAIN_EHLO)) == why


def test_auth_before_any_ehlo_and_without_any_auth() -> None:
    assert diagnose("AUTH", 503, Facts()) == (
        "AUTH was not advertised in this session: no EHLO yet, and AUTH is an extension "
        "the EHLO reply announces (RFC 4954 §3); send EHLO first")
    implicit = diagnose("AUTH", 503, Facts(tls=True, implicit_tls=True))
    assert implicit is not None and "no EHLO yet" in implicit
    none = diagnose("AUTH", 502, Facts(tls=True, capabilities=Capabilities({"SIZE": ""})))
    assert none == ("AUTH was not advertised in this session: the server's EHLO reply offers "
                    "no authentication (RFC 4954 §3)")


def test_the_textbook_reasons_only_when_true() -> None:
    done = diagnose("AUTH", 503, Facts(tls=True, capabilities=TLS_EHLO, authenticated=True))
    assert done is not None and done.startswith("already authenticated")
    busy = diagnose("AUTH", 503, Facts(tls=True, capabilities=TLS_EHLO, in_transaction=True))
    assert busy is not None and busy.startswith("AUTH is not allowed inside a mail transaction")
    # advertised, not authenticated, no transaction: the state explains nothing
    assert diagnose("AUTH", 535, Facts(tls=True, capabilities=TLS_EHLO)) is None


def test_starttls_diagnoses() -> None:
    inside = diagnose("STARTTLS", 503, Facts(tls=True, capabilities=TLS_EHLO))
    assert inside == ("this connection is already encrypted: STARTTLS is not allowed once "
                      "TLS is active (RFC 3207 §4)")
    assert diagnose("STARTTLS", 454, Facts(tls=True, implicit_tls=True)) == inside
    early = diagnose("STARTTLS", 503, Facts())
    assert early is not None and early.startswith("STARTTLS was not advertised in this session")
    absent = diagnose("STARTTLS", 502, Facts(capabilities=TLS_EHLO))
    assert absent == "STARTTLS was not advertised: this server's EHLO reply does not offer TLS"
    assert diagnose("STARTTLS", 454, Facts(capabilities=PLAIN_EHLO)) is None


def test_other_commands_after_starttls_without_ehlo() -> None:
    why = diagnose("MAIL", 503, Facts(tls=True))
    assert why is not None and why.startswith("no EHLO since STARTTLS")
    assert diagnose("MAIL", 503, Facts(tls=True, capabilities=TLS_EHLO)) is None
    assert diagnose("MAIL", 250, Facts(tls=True)) is None
    assert diagnose("RCPT", 550, Facts(tls=True)) is None


# ---- /auth WORD: a mechanism or a user name? ---------------------------------------------
SUPPORTED = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2")


@pytest.mark.parametrize("word", ["plian", "PALIN", "logn", "cram-md4", "xoath2", "LOGINN"])
def test_a_misspelt_mechanism_is_not_a_user_name(word: str) -> None:
    problem = mechanism_problem(word, SUPPORTED)
    assert problem is not None
    assert problem.startswith(f"unknown mechanism {word!r} (did you mean ")
    assert f"name the mechanism first: /auth PLAIN {word}" in problem


def test_plian_suggests_plain() -> None:
    assert mechanism_problem("plian", SUPPORTED) == (
        "unknown mechanism 'plian' (did you mean PLAIN?); known: PLAIN, LOGIN, CRAM-MD5, "
        "XOAUTH2; to log in as a user named 'plian', name the mechanism first: "
        "/auth PLAIN plian")


@pytest.mark.parametrize("word", ["SCRAM-SHA-256", "gssapi", "NTLM", "oauthbearer"])
def test_a_mechanism_the_shell_does_not_speak(word: str) -> None:
    assert mechanism_problem(word, SUPPORTED) == (
        f"{word}: a SASL mechanism this shell does not speak (it knows PLAIN, LOGIN, "
        "CRAM-MD5, XOAUTH2); /auth MECH USER picks one")


@pytest.mark.parametrize("word", ["alice", "bob@example.org", "plain", "Login", "postmaster",
                                  "a", "smtp-user"])
def test_user_names_and_supported_mechanisms_pass(word: str) -> None:
    assert mechanism_problem(word, SUPPORTED) is None
