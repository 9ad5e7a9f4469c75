from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtpshell.explain import explain
from smtpshell.protocol.events import ProtocolError, Reply
from smtpshell.protocol.replies import Capabilities, ReplyParser, enhanced_code, parse_reply_line
from smtpshell.transcript.model import reply_parts

EHLO = (
    b"250-sandbox.smtpshell.test\r\n250-SIZE 33554432\r\n250-8BITMIME\r\n"
    b"250-STARTTLS\r\n250-AUTH=LOGIN\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250 HELP\r\n"
)


def feed_all(chunks: list[bytes]) -> list[Reply | ProtocolError]:
    parser = ReplyParser()
    events: list[Reply | ProtocolError] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events


def test_single_line_reply() -> None:
    [reply] = feed_all([b"250 2.1.0 Ok\r\n"])
    assert isinstance(reply, Reply)
    assert reply.code == 250
    assert reply.enhanced == "2.1.0"
    assert reply.lines == ("250 2.1.0 Ok",)
    assert reply.texts == ("2.1.0 Ok",)
    assert reply.anomalies == ()


def test_multiline_reply_grouped() -> None:
    [reply] = feed_all([EHLO])
    assert isinstance(reply, Reply)
    assert len(reply.lines) == 7
    caps = Capabilities.from_reply(reply)
    assert "starttls" in caps
    assert caps.size_limit == 33554432
    assert caps.auth_mechanisms == ("LOGIN", "PLAIN", "CRAM-MD5")


def test_every_split_gives_the_same_reply() -> None:
    whole = feed_all([EHLO + b"354 go ahead\r\n"])
    for i in range(len(EHLO) + 1):
        assert feed_all([EHLO[:i], EHLO[i:] + b"354 go ahead\r\n"]) == whole
    one_by_one = feed_all([bytes([b]) for b in EHLO + b"354 go ahead\r\n"])
    assert one_by_one == whole


def test_code_without_text_is_valid() -> None:
    [reply] = feed_all([b"250\r\n"])
    assert isinstance(reply, Reply) and reply.code == 250 and reply.texts == ("",)


def test_rfc_teaching_example_with_numbers_in_text() -> None:
    [reply] = feed_all([b"250-234 Text beginning with numbers\r\n250 The last line\r\n"])
    assert isinstance(reply, Reply)
    assert reply.code == 250
    assert reply.anomalies == ()


def test_enhanced_code_must_match_class() -> None:
    assert enhanced_code(550, "5.7.1 denied") == "5.7.1"
    assert enhanced_code(550, "2.0.0 odd") is None
    assert enhanced_code(250, "Ok") is None


def test_bare_lf_mixed_codes_nul_flagged() -> None:
    [reply] = feed_all([b"250-first\n251-mixed\x00\r\n250 \xff last\r\n"])
    assert isinstance(reply, Reply)
    joined = " | ".join(reply.anomalies)
    assert "bare LF" in joined
    assert "mixed codes" in joined
    assert "NUL" in joined
    assert "non-ASCII" in joined
    assert reply.raw[1] == b"251-mixed\x00"


def test_malformed_line_is_an_event_not_an_exception() -> None:
    events = feed_all([b"hello there\r\n25 short\r\n250 ok\r\n"])
    assert [type(e) for e in events] == [ProtocolError, ProtocolError, Reply]
    assert not any(e.fatal for e in events if isinstance(e, ProtocolError))


def test_overlong_line_is_fatal_and_bounded() -> None:
    parser = ReplyParser(max_line=1000)
    events = list(parser.feed(b"2" * 999))
    assert events == []
    events = list(parser.feed(b"5" * 10))
    assert len(events) == 1 and isinstance(events[0], ProtocolError) and events[0].fatal
    assert parser.buffered == b""
    assert list(parser.feed(b"250 ok\r\n")) == []  # gave up for good


def test_endless_multiline_is_fatal() -> None:
    parser = ReplyParser(max_lines=50)
    events = list(parser.feed(b"250-x\r\n" * 51))
    assert isinstance(events[-1], ProtocolError) and events[-1].fatal


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_any_bytes_any_split_never_raise(chunks: list[bytes]) -> None:
    for event in feed_all(chunks):
        assert isinstance(event, Reply | ProtocolError)


LINES = ["250 ok", "250-SIZE 10", "250", "354 go", "199 early", "600 high", "099 low",
         "25 short", "2500 long", "250x", "\u0662\u0665\u0660 arabic-indic digits",
         "550 5.1.1 no", "250 5.1.1 class differs", "421-4.3.2 bye"]


@pytest.mark.parametrize("text", LINES)
def test_one_reply_line_grammar_for_parser_transcripts_and_explain(text: str) -> None:
    """The live parser, a transcript's server line and /explain agree on what a reply
    line is (they had three grammars: transcripts and /explain took 199, 600 and other
    digits the parser refuses)."""
    events = feed_all([text.encode() + b"\r\n"] + ([b"250 end\r\n"] if "-" in text[:4] else []))
    parsed = events[0]
    line = parse_reply_line(text)
    code, final, enhanced = reply_parts(text)
    if isinstance(parsed, Reply):
        assert line is not None and (line.code, line.enhanced) == (parsed.code, parsed.enhanced)
        assert (code, final, enhanced) == (line.code, line.final, line.enhanced)
    else:
        assert line is None and code is None
        assert explain(text) is None or not explain(text)[0].startswith(text[:3])
