"""Matching rules: server lines, whole replies, client lines, DATA bodies, the diff."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtpshell.transcript.matching import (
    Mismatch,
    credentials_problem,
    match_body,
    match_client_line,
    match_reply,
    match_send,
    match_server_line,
)
from smtpshell.transcript.model import (
    ClientLine,
    Elided,
    Event,
    Rule,
    SecretRef,
    Send,
    ServerLine,
    Volatile,
)
from smtpshell.transcript.syntax import parse
from tests.transcript.test_model import TEXT, body, client_lines, server_lines


def reply(*lines: str) -> list[ServerLine]:
    """Server lines as parsed from transcript text (annotations and all), with line numbers."""
    entries = parse(body(*lines)).entries
    assert all(isinstance(e, ServerLine) for e in entries)
    return [e for e in entries if isinstance(e, ServerLine)]


def client(line: str) -> ClientLine:
    (entry,) = parse(body(line)).entries
    assert isinstance(entry, ClientLine)
    return entry


def reason(mismatch: Mismatch | None) -> str:
    assert mismatch is not None
    return mismatch.reason


# --------------------------------------------------------------------------- one server line


def test_default_rule_is_the_code_and_the_text_may_differ() -> None:
    (line,) = reply("<- 250 OK")
    assert match_server_line(line, "250 Sender accepted, welcome") is None
    assert "expected reply code 250, got 550" in reason(match_server_line(line, "550 no"))
    assert "got a line without one" in reason(match_server_line(line, "hello"))


def test_default_rule_checks_the_kind_of_line() -> None:
    (last,) = reply("<- 250 HELP")
    (cont,) = reply("<- 250-SIZE 100")
    assert "last line of the reply" in reason(match_server_line(last, "250-HELP"))
    assert "continuation line" in reason(match_server_line(cont, "250 SIZE 100"))
    assert match_server_line(cont, "250-PIPELINING") is None


def test_enhanced_code_counts_when_recorded() -> None:
    (line,) = reply("<- 250 2.1.0 Ok")
    assert match_server_line(line, "250 2.1.0 Sender fine") is None
    assert "expected enhanced status 2.1.0, got 2.1.5" in reason(
        match_server_line(line, "250 2.1.5 Ok")
    )
    assert "got none" in reason(match_server_line(line, "250 Ok"))
    (plain,) = reply("<- 250 Ok")
    assert match_server_line(plain, "250 2.1.0 Ok") is None


def test_exact_rule_with_placeholders() -> None:
    (line,) = reply("<~ 250 2.0.0 Ok: queued as {{queueid:4F2A19C0}}  ~exact")
    assert match_server_line(line, "250 2.0.0 Ok: queued as 4F2A19C0") is None
    assert match_server_line(line, "250 2.0.0 Ok: queued as 1rFa2b-0003Xy-Ab") is None
    assert "~exact" in reason(match_server_line(line, "250 2.0.0 Ok: queued as"))
    assert "~exact" in reason(match_server_line(line, "250 2.0.0 OK: queued as 4F2A19C0"))
    (greeting,) = reply("<- 220 {{host:sandbox.smtpshell.test}} ESMTP {{any:}}  ~exact")
    assert match_server_line(greeting, "220 [192.0.2.1] ESMTP Postfix (Debian)") is None
    assert match_server_line(greeting, "220 mx ESMTP ") is None
    assert match_server_line(greeting, "220 mx ESMTP") is not None  # the space is literal
    assert match_server_line(greeting, "220 mx SMTP Exim") is not None


def test_exact_text_is_literal_not_a_pattern() -> None:
    (line,) = reply("<- 250 a.b*c  ~exact")
    assert match_server_line(line, "250 a.b*c") is None
    assert match_server_line(line, "250 aXbbbc") is not None


def test_glob_re_and_any_rules() -> None:
    (glob,) = reply("<~ 250-AUTH LOGIN PLAIN  ~glob 250-AUTH *PLAIN*")
    assert match_server_line(glob, "250-AUTH PLAIN CRAM-MD5") is None
    assert "no match for ~glob 250-AUTH *PLAIN*" in reason(
        match_server_line(glob, "250-AUTH LOGIN")
    )
    (regex,) = reply(r"<~ 250 2.0.0 Ok: queued as 4F2A  ~re 250 2\.0\.0 Ok: queued as [0-9A-F]+")
    assert match_server_line(regex, "250 2.0.0 Ok: queued as 99AB") is None
    assert match_server_line(regex, "250 2.0.0 Ok: queued as 99AB and more") is not None  # full
    (anything,) = reply("<- 250 x  ~any")
    assert match_server_line(anything, "garbage") is None


def test_a_recorded_non_reply_line_is_compared_exactly() -> None:
    (line,) = reply("<- hello there")
    assert match_server_line(line, "hello there") is None
    assert "text differs" in reason(match_server_line(line, "hello you"))


@settings(suppress_health_check=[HealthCheck.too_slow])  # a busy machine
@given(server_lines())
def test_a_recorded_line_matches_its_own_text(line: ServerLine) -> None:
    if line.rule.kind in ("glob", "re"):
        return  # hand-written patterns need not match the recorded text
    assert match_server_line(line, line.text) is None


@settings(suppress_health_check=[HealthCheck.too_slow])  # a busy machine
@given(server_lines(), TEXT)
def test_matching_never_raises(line: ServerLine, got: str) -> None:
    result = match_server_line(line, got)
    assert result is None or result.render()


# --------------------------------------------------------------------------- whole replies

EHLO = [
    "<- 250-sandbox.smtpshell.test",
    "<- 250-SIZE 33554432",
    "<- 250-8BITMIME",
    "<- 250-SMTPUTF8",
    "<- 250-STARTTLS",
    "<- 250 HELP",
]


def test_an_untouched_ehlo_reply_matches_loosely() -> None:
    expected = reply(*EHLO)
    recorded = [line.text for line in expected]
    assert match_reply(expected, recorded) is None
    more = [*recorded[:2], "250-PIPELINING", "250-CHUNKING", *recorded[2:]]
    assert match_reply(expected, more) is None  # capabilities added
    assert match_reply(expected, [recorded[0], recorded[-1]]) is None  # capabilities dropped
    assert match_reply(expected, [recorded[0], *reversed(recorded[1:-1]), recorded[-1]]) is None
    assert match_reply(expected, ["250 HELP"]) is None


def test_an_ehlo_reply_with_other_codes_does_not_match() -> None:
    expected = reply(*EHLO)
    mismatch = match_reply(expected, ["250-mx", "251-odd", "250 HELP"])
    assert mismatch is not None and "251" in mismatch.reason
    assert "expected reply code 250, got 554" in reason(match_reply(expected, ["554 go away"]))
    assert "no last line ('250 ')" in reason(match_reply(expected, ["250-mx", "250-SIZE"]))


def test_anchored_capabilities_must_be_present_in_order() -> None:
    expected = reply(
        "<- 250-sandbox.smtpshell.test",
        "<- 250-STARTTLS  ~exact",
        "<- 250-AUTH LOGIN PLAIN  ~glob 250-AUTH *PLAIN*",
        "<- 250 HELP",
    )
    assert match_reply(expected, ["250-mx", "250-SIZE 1", "250-STARTTLS", "250-8BITMIME",
                                  "250-AUTH PLAIN", "250-X", "250 HELP"]) is None
    stripped = match_reply(expected, ["250-mx", "250-AUTH PLAIN", "250 HELP"])
    assert stripped is not None and stripped.lineno == 4  # the STARTTLS line
    assert "~exact" in stripped.reason
    swapped = match_reply(expected, ["250-mx", "250-AUTH PLAIN", "250-STARTTLS", "250 HELP"])
    assert swapped is not None


def test_a_reply_without_loose_lines_is_strict() -> None:
    expected = reply("<- 250-a  ~exact", "<- 250 b")
    assert match_reply(expected, ["250-a", "250 b"]) is None
    extra = match_reply(expected, ["250-a", "250-z", "250 b"])
    assert extra is not None and "last line" in extra.reason
    assert "ended early" in reason(match_reply(expected, ["250-a"]))


def test_optional_and_repeating_lines() -> None:
    expected = reply(
        "<- 250-first  ~exact",
        "<- 250-PIPELINING  ~optional ~exact",
        "<- 250-X-*  ~repeat ~glob 250-X-*",
        "<- 250-Y  ~optional ~repeat ~exact",
        "<- 250 last",
    )
    assert match_reply(expected, ["250-first", "250-X-1", "250 last"]) is None
    assert match_reply(expected, ["250-first", "250-PIPELINING", "250-X-1", "250-X-2",
                                  "250-Y", "250-Y", "250 last"]) is None
    missing = match_reply(expected, ["250-first", "250-PIPELINING", "250 last"])
    assert missing is not None and missing.lineno == 5 and "~glob 250-X-*" in missing.reason
    twice = match_reply(expected, ["250-first", "250-PIPELINING", "250-PIPELINING",
                                   "250-X-1", "250 last"])
    assert twice is not None


def test_exim_style_optional_repeating_continuations() -> None:
    expected = reply("<- 250-host  ~exact", "<- 250-any  ~optional ~repeat", "<- 250 HELP")
    for extra in ([], ["250-a"], ["250-a", "250-b", "250-c"]):
        assert match_reply(expected, ["250-host", *extra, "250 HELP"]) is None
    assert match_reply(expected, ["250-host", "550-a", "250 HELP"]) is not None


def test_enhanced_codes_in_multiline_replies() -> None:
    expected = reply("<- 550-5.7.1 Policy says no", "<- 550 5.7.1 Go away")
    assert match_reply(expected, ["550 5.7.1 Rejected"]) is None
    assert "5.7.1" in reason(match_reply(expected, ["550 5.7.0 Rejected"]))


def test_no_reply_and_empty_expectations() -> None:
    assert reason(match_reply(reply("<- 220 hi"), [])) == "no reply"
    assert "more lines" in reason(match_reply([], ["220 surprise"]))
    assert match_reply([], []) is not None  # nothing expected, nothing got: still "no reply"


@settings(suppress_health_check=[HealthCheck.too_slow])  # a busy machine
@given(st.lists(server_lines(), max_size=6), st.lists(TEXT, max_size=6))
def test_reply_matching_never_raises(expected: list[ServerLine], got: list[str]) -> None:
    result = match_reply(expected, got)
    assert result is None or result.render()


@settings(suppress_health_check=[HealthCheck.too_slow])  # a busy machine
@given(st.lists(st.from_regex(r"250-[A-Z0-9 ]{1,12}", fullmatch=True), max_size=5),
       st.lists(st.from_regex(r"250-[A-Z0-9 ]{1,12}", fullmatch=True), max_size=5))
def test_loose_ehlo_matches_any_capability_list(recorded: list[str], live: list[str]) -> None:
    expected = [ServerLine.of(x) for x in [*recorded, "250 HELP"]]
    assert match_reply(expected, [*live, "250 OK"]) is None or not recorded


# --------------------------------------------------------------------------- client lines


def test_client_default_rule_ignores_the_case_of_the_verb_only() -> None:
    line = client("-> MAIL FROM:<demo@smtpshell.test> SIZE=22")
    assert match_client_line(line, "mail from:<demo@smtpshell.test> SIZE=22") is None
    assert match_client_line(line, "Mail From:<demo@smtpshell.test> SIZE=22") is None
    mismatch = match_client_line(line, "MAIL FROM:<DEMO@smtpshell.test> SIZE=22")
    assert mismatch is not None and mismatch.reason == "text differs"
    assert match_client_line(line, "MAIL FROM: <demo@smtpshell.test> SIZE=22") is not None
    assert match_client_line(client("-> QUIT"), "quit") is None
    assert match_client_line(client("-> QUIT"), "QUIT ") is not None
    assert match_client_line(client("-> rcpt to:<b@x>"), "RCPT TO:<b@x>") is None
    assert match_client_line(client("-> KEHLO x"), "\u212aEHLO x") is not None  # Kelvin sign


def test_client_body_lines_are_exact() -> None:
    line = client("~> Subject: hi")
    assert match_client_line(line, "subject: hi") is None  # as a command: verb case ignored
    assert match_client_line(line, "subject: hi", body=True) is not None
    assert match_client_line(line, "Subject: hi", body=True) is None


def test_client_placeholders_secrets_and_rules() -> None:
    assert match_client_line(client("-> EHLO {{host:laptop.local}}"), "ehlo mx.example") is None
    assert match_client_line(client("-> EHLO {{host:laptop.local}}"), "EHLO two words") is not None
    auth = client("~> AUTH PLAIN {{secret:plain user=demo password=$SMTPSHELL_PASSWORD}}")
    assert match_client_line(auth, "AUTH PLAIN AHVzZXIAcGFzcw==") is None
    assert match_client_line(auth, "auth plain AHVzZXIAcGFzcw==") is not None  # mechanism
    assert match_client_line(auth, "AUTH PLAIN") is not None
    exact = client("-> mail FROM:<a@x>  ~exact")
    assert match_client_line(exact, "MAIL FROM:<a@x>") is not None
    regex = client(r"-> MAIL FROM:<a@x>  ~re (?i)mail from:<[^>]+>( .*)?")
    assert match_client_line(regex, "mail from:<z@y> BODY=8BITMIME") is None
    assert match_client_line(client("-> x  ~any"), "anything") is None


@settings(suppress_health_check=[HealthCheck.too_slow])  # a busy machine
@given(client_lines())
def test_a_recorded_client_line_matches_its_own_resolution(line: ClientLine) -> None:
    if line.rule.kind in ("glob", "re"):
        return
    env = dict.fromkeys(["A", "B"], "v")
    secret = line.secret
    if secret is not None:
        env.update({v[1:]: "value" for _, v in secret.params if v.startswith("$")})
        if secret.mech == "cram-md5":
            return  # needs a live challenge; resolution is tested in test_model
    sent = line.resolve(env)
    assert match_client_line(line, sent, body=True) is None
    assert match_client_line(line, sent) is None


def test_match_send_with_an_elided_body() -> None:
    body_lines = ["line one", "line two", "..three"]
    send = Send(
        (ClientLine.of("Subject: x"), Elided.of(body_lines, tls=True), ClientLine.of(".")),
        body=True,
    )
    assert match_send(send, ["Subject: x", *body_lines, "."]) is None
    changed = match_send(send, ["Subject: x", "line one", "line 2", "..three", "."])
    assert changed is not None and "elided" in changed.reason
    assert "fewer" in reason(match_send(send, ["Subject: x", *body_lines]))
    assert "more" in reason(match_send(send, ["Subject: x", *body_lines, ".", "QUIT"]))
    assert "text differs" in reason(match_send(send, ["subject: x", *body_lines, "."]))
    pipelined = Send((ClientLine.of("MAIL FROM:<a@x>"), ClientLine.of("RCPT TO:<b@x>")))
    assert match_send(pipelined, ["mail FROM:<a@x>", "rcpt TO:<b@x>"]) is None


# --------------------------------------------------------------------------- rendering


def test_render_shows_line_numbers_and_both_sides() -> None:
    expected = parse(body(*EHLO[:2], "<- 250 2.1.5 Ok")).entries
    lines = [e for e in expected if isinstance(e, ServerLine)]
    mismatch = match_reply(lines, ["550-5.1.1 no such user\r", "550 5.1.1 bye"])
    assert mismatch is not None
    text = mismatch.render()
    first, *rest = text.split("\n")
    assert first == "line 5: expected reply code 250, got 550"
    assert rest == [
        "-    3 <- 250-sandbox.smtpshell.test",
        "-    4 <- 250-SIZE 33554432",
        "-    5 <- 250 2.1.5 Ok",
        "+      <- 550-5.1.1 no such user\\r",
        "+      <- 550 5.1.1 bye",
    ]


def test_render_with_source_tls_and_nothing_received() -> None:
    line = ServerLine.of("250 OK", tls=True, lineno=27)
    mismatch = match_reply([line], [])
    assert mismatch is not None
    text = Mismatch(mismatch.reason, mismatch.lineno, mismatch.expected, mismatch.got,
                    source="t.smtp").render()
    assert text == "t.smtp:27: no reply\n-   27 <~ 250 OK\n+      (nothing)"
    downgraded = Mismatch("sent in the clear", 3, (ClientLine.of("EHLO x", tls=True),),
                          ("EHLO x",), got_tls=False).render()
    assert downgraded.split("\n")[1:] == ["-      ~> EHLO x", "+      -> EHLO x"]


def test_client_mismatch_renders_the_secret_placeholder_never_a_value() -> None:
    line = ClientLine.of("AUTH PLAIN ", True, SecretRef.plain("demo"), lineno=9)
    mismatch = match_client_line(line, "AUTH LOGIN")
    assert mismatch is not None
    assert "{{secret:plain user=demo password=$SMTPSHELL_PASSWORD}}" in mismatch.render()


@pytest.mark.parametrize(
    ("line", "got"),
    [
        (ServerLine((Volatile("num", "42"),), rule=Rule("exact")), "43"),
        (ServerLine.of("250 x", rule=Rule("glob", "250 *")), "250 anything"),
    ],
)
def test_rules_on_model_objects(line: ServerLine, got: str) -> None:
    assert match_server_line(line, got) is None


def test_the_spec_shows_a_real_mismatch() -> None:
    from dataclasses import replace

    from tests.transcript.test_model import DOC, doc_examples

    (shown,) = re.findall(r"^```mismatch\n(.*?)^```$", DOC.read_text("utf-8"), re.S | re.M)
    recorded = parse(doc_examples()[0])
    (rcpt,) = [e for e in recorded.entries if isinstance(e, ServerLine) and e.lineno == 32]
    got = "550 5.1.1 <alice@smtpshell.test>: recipient rejected (sandbox reject list)"
    mismatch = match_reply([rcpt], [got])
    assert mismatch is not None
    assert replace(mismatch, source="sandbox.smtp").render() + "\n" == shown


def test_tls_state_is_checked_when_given() -> None:
    ehlo = reply("<~ 250-sandbox.smtpshell.test", "<~ 250 HELP")
    assert match_reply(ehlo, ["250-x", "250 HELP"], tls=True) is None
    assert match_reply(ehlo, ["250-x", "250 HELP"]) is None  # not checked
    downgrade = match_reply(ehlo, ["250-x", "250 HELP"], tls=False)
    assert downgrade is not None and "recorded inside TLS" in downgrade.reason
    assert downgrade.render().split("\n")[-1] == "+      <- 250 HELP"
    (line,) = reply("<- 220 ready")
    assert "recorded in the clear" in reason(match_server_line(line, "220 ready", tls=True))
    quit_ = client("~> QUIT")
    assert match_client_line(quit_, "QUIT", tls=True) is None
    assert match_client_line(quit_, "QUIT", tls=False) is not None
    send = Send((quit_,))
    assert match_send(send, ["QUIT"], tls=True) is None
    assert "inside TLS" in reason(match_send(send, ["QUIT"], tls=False))


# --------------------------------------------------------------------------- what clients vary


@pytest.mark.parametrize("got", [
    "MAIL FROM:<demo@smtpshell.test>",
    "mail FROM:<demo@smtpshell.test> size=18",  # smtplib
    "MAIL FROM:<demo@smtpshell.test> SIZE=402 BODY=8BITMIME SMTPUTF8",  # curl, swaks
    "mail from:<demo@smtpshell.test> RET=HDRS ENVID=QQ314159",
])
def test_mail_parameters_are_the_clients_own(got: str) -> None:
    assert match_client_line(client("-> MAIL FROM:<demo@smtpshell.test>"), got) is None
    recorded_with = client("-> MAIL FROM:<demo@smtpshell.test> SIZE=99")
    assert match_client_line(recorded_with, got) is None


@pytest.mark.parametrize("got", [
    "RCPT TO:<alice@smtpshell.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@smtpshell.test",
    "rcpt to:<alice@smtpshell.test>",  # smtplib from 3.13
    "rcpt TO:<alice@smtpshell.test>",  # smtplib before
])
def test_rcpt_parameters_and_keyword_case(got: str) -> None:
    assert match_client_line(client("-> RCPT TO:<alice@smtpshell.test>"), got) is None


def test_the_address_itself_still_counts() -> None:
    line = client("-> MAIL FROM:<demo@smtpshell.test>")
    for got in ("MAIL FROM:<Demo@smtpshell.test>", "MAIL FROM:<demo@smtpshell.test>x",
                "MAIL FROM:<other@smtpshell.test> SIZE=1", "MAIL FROM:demo@smtpshell.test",
                "RCPT TO:<demo@smtpshell.test>"):
        assert reason(match_client_line(line, got)) == "text differs", got
    volatile = client("-> RCPT TO:<{{word:alice@smtpshell.test}}> NOTIFY=NEVER")
    assert match_client_line(volatile, "RCPT TO:<bob@example.org> NOTIFY=SUCCESS") is None


def test_annotations_constrain_the_parameters() -> None:
    exact = client("-> MAIL FROM:<a@b.test> SIZE=18  ~exact")
    assert match_client_line(exact, "MAIL FROM:<a@b.test> SIZE=18") is None
    assert reason(match_client_line(exact, "MAIL FROM:<a@b.test>")) == "text differs (~exact)"
    glob = client("-> MAIL FROM:<a@b.test> SMTPUTF8  ~glob MAIL FROM:<a@b.test> *SMTPUTF8*")
    assert match_client_line(glob, "MAIL FROM:<a@b.test> SIZE=3 SMTPUTF8") is None
    assert match_client_line(glob, "MAIL FROM:<a@b.test> SIZE=3") is not None


def test_other_commands_get_no_parameter_leeway() -> None:
    assert match_client_line(client("-> VRFY <a@b.test>"), "VRFY <a@b.test> X=1") is not None


SKIP = Event("skip")


def body_lines(*texts: str) -> list[ClientLine]:
    return [ClientLine.of(t, lineno=30 + i) for i, t in enumerate(texts)]


def test_skip_takes_any_lines_in_a_body() -> None:
    subject, blank, hello, dot = body_lines("Subject: hi", "", "Hello", ".")
    pattern: list[ClientLine | Elided | Event] = [SKIP, subject, SKIP, blank, hello, dot]
    swaks = ["Date: Mon, 1 Jan 2026 10:00:00 +0000", "To: a@b.test", "From: c@d.test",
             "Subject: hi", "Message-Id: <1@d.test>", "X-Mailer: swaks", "", "Hello", "."]
    assert match_body(pattern, swaks) == []
    assert match_body(pattern, ["Subject: hi", "", "Hello", "."]) == []  # none to skip
    assert match_body([subject, blank, hello, dot], swaks) != []  # no skip, no leeway


def test_every_difference_of_a_body_is_its_own_mismatch() -> None:
    lines = body_lines("From: a@b.test", "Subject: hi", "", "Hello", "Bye", ".")
    got = ["From: a@b.test", "Subject: ho", "", "Hello", "Bye!", "P.S.", "."]
    found = match_body(lines, got, tls=True)
    assert [(m.reason, m.lineno, m.got) for m in found] == [
        ("text differs", 31, ("Subject: ho",)),
        ("lines differ", 34, ("Bye!", "P.S.")),
    ]
    assert "~> Bye!" in found[1].render()
    missing = match_body(lines, ["From: a@b.test", "", "Hello", "Bye", "."])
    assert [(m.reason, m.lineno, m.got) for m in missing] == [
        ("the client did not send this line", 31, ())]
    skipping: list[ClientLine | Elided | Event] = [*lines[:1], SKIP, *lines[1:]]
    added = match_body(skipping, [*got[:1], "X: 1", "Subject: hi", *got[2:]])
    assert [m.got for m in added] == [("Bye!", "P.S.")]  # X: 1 is skipped, no difference
    instead = match_body(skipping, [*got[:1], "X: 1", *got[1:]])  # where a skip is, the
    assert (instead[0].reason, instead[0].got) == (  # client's lines there are shown
        "the client did not send this line (it sent these instead)", ("X: 1", "Subject: ho"))


def test_a_differing_elided_body_is_summarised() -> None:
    hidden = [f"line {i}" for i in range(50)]
    elided = Elided.of(hidden)
    (subject,) = body_lines("Subject: big")
    dot = ClientLine.of(".")
    assert match_body([subject, elided, dot], ["Subject: big", *hidden, "."]) == []
    (mismatch,) = match_body([subject, elided, dot],
                             ["Subject: big", *hidden[:-1], "changed", "."])
    assert mismatch.reason == "the body differs from the elided lines (count, bytes or sha256)"
    assert mismatch.got[0].startswith("(50 lines, ")


def test_credentials_are_compared_without_naming_them() -> None:
    plain = SecretRef.plain("demo", "PW")
    wanted = base64.b64encode(b"\0demo\0right").decode()
    assert credentials_problem(plain, wanted, wanted) is None
    assert credentials_problem(plain, wanted,
                               base64.b64encode(b"demo\0demo\0right").decode()) is None
    wrong = credentials_problem(plain, wanted, base64.b64encode(b"\0demo\0wrong").decode())
    assert wrong == "the password differs from $PW"
    assert credentials_problem(plain, wanted, base64.b64encode(b"\0eve\0right").decode()) == (
        "the user name differs from the transcript's")
    assert credentials_problem(plain, wanted, "not base64!") == "the AUTH answer is not base64"
    login = SecretRef.login_password("PW")
    assert credentials_problem(login, "cmlnaHQ=", "d3Jvbmc=") == "the password differs from $PW"
    cram = SecretRef.cram_md5("demo", "PW")
    assert credentials_problem(cram, "ZGVtbyBhYmM=", "ZGVtbyBhYmQ=") == (
        "the CRAM-MD5 answer differs (user name or $PW)")
