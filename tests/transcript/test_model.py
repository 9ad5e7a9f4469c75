"""The transcript format: parse, dump, escapes, errors, steps, secrets, the writer."""

from __future__ import annotations

import base64
import os
import re
import signal
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtpshell.transcript.model import (
    DEFAULT_RULE,
    SECRET_MECHS,
    VOLATILE_KINDS,
    ClientLine,
    Comment,
    Elided,
    Entry,
    Event,
    Expect,
    Header,
    Rule,
    SecretRef,
    Send,
    ServerLine,
    Transcript,
    TranscriptError,
    Volatile,
    resolve_secrets,
)
from smtpshell.transcript.syntax import dump, escape_text, format_entry, load, parse
from smtpshell.transcript.writer import TranscriptWriter

DOC = Path(__file__).resolve().parents[2] / "docs" / "transcript-format.md"
V1 = "# smtpshell transcript v1\n"


def doc_examples() -> list[str]:
    """The ```transcript fenced blocks of the format spec, in order."""
    return re.findall(r"^```transcript\n(.*?)^```$", DOC.read_text("utf-8"), re.S | re.M)


def body(*lines: str) -> str:
    return V1 + "\n" + "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- strategies

RAW_BYTES = st.integers(0x80, 0xFF).map(lambda b: chr(0xDC00 + b))  # surrogateescape
TRICKY = st.sampled_from([*" ~{}\\\t\r\n\x00\x7f\"=#$:", "  ~", "{{", "}}", "\u00a0"])
CHARS = st.one_of(st.characters(), RAW_BYTES, TRICKY)
TEXT = st.lists(CHARS, max_size=12).map("".join)
NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
PRINTABLE = st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn"))


@st.composite
def volatiles(draw: st.DrawFn) -> Volatile:
    kind = draw(st.sampled_from(sorted(VOLATILE_KINDS)))
    pattern = re.compile(VOLATILE_KINDS[kind], re.DOTALL)
    literal = draw(st.from_regex(pattern, fullmatch=True).filter(lambda s: len(s) < 30))
    return Volatile(kind, literal)


@st.composite
def secrets(draw: st.DrawFn) -> SecretRef:
    mech = draw(st.sampled_from(sorted(SECRET_MECHS)))
    env = st.from_regex(r"\$[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
    plain = st.from_regex(r'[^\s"\\{}]{1,12}', fullmatch=True).filter(str.isprintable)
    required, optional = SECRET_MECHS[mech]
    names = list(required)
    if mech == "login":
        names = [draw(st.sampled_from(optional))]
    else:
        names += [n for n in optional if draw(st.booleans())]
    params = tuple(
        (n, draw(env if n in ("password", "token", "value") else st.one_of(env, plain)))
        for n in names
    )
    return SecretRef(mech, params)


def canonical(parts: list[str | Volatile | SecretRef]) -> tuple[str | Volatile | SecretRef, ...]:
    out: list[str | Volatile | SecretRef] = []
    for part in parts:
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] += part
        elif part != "":
            out.append(part)
    return tuple(out)


PATTERN = st.text(PRINTABLE, min_size=1, max_size=15).filter(lambda p: p == p.rstrip(" \t"))
RULES = st.one_of(
    st.just(DEFAULT_RULE),
    st.sampled_from([Rule("exact"), Rule("any")]),
    PATTERN.map(lambda p: Rule("glob", p)),
    st.sampled_from([r"250 .*", r"[0-9]{3}[ -].*", r"(?i)ok", r"\S+  ~x"]).map(
        lambda p: Rule("re", p)
    ),
)


@st.composite
def server_lines(draw: st.DrawFn) -> ServerLine:
    drawn: list[str | Volatile | SecretRef] = draw(
        st.lists(st.one_of(TEXT, volatiles()), max_size=4)
    )
    if draw(st.booleans()):  # often a real reply line
        drawn.insert(0, draw(st.from_regex(r"[2-5][0-9]{2}[ -]", fullmatch=True)))
    parts = tuple(p for p in canonical(drawn) if not isinstance(p, SecretRef))
    line = ServerLine(parts, draw(st.booleans()), draw(RULES))
    if not line.final:
        line = ServerLine(parts, line.tls, line.rule, draw(st.booleans()), draw(st.booleans()))
    return line


@st.composite
def client_lines(draw: st.DrawFn) -> ClientLine:
    parts: list[str | Volatile | SecretRef] = draw(
        st.lists(st.one_of(TEXT, volatiles()), max_size=4)
    )
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), draw(secrets()))
    return ClientLine(canonical(parts), draw(st.booleans()), draw(RULES))


EVENTS = st.builds(
    Event,
    NAMES.filter(lambda k: k != "elided"),
    st.dictionaries(NAMES, TEXT, max_size=4).map(lambda d: tuple(d.items())),
)
ELISIONS = st.builds(
    lambda n, extra, digest, tls, file: Elided(n, 2 * n + extra, digest.hex(), tls, file),
    st.integers(1, 5000),
    st.integers(0, 10**6),
    st.binary(min_size=32, max_size=32),
    st.booleans(),
    st.none() | st.text(PRINTABLE, min_size=1, max_size=20).filter(str.isprintable),
)
COMMENTS = st.builds(
    Comment,
    st.text(st.one_of(st.characters(exclude_categories=("Cc", "Cs")), st.just("\t")), max_size=30)
    .map(lambda t: t.rstrip(" \t")),
)
ENTRIES: st.SearchStrategy[Entry] = st.one_of(
    server_lines(), client_lines(), EVENTS, ELISIONS, COMMENTS
)
HEADERS = st.builds(
    Header,
    st.just(1),
    st.none() | TEXT,
    st.none() | st.datetimes(timezones=st.just(UTC)),
    st.none() | TEXT,
    st.sampled_from(["plain", "starttls", "implicit"]),
    st.none() | TEXT,
    st.dictionaries(
        NAMES.filter(lambda k: k not in ("target", "recorded", "tool", "tls", "description")),
        TEXT,
        max_size=3,
    ).map(lambda d: tuple(d.items())),
)
TRANSCRIPTS = st.builds(Transcript, HEADERS, st.lists(ENTRIES, max_size=8).map(tuple))


# --------------------------------------------------------------------------- the spec's examples


def test_the_spec_has_examples() -> None:
    assert len(doc_examples()) >= 2


@pytest.mark.parametrize("index", range(2))
def test_spec_examples_are_canonical_transcripts(index: int) -> None:
    text = doc_examples()[index]
    transcript = parse(text, source="transcript-format.md")
    assert dump(transcript) == text  # the doc shows exactly what the writer writes


def test_recorded_example_in_detail() -> None:
    t = parse(doc_examples()[0])
    assert t.header.target == "127.0.0.1:8025"
    assert t.header.recorded == datetime(2025, 1, 15, 10, 42, 7, tzinfo=UTC)
    assert t.header.tls_mode == "starttls"
    assert t.header.tool == "smtpshell 0.1.0"
    steps = t.steps()
    shape = [
        type(s).__name__ + (f":{s.kind}" if isinstance(s, Event) else "")
        + (":body" if isinstance(s, Send) and s.body else "")
        for s in steps
    ]
    assert shape == [
        "Event:connect", "Expect",                      # greeting
        "Send", "Expect", "Send", "Expect",             # EHLO, STARTTLS
        "Event:tls",
        "Send", "Expect", "Send", "Expect",             # EHLO, AUTH
        "Send", "Expect", "Send", "Expect",             # MAIL, RCPT
        "Send", "Expect", "Send:body", "Expect",        # DATA, body
        "Send", "Expect", "Event:closed",               # QUIT
    ]  # fmt: skip
    ehlo = steps[3]
    assert isinstance(ehlo, Expect) and ehlo.complete and len(ehlo.lines) == 6
    assert [line.tls for line in ehlo.lines] == [False] * 6
    auth = steps[9]
    assert isinstance(auth, Send)
    line = auth.lines[0]
    assert isinstance(line, ClientLine) and line.tls and line.lineno == 27
    assert line.secret == SecretRef.plain("demo")
    assert "SMTPSHELL_PASSWORD" in line.text and "AUTH PLAIN {{secret:" in line.text
    body = steps[17]
    assert isinstance(body, Send) and body.body
    texts = [x.text for x in body.lines if isinstance(x, ClientLine)]
    assert texts[3] == "" and texts[-1] == "."
    assert texts[5].startswith("..a line")
    tls = steps[6]
    assert isinstance(tls, Event) and tls.get("verified") == "yes"
    assert tls.get("protocol") == "TLSv1.3"


def test_edited_example_features() -> None:
    t = parse(doc_examples()[1])
    by_line = {e.lineno: e for e in t.entries}
    greeting = by_line[9]
    assert isinstance(greeting, ServerLine) and greeting.rule == Rule("exact")
    assert greeting.parts[1] == Volatile("host", "sandbox.smtpshell.test")
    assert greeting.text == "220 sandbox.smtpshell.test ESMTP smtpshell sandbox"
    pipelining = by_line[12]
    assert isinstance(pipelining, ServerLine)
    assert (pipelining.optional, pipelining.repeat, pipelining.rule) == (True, False, Rule("exact"))
    elided = next(e for e in t.entries if isinstance(e, Elided))
    assert (elided.lines, elided.nbytes, elided.tls) == (2000, 170000, True)
    accepted = next(e for e in t.entries if isinstance(e, ServerLine) and e.rule.kind == "re")
    assert accepted.rule.pattern == r"235 2\.7\.0 .*"
    queued = next(e for e in t.entries if isinstance(e, ServerLine) and "queued" in e.text)
    assert queued.rule == Rule("exact")
    assert queued.parts[1] == Volatile("queueid", "1736937727.M512043P48211Q1.laptop")
    body = next(s for s in t.steps() if isinstance(s, Send) and s.body)
    assert any(isinstance(x, Elided) for x in body.lines)


# --------------------------------------------------------------------------- errors


ERRORS = [
    ("", 1, "empty"),
    ("hello world\n", 1, "not a smtpshell transcript"),
    ("# smtpshell transcript v3\n", 1, "written by a newer smtpshell: v3; this one reads v1 to v2"),
    ("# smtpshell transcript v12\n-> x\n", 1, "v12; this one reads v1 to v2"),
    ("# smtpshell transcript vX\n", 1, "garbled version line"),
    ("# smtpshell transcript v0\n", 1, "unknown transcript version"),
    (V1 + "target: a\ntarget: b\n", 3, "given twice"),
    (V1 + "target: a\nrecorded: yesterday\n", 3, "ISO 8601"),
    (V1 + "recorded: 2025-01-15T10:42:07\n", 2, "with offset"),
    (V1 + "tls: maybe\n", 2, "plain, starttls or implicit"),
    (V1 + "target:x\n", 2, "not a header field"),
    (V1 + "target: \\q\n", 2, "bad escape"),
    (body("-> EHLO x", "target: late"), 4, "header fields belong right after"),
    (body("-> EHLO x", "<> 250 ok"), 4, "not a transcript line"),
    (body("->EHLO x"), 3, "one space goes after"),
    (body("-> a", "<- 250 ok {{queueid:4F2"), 4, "not closed"),
    (body("-> a\\qb"), 3, "bad escape \\q"),
    (body("-> a\\x4"), 3, "two hex digits"),
    (body("-> a\\u{110000}"), 3, "at most 10FFFF"),
    (body("-> a\\"), 3, "backslash at the end"),
    (body("-> a\x01b"), 3, "raw control character U+0001"),
    (body("# fine", "-> a\x00"), 4, "raw control character U+0000"),
    (body("# a\udc80b"), 3, "lone surrogate"),
    (body("<- 250 ok  ~re 250 ("), 3, "bad regular expression"),
    (body("<- 250 ok  ~re"), 3, "~re pattern"),
    (body("<- 250 ok  ~frobnicate"), 3, "unknown annotation ~frobnicate"),
    (body("<- 250 ok  ~exact ~any"), 3, "one line, one rule"),
    (body("<- 250 ok  ~exact~any"), 3, "separated by spaces"),
    (body("<- 250 ok  ~ exact"), 3, "expected an annotation"),
    (body("<- 250-ok  ~optional ~optional"), 3, "given twice"),
    (body("<- 250-X  ~glob 250-X* ~optional"), 3, "put flags first, ~optional ~glob 250-X*"),
    (body("<- 250-X  ~re 250-X.*  ~repeat"), 3, "would become part of the pattern"),
    (body("-> MAIL x  ~glob MAIL * ~exact"), 3, "one line, one rule: ~exact inside"),
    (body("<- 250 ok  ~optional"), 3, "continuation lines"),
    (body("-> NOOP  ~repeat"), 3, "for server lines only"),
    (body("<- 250 {{queue:1}}"), 3, "unknown placeholder kind 'queue'"),
    (body("<- 250 {{num:abc}}"), 3, "does not look like a num"),
    (body("-> a {{ b"), 3, "starts a placeholder"),
    (body("<- 334 {{secret:raw value=$X}}"), 3, "belong in client lines"),
    (body("-> AUTH PLAIN {{secret:plain user=u password=hunter2}}"), 3, "environment variable"),
    (body("-> AUTH X {{secret:kerberos user=u}}"), 3, "unknown secret mechanism"),
    (body("-> AUTH PLAIN {{secret:plain user=u}}"), 3, "missing password="),
    (body("-> {{secret:login user=u password=$P}}"), 3, "exactly one of"),
    (body("-> {{secret:login user=u"), 3, "not closed"),
    (body("-> {{secret:login user}}"), 3, "expected name=value"),
    (body("-> {{secret:raw value=$A}} {{secret:raw value=$B}}"), 3, "one secret per line"),
    (body("== elided lines=3 bytes=100 tls=no"), 3, "sha256="),
    (body("== elided lines=x bytes=1 sha256=0 tls=no"), 3, "lines=N"),
    (body("== elided lines=3 bytes=1 sha256=" + "0" * 64 + " tls=no"), 3, "bytes >= 2"),
    (body("== elided lines=1 bytes=2 sha256=" + "0" * 64), 3, "tls=yes or tls=no"),
    (body("== elided lines=1 bytes=2 sha256=" + "0" * 64 + " tls=no odd=1"), 3, "unknown field"),
    (body("=="), 3, "event name"),
    (body("== Connect"), 3, "event name"),
    (body('== warning message="unclosed'), 3, "not closed"),
    (body("== closed by=server by=client"), 3, "given twice"),
    (body("== closed by"), 3, "name=value"),
    (body('== closed by="a"b'), 3, "separated by spaces"),
]


@pytest.mark.parametrize(("text", "lineno", "fragment"), ERRORS)
def test_errors_name_their_line(text: str, lineno: int, fragment: str) -> None:
    with pytest.raises(TranscriptError) as info:
        parse(text, source="t.smtp")
    assert info.value.lineno == lineno
    assert fragment in info.value.message
    rendered = str(info.value)
    assert rendered.startswith(f"t.smtp:{lineno}: ") and "\n" not in rendered


def test_error_without_source() -> None:
    assert str(TranscriptError("boom", 4)) == "line 4: boom"
    assert str(TranscriptError("boom")) == "boom"


def test_load_reports_bad_utf8_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "t.smtp"
    path.write_bytes(V1.encode() + b"\n-> ok\n-> \xff\n")
    with pytest.raises(TranscriptError) as info:
        load(path)
    assert info.value.lineno == 4 and "not UTF-8" in str(info.value)
    with pytest.raises(TranscriptError, match="cannot read"):
        load(tmp_path / "missing.smtp")


ANY_CHAR = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr), TRICKY)


@given(st.lists(ANY_CHAR, max_size=80).map("".join))
def test_parse_raises_only_transcript_errors_on_any_text(text: str) -> None:
    for candidate in (text, V1 + text, body(text)):
        try:
            parse(candidate)
        except TranscriptError:
            pass


SNIPPETS = ["{{", "}}", "\\", "  ~", "~re (", "~glob", "==", "\n", "\r", "\x00", "$", '"',
            "{{secret:", "{{num:", "=", " ", "\\x", "\\u{", "#", "->", "<~", "~optional",
            "{{secret:raw value=$A}}", "\udc80", "== elided lines=1 bytes=2 sha256="]


@given(TRANSCRIPTS, st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(SNIPPETS)),
                             max_size=5), st.integers(0, 10**6))
def test_parse_raises_only_transcript_errors_on_damaged_files(
    t: Transcript, edits: list[tuple[int, str]], cut: int
) -> None:
    text = dump(t)
    for position, snippet in edits:
        at = position % (len(text) + 1)
        text = text[:at] + snippet + text[at:]
    for candidate in (text, text[: cut % (len(text) + 1)]):
        try:
            parse(candidate)
        except TranscriptError:
            pass


# --------------------------------------------------------------------------- round trips


@given(TRANSCRIPTS)
def test_round_trip(t: Transcript) -> None:
    text = dump(t)
    again = parse(text)
    assert again == t
    assert dump(again) == text


@given(TRANSCRIPTS)
def test_round_trip_survives_crlf_and_editor_blanks(t: Transcript) -> None:
    text = dump(t).replace("\n", "  \r\n")
    assert parse("\ufeff" + text) == t


@given(st.lists(TEXT, max_size=5))
def test_every_wire_line_fits_on_one_file_line(texts: list[str]) -> None:
    entries = tuple(ServerLine.of(x) for x in texts) + tuple(ClientLine.of(x) for x in texts)
    text = dump(Transcript(Header(), entries))
    assert len(text.split("\n")) == len(entries) + 4  # version, tls, blank, final newline
    assert parse(text).entries == entries


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("334 ", "<- 334\\x20"),
        ("", "<-"),
        (" x", "<-  x"),
        ("a\\b", "<- a\\\\b"),
        ("bare\nLF and CR\r", "<- bare\\nLF and CR\\r"),
        ("nul\x00 esc\x1b del\x7f tab\t", "<- nul\\x00 esc\\x1b del\\x7f tab\\t"),
        ("not utf-8: \udcff\udcfe", "<- not utf-8: \\xff\\xfe"),
        ("é and 漢字", "<- é and 漢字"),
        ("nbsp\u00a0zwsp\u200b", "<- nbsp\\u{a0}zwsp\\u{200b}"),
        ("a  ~b", "<- a \\x20~b"),
        ("a ~b", "<- a ~b"),
        ("{{x}} {a}", "<- \\{{x}} {a}"),
        ('say "hi" #', '<- say "hi" #'),
    ],
)
def test_escapes(text: str, written: str) -> None:
    line = ServerLine.of(text)
    assert format_entry(line) == written
    assert parse(body(written)).entries == (line,)


def test_raw_bytes_round_trip_to_the_wire() -> None:
    wire = b"250 caf\xc3\xa9 \xff\x00\r"
    text = wire.decode("utf-8", "surrogateescape")
    (line,) = parse(body(format_entry(ServerLine.of(text)))).entries
    assert isinstance(line, ServerLine)
    assert line.text.encode("utf-8", "surrogateescape") == wire


def test_placeholder_edges() -> None:
    line = ServerLine(("a{", Volatile("any", "}x}"), "{"))
    written = format_entry(line)
    assert written == "<- a\\{{{any:}x\\}}}{"
    assert parse(body(written)).entries == (line,)
    assert parse(body("<- a\\x7b\\x7b b")).entries == (ServerLine.of("a{{ b"),)


def test_annotations_and_empty_text() -> None:
    line = ClientLine((), True, Rule("exact"))
    assert format_entry(line) == "~>   ~exact"
    assert parse(body("~>   ~exact")).entries == (line,)
    flagged = ServerLine.of("250-X", rule=Rule("glob", "250-X*"), optional=True, repeat=True)
    assert format_entry(flagged) == "<- 250-X  ~optional ~repeat ~glob 250-X*"
    assert parse(body("<- 250-X  ~glob 250-X*  ")).entries[0] == ServerLine.of(
        "250-X", rule=Rule("glob", "250-X*")
    )
    assert parse(body("<- 250-X  ~exact ~repeat")).entries == (
        ServerLine.of("250-X", rule=Rule("exact"), repeat=True),
    )


def test_reply_line_properties() -> None:
    assert (ServerLine.of("250-SIZE 100").code, ServerLine.of("250-SIZE 100").final) == (250, False)
    line = ServerLine.of("550 5.1.1 <x@y>: no such user")
    assert (line.code, line.final, line.enhanced) == (550, True, "5.1.1")
    assert ServerLine.of("250").final and ServerLine.of("250").code == 250
    assert ServerLine.of("250-").final is False
    assert ServerLine.of("250-234 Text beginning with numbers").enhanced is None
    garbage = ServerLine.of("hello")
    assert (garbage.code, garbage.final, garbage.enhanced) == (None, True, None)
    assert ServerLine.of("2500 x").code is None


def test_header_defaults_and_extra_fields() -> None:
    t = parse(V1 + "x-ci-run: 42\n\n-> NOOP\n")
    assert t.header == Header(version=1, extra=(("x-ci-run", "42"),))
    assert dump(t) == "# smtpshell transcript v1\ntls: plain\nx-ci-run: 42\n\n-> NOOP\n"
    assert parse(V1).entries == ()
    assert parse(V1 + "recorded: 2025-01-15T11:42:07+01:00\n").header.recorded == datetime(
        2025, 1, 15, 10, 42, 7, tzinfo=UTC
    )


def test_model_invariants_are_programming_errors() -> None:
    with pytest.raises(ValueError):
        ServerLine(("a", "b"))
    with pytest.raises(ValueError):
        ServerLine.of("250 final", optional=True)
    with pytest.raises(ValueError):
        ClientLine((SecretRef.raw("A"), SecretRef.raw("B")))
    with pytest.raises(ValueError):
        SecretRef("plain", (("user", "u"), ("password", "hunter2")))
    with pytest.raises(ValueError):
        Rule("re", "(")
    with pytest.raises(ValueError):
        Event("elided")
    with pytest.raises(ValueError):
        Comment("two\nlines")
    with pytest.raises(ValueError):
        Header(version=3)


# --------------------------------------------------------------------------- steps


def test_steps_pair_pipelined_commands_and_find_the_body() -> None:
    t = parse(body(
        "<- 220 hi",
        "-> MAIL FROM:<a@x>",
        "-> RCPT TO:<b@x>",
        "-> data",
        "# comments are not steps",
        "<- 250 ok",
        "<- 250 ok",
        "<- 354 go",
        "-> DATA",
        "-> .",
        "<- 250 queued",
        "== warning message=\"odd\"",
        "-> QUIT",
        "<- 221-bye",
    ))
    steps = t.steps()
    assert [type(s).__name__ for s in steps] == [
        "Expect", "Send", "Expect", "Expect", "Expect", "Send", "Expect", "Event", "Send",
        "Expect",
    ]
    pipelined = steps[1]
    assert isinstance(pipelined, Send) and len(pipelined.lines) == 3 and not pipelined.body
    data_body = steps[5]
    assert isinstance(data_body, Send) and data_body.body  # "DATA" inside a body is text
    last = steps[-1]
    assert isinstance(last, Expect) and not last.complete and last.code == 221


def test_no_body_when_data_is_refused() -> None:
    steps = parse(body("-> DATA", "<- 554 no valid recipients", "-> QUIT", "<- 221 bye")).steps()
    assert not any(isinstance(s, Send) and s.body for s in steps)


# --------------------------------------------------------------------------- secrets


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_resolve_plain_uses_the_rfc4616_vector() -> None:
    line = ClientLine.of("AUTH PLAIN ", secret=SecretRef.plain("user"))
    assert resolve_secrets(line, {"SMTPSHELL_PASSWORD": "pass"}) == "AUTH PLAIN AHVzZXIAcGFzcw=="
    with_authzid = ClientLine.of("", secret=SecretRef.plain("$U", "PW", authzid="admin"))
    assert line.resolve({"SMTPSHELL_PASSWORD": "pass"}) == "AUTH PLAIN AHVzZXIAcGFzcw=="
    assert resolve_secrets(with_authzid, {"U": "user", "PW": "pass"}) == b64(b"admin\0user\0pass")


def test_resolve_cram_md5_uses_the_rfc2195_style_vector() -> None:
    line = ClientLine.of("", secret=SecretRef.cram_md5("user"))
    challenge = b64(b"<123456.1322876914@testserver>")
    got = resolve_secrets(line, {"SMTPSHELL_PASSWORD": "pass"}, challenge=challenge)
    assert base64.b64decode(got) == b"user 287eb355114cf5c471c26a875f1ca4ae"


def test_resolve_login_xoauth2_raw() -> None:
    env = {"SMTPSHELL_PASSWORD": "pass", "SMTPSHELL_TOKEN": "tok", "BLOB": "AGEAYg=="}
    assert resolve_secrets(ClientLine.of("", secret=SecretRef.login_user("user")), env) == b64(
        b"user"
    )
    assert resolve_secrets(ClientLine.of("", secret=SecretRef.login_password()), env) == b64(
        b"pass"
    )
    xoauth2 = ClientLine.of("AUTH XOAUTH2 ", secret=SecretRef.xoauth2("me@x"))
    assert resolve_secrets(xoauth2, env) == "AUTH XOAUTH2 " + b64(
        b"user=me@x\x01auth=Bearer tok\x01\x01"
    )
    assert resolve_secrets(ClientLine.of("AUTH PLAIN ", secret=SecretRef.raw("BLOB")), env) == (
        "AUTH PLAIN AGEAYg=="
    )
    assert resolve_secrets(ClientLine((Volatile("host", "h.example"),)), env) == "h.example"


def test_resolve_problems_are_transcript_errors_with_line_numbers() -> None:
    (line,) = parse(body("-> AUTH PLAIN {{secret:plain user=u password=$NOPE}}")).entries
    assert isinstance(line, ClientLine)
    with pytest.raises(TranscriptError) as info:
        resolve_secrets(line, {})
    assert info.value.lineno == 3 and "NOPE is not set" in info.value.message
    cram = ClientLine.of("", secret=SecretRef.cram_md5("u"))
    with pytest.raises(TranscriptError, match="challenge"):
        resolve_secrets(cram, {"SMTPSHELL_PASSWORD": "p"})
    with pytest.raises(TranscriptError, match="not base64"):
        resolve_secrets(cram, {"SMTPSHELL_PASSWORD": "p"}, challenge="!!!")


# --------------------------------------------------------------------------- elision


def test_elided_counts_digests_and_fills() -> None:
    lines = ["Subject: x", "", "..dotted", "caf\u00e9"]
    elided = Elided.of(lines, tls=True)
    assert (elided.lines, elided.nbytes) == (4, 10 + 0 + 8 + 5 + 4 * 2)
    assert elided.matches(lines) and not elided.matches(lines[:-1])
    assert not elided.matches([*lines[:-1], "cafe"])
    filler = list(elided.filler())
    assert len(filler) == 4 and sum(len(x) + 2 for x in filler) == elided.nbytes
    assert not any(x.startswith(".") for x in filler)
    assert parse(body(format_entry(elided))).entries == (elided,)


# --------------------------------------------------------------------------- writer


def header() -> Header:
    return Header.now("127.0.0.1:8025", "starttls", "writer test")


def test_writer_creates_a_private_file_and_flushes_each_line(tmp_path: Path) -> None:
    path = tmp_path / "session.smtp"
    with TranscriptWriter(path, header()) as writer:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert load(path).entries == ()  # the header alone is a transcript
        writer.event("connect", address="127.0.0.1:8025", tls="starttls")
        writer.server("220 sandbox ESMTP", False)
        assert [e.lineno for e in load(path).entries] == [8, 9]
        line = writer.client("AUTH PLAIN ", True, SecretRef.plain("demo"))
        assert line.lineno == 10
        writer.server("250-first", True)  # a reply cut in the middle still parses
        partial = load(path)
        assert partial.entries[-2] == line
        assert not partial.steps()[-1].complete  # type: ignore[union-attr]
        writer.elided(["a", "b"], True)
        writer.comment("two\nlines\x07 ")
        writer.event("tls", via="starttls", verified=False, cert_sha256="AB:CD", error=None)
    t = load(path)
    assert t.header.description == "writer test" and t.header.tool and t.header.recorded
    assert t.entries[-3:-1] == (Comment("two"), Comment("lines\\x07"))
    assert t.entries[-1] == Event("tls", (("via", "starttls"), ("verified", "no"),
                                          ("cert-sha256", "AB:CD")))
    assert writer.closed
    with pytest.raises(ValueError, match="closed"):
        writer.comment("late")


def test_writer_never_writes_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "auth.smtp"
    with TranscriptWriter(path, header()) as writer:
        writer.client("AUTH PLAIN ", True, SecretRef.plain("demo", "MY_PW"))
    text = path.read_text()
    assert "AUTH PLAIN {{secret:plain user=demo password=$MY_PW}}" in text


def test_writer_refuses_to_overwrite_unless_told(tmp_path: Path) -> None:
    path = tmp_path / "old.smtp"
    path.write_text("precious")
    path.chmod(0o644)
    with pytest.raises(FileExistsError):
        TranscriptWriter(path, header())
    assert path.read_text() == "precious"
    with TranscriptWriter(path, header(), overwrite=True) as writer:
        writer.client("NOOP", False)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "precious" not in path.read_text()


def test_writer_notes_an_interrupted_recording(tmp_path: Path) -> None:
    path = tmp_path / "cut.smtp"
    with pytest.raises(KeyboardInterrupt), TranscriptWriter(path, header()) as writer:
        writer.client("DATA", False)
        raise KeyboardInterrupt
    last = load(path).entries[-1]
    assert isinstance(last, Event) and last.kind == "warning"
    assert "KeyboardInterrupt" in (last.get("message") or "")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_recorder_leaves_a_parsable_transcript(tmp_path: Path) -> None:
    path = tmp_path / "killed.smtp"
    script = (
        "import os, signal, sys\n"
        "from smtpshell.transcript.model import Header\n"
        "from smtpshell.transcript.writer import TranscriptWriter\n"
        "w = TranscriptWriter(sys.argv[1], Header(target='127.0.0.1:25'))\n"
        "w.client('EHLO x', False)\n"
        "w.server('250-first line of a reply', False)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], check=False)
    assert done.returncode == -signal.SIGKILL
    t = load(path)
    assert t.entries == (ClientLine.of("EHLO x"), ServerLine.of("250-first line of a reply"))


@given(st.lists(st.tuples(st.sampled_from(["client", "server", "comment"]), TEXT,
                          st.booleans()), max_size=8))
def test_writer_output_equals_dump(calls: list[tuple[str, str, bool]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.smtp"
        entries: list[Entry] = []
        with TranscriptWriter(path, Header(target="x")) as writer:
            for kind, text, tls in calls:
                if kind == "client":
                    entries.append(writer.client(text, tls))
                elif kind == "server":
                    entries.append(writer.server(text, tls))
                elif "\n" not in text and "\r" not in text:
                    writer.comment(text)
        t = load(path)
        assert path.read_text("utf-8") == dump(t)
        assert [e for e in t.entries if not isinstance(e, Comment)] == entries


def test_escape_text_for_display() -> None:
    assert escape_text("550 no\r") == "550 no\\r"
    assert escape_text("334 ") == "334\\x20"


def test_an_annotation_word_in_a_pattern_can_still_be_written_literally() -> None:
    t = parse(body("<- 250-X  ~glob 250-[~]optional", r"<- 250-Y  ~re 250-\~repeat a~any"))
    glob, regex = (e for e in t.entries if isinstance(e, ServerLine))
    assert glob.rule == Rule("glob", "250-[~]optional") and not glob.optional
    assert regex.rule == Rule("re", r"250-\~repeat a~any") and not regex.repeat
