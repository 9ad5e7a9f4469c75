"""smtpshell.compose: DATA/BDAT payloads chunk by chunk, sizes, quick messages, raw bytes."""

from __future__ import annotations

import email
import email.policy
import email.utils
import io
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpshell.compose import (
    DataStats,
    bdat_chunks,
    check_message_file,
    describe_bytes,
    iter_data_chunks,
    message_size,
    normalise_line_endings,
    notable_sequences,
    quick_message,
    scan_message,
    size_parameter,
)

# Bytes built from the pieces that matter: line endings, dots, NUL, plain text.
PIECES = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b".", b"..", b"a", b"xyz", b"\0", b"\r\n.\r\n", b"\n.\n", b" "]
)
MESSAGES = st.one_of(st.binary(max_size=300), st.lists(PIECES, max_size=60).map(b"".join))
CHUNK_SIZES = st.integers(min_value=1, max_value=40)


def reference_stuffed(data: bytes) -> bytes:
    """An independent, line-by-line statement of what DATA must carry."""
    lines = re.split(rb"\r\n|\r|\n", data)
    if lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + x if x.startswith(b".") else x) + b"\r\n" for x in lines) + b".\r\n"


def unstuff(payload: bytes) -> bytes:
    """What a server stores: strip the terminator and one dot from dotted lines."""
    assert payload.endswith(b".\r\n")
    body = payload[:-3]
    assert body == b"" or body.endswith(b"\r\n")
    out = []
    for line in body.split(b"\r\n")[:-1]:
        assert line != b".", "a lone dot inside the body would end the message"
        if line.startswith(b"."):
            assert line.startswith(b".."), "a line starting with '.' was not stuffed"
            line = line[1:]
        out.append(line + b"\r\n")
    return b"".join(out)


def whole_payload(data: bytes) -> bytes:
    """The whole DATA payload at once: the reference for the streaming version."""
    text = normalise_line_endings(data)
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    if text.startswith(b"."):
        text = b"." + text
    return text.replace(b"\r\n.", b"\r\n..") + b".\r\n"


def expected_message(data: bytes) -> bytes:
    text = normalise_line_endings(data)
    return text + b"\r\n" if text and not text.endswith(b"\r\n") else text


# ---- DATA -----------------------------------------------------------------------------


@settings(max_examples=400)
@given(data=MESSAGES, chunk_size=CHUNK_SIZES)
def test_streaming_equals_whole_input_transformation(data: bytes, chunk_size: int) -> None:
    stats = DataStats()
    chunks = list(iter_data_chunks(io.BytesIO(data), chunk_size, stats=stats))
    joined = b"".join(chunks)
    assert all(chunks)
    assert joined == whole_payload(data) == reference_stuffed(data)
    assert unstuff(joined) == expected_message(data)
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", joined) is None  # no bare CR or LF on the wire
    whole = DataStats()
    list(iter_data_chunks(io.BytesIO(data), len(data) + 1, stats=whole))
    assert stats == whole
    assert stats.wire_bytes == len(joined)
    assert stats.message_bytes == len(expected_message(data))
    assert stats.lines == expected_message(data).count(b"\r\n")
    assert stats.dot_stuffed == len(joined) - 3 - stats.message_bytes
    assert stats.bare_line_endings == len(re.findall(rb"\r(?!\n)|(?<!\r)\n", data))


@given(data=MESSAGES, chunk_size=CHUNK_SIZES)
def test_without_terminator_the_body_ends_with_crlf(data: bytes, chunk_size: int) -> None:
    body = b"".join(iter_data_chunks(io.BytesIO(data), chunk_size, terminator=False))
    assert body + b".\r\n" == whole_payload(data)


@pytest.mark.parametrize("data", [
    b"\rX\n", b"a\rb\nc\r\n", b"\r.\n", b"x\r\n.y\r\n", b"x\r\nz.\r\n", b"x\n.\r\n",
    b"x\r\n" * 50 + b".\r\n", b"x\r\r\n", b"x\r\n\n",
])
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 4096])
def test_crlf_fast_path_traps(data: bytes, chunk_size: int) -> None:
    """Inputs where only CRs, LFs and dots, read without their neighbours, would mislead:
    a CR and an LF with text between them are two bare endings, not one CRLF."""
    stats = DataStats()
    joined = b"".join(iter_data_chunks(io.BytesIO(data), chunk_size, stats=stats))
    assert joined == reference_stuffed(data)
    assert stats.bare_line_endings == len(re.findall(rb"\r(?!\n)|(?<!\r)\n", data))


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 5, 100])
def test_cr_and_lf_split_across_chunks_make_one_line_ending(chunk_size: int) -> None:
    data = b"ab\r\n.cd\r\n\r\n.\r\nend"
    stats = DataStats()
    out = b"".join(iter_data_chunks(io.BytesIO(data), chunk_size, stats=stats))
    assert out == b"ab\r\n..cd\r\n\r\n..\r\nend\r\n.\r\n"
    assert stats.bare_line_endings == 0
    assert stats.dot_stuffed == 2
    assert stats.added_final_crlf


def test_a_dot_that_starts_a_chunk_and_a_line_is_stuffed() -> None:
    # chunk 1 = b"abc\n", chunk 2 = b".de\n": the dot is the first byte of a chunk
    out = b"".join(iter_data_chunks(io.BytesIO(b"abc\n.de\n"), 4))
    assert out == b"abc\r\n..de\r\n.\r\n"
    # a dot that starts a chunk in the middle of a line is left alone
    out = b"".join(iter_data_chunks(io.BytesIO(b"abcd.ef\n"), 4))
    assert out == b"abcd.ef\r\n.\r\n"


def test_bare_line_endings_are_normalised_and_counted() -> None:
    stats = DataStats()
    out = b"".join(iter_data_chunks(io.BytesIO(b"a\nb\rc\r\nd\n.\ne"), 1, stats=stats))
    assert out == b"a\r\nb\r\nc\r\nd\r\n..\r\ne\r\n.\r\n"
    assert stats.bare_line_endings == 4
    assert "4 bare LF/CR line endings sent as CRLF" in stats.summary()


def test_empty_input_is_just_the_terminator() -> None:
    stats = DataStats()
    assert list(iter_data_chunks(io.BytesIO(b""), stats=stats)) == [b".\r\n"]
    assert stats.message_bytes == 0 and stats.lines == 0 and stats.wire_bytes == 3


def test_summary_reads_like_a_sentence() -> None:
    stats = DataStats()
    data = b"Subject: x\r\n\r\n.one\r\n..two\r\nthree\r\n"
    list(iter_data_chunks(io.BytesIO(data), stats=stats))
    assert stats.summary() == "5 lines, 34 bytes, dot-stuffed 2 lines"


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 997, 998, 999, 1000, 4096])
def test_long_lines_are_counted_across_chunks(chunk_size: int) -> None:
    data = (
        b"x" * 998 + b"\n"  # 1000 octets with CRLF: allowed
        + b"." + b"y" * 997 + b"\n"  # 998 + the stuffed dot + CRLF = 1001: too long
        + b"z" * 1500 + b"\n"  # too long
        + b"short\n"
        + b"w" * 999  # too long, and the last line lacks its CRLF
    )
    stats = DataStats()
    list(iter_data_chunks(io.BytesIO(data), chunk_size, stats=stats))
    assert stats.long_lines == 3
    assert "3 lines over 1000 octets" in stats.summary()


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        list(iter_data_chunks(io.BytesIO(b"x"), 0))


class CountingReader(io.BytesIO):
    """Remembers the largest read, to prove nothing reads the whole file."""

    largest = 0

    def read(self, size: int | None = -1) -> bytes:
        assert size is not None and size > 0, "read() without a size reads everything"
        self.largest = max(self.largest, size)
        return super().read(size)


def test_the_file_is_read_chunk_by_chunk() -> None:
    reader = CountingReader(b"line\n" * 10_000)
    chunks = iter_data_chunks(reader, 1024)
    first = next(chunks)
    assert len(first) <= 2 * 1024
    assert reader.tell() == 1024  # only one chunk read so far
    rest = b"".join(chunks)
    assert reader.largest == 1024
    assert first + rest == b"line\r\n" * 10_000 + b".\r\n"


# ---- BDAT -----------------------------------------------------------------------------


@settings(max_examples=300)
@given(data=MESSAGES, chunk_size=CHUNK_SIZES)
def test_bdat_chunks_are_exact_octets_without_stuffing(data: bytes, chunk_size: int) -> None:
    stats = DataStats()
    chunks = list(bdat_chunks(io.BytesIO(data), chunk_size, stats=stats))
    assert [last for _, last in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(octets for octets, last in chunks if not last)
    assert b"".join(octets for octets, _ in chunks) == expected_message(data)
    assert stats.dot_stuffed == 0
    assert stats.message_bytes == len(expected_message(data))


def test_bdat_of_an_empty_file_is_one_empty_last_chunk() -> None:
    assert list(bdat_chunks(io.BytesIO(b""))) == [(b"", True)]


def test_bdat_keeps_dots_and_normalises_line_endings() -> None:
    chunks = list(bdat_chunks(io.BytesIO(b".a\n.\n\rb"), 3))
    assert b"".join(c for c, _ in chunks) == b".a\r\n.\r\n\r\nb\r\n"
    assert chunks[-1][1] is True


# ---- sizes and file checks --------------------------------------------------------------


def test_message_size_is_the_stored_size(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(b"Subject: s\n\n.dot\nlast")
    assert message_size(path, chunk_size=3) == len(b"Subject: s\r\n\r\n.dot\r\nlast\r\n")
    assert size_parameter(message_size(path)) == "SIZE=26"
    stats = scan_message(path)
    assert stats.lines == 4 and stats.bare_line_endings == 3 and stats.dot_stuffed == 0


def test_check_message_file_accepts_a_message(tmp_path: Path) -> None:
    path = tmp_path / "ok.eml"
    path.write_bytes(b"Subject: hi\r\n\r\nbody\r\n")
    assert check_message_file(path) is None
    assert check_message_file(path, size_limit=21) is None


def test_check_message_file_problems(tmp_path: Path) -> None:
    assert check_message_file(tmp_path / "nope.eml") == f"{tmp_path / 'nope.eml'}: no such file"
    problem = check_message_file(tmp_path)
    assert problem is not None and "is a directory" in problem
    (tmp_path / "empty.eml").write_bytes(b"")
    problem = check_message_file(tmp_path / "empty.eml")
    assert problem is not None and "is empty" in problem
    (tmp_path / "bin.eml").write_bytes(b"Subject: x\r\n\r\n\x00\x01\x02")
    problem = check_message_file(tmp_path / "bin.eml")
    assert problem is not None and "looks binary" in problem
    for problem in (check_message_file(tmp_path / n) for n in ("nope.eml", "bin.eml")):
        assert problem is not None and "\n" not in problem


def test_check_message_file_against_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(b"a\nb\n")  # 4 bytes on disk, 6 as sent
    assert check_message_file(path, size_limit=6) is None
    problem = check_message_file(path, size_limit=5)
    assert problem == f"{path}: 6 bytes, more than the server's SIZE limit of 5 (RFC 1870)"
    problem = check_message_file(path, size_limit=3)  # decided from the size on disk
    assert problem is not None and "4 bytes" in problem


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_check_message_file_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "secret.eml"
    path.write_bytes(b"Subject: x\r\n\r\n")
    path.chmod(0)
    problem = check_message_file(path)
    assert problem is not None and "cannot read" in problem


# ---- quick messages -------------------------------------------------------------------


def parse(message: bytes) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_quick_message_is_minimal_and_valid() -> None:
    raw = quick_message(
        "alice@example.org",
        ["bob@example.net", "carol@example.com"],
        subject="Hello",
        body="line one\nline two",
        date="Mon, 01 Jan 2024 00:00:00 +0000",
        message_id="<1@example.org>",
    )
    assert raw == (
        b"From: alice@example.org\r\n"
        b"To: bob@example.net, carol@example.com\r\n"
        b"Subject: Hello\r\n"
        b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
        b"Message-ID: <1@example.org>\r\n"
        b"\r\n"
        b"line one\r\nline two\r\n"
    )


def test_quick_message_defaults_date_and_message_id() -> None:
    msg = parse(quick_message("alice@example.org", ["bob@example.net"]))
    assert email.utils.parsedate_to_datetime(str(msg["Date"])) is not None
    assert re.fullmatch(r"<[^@<>]+@example\.org>", str(msg["Message-ID"]))
    assert msg["MIME-Version"] is None
    assert "smtpshell" in msg.get_content()
    two = quick_message("a@x.test", ["b@y.test"])
    assert parse(two)["Message-ID"] != msg["Message-ID"]


def test_quick_message_non_ascii_is_mime_encoded() -> None:
    raw = quick_message("a@x.test", ["b@y.test"], subject="Grüße 🌍", body="ünïcode\n.dot\n")
    assert raw.isascii()
    assert re.search(rb"(?<!\r)\n", raw) is None
    msg = parse(raw)
    assert msg["Subject"] == "Grüße 🌍"
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content().replace("\r\n", "\n") == "ünïcode\n.dot\n"


def test_quick_message_refuses_header_injection() -> None:
    with pytest.raises(ValueError, match="Subject cannot contain CR or LF"):
        quick_message("a@x.test", ["b@y.test"], subject="hi\r\nBcc: eve@evil.test")


# ---- raw bytes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "description"),
    [
        (b"DATA\r\n", "6 bytes, CRLF line endings, nothing unusual"),
        (b"", "0 bytes (nothing)"),
        (b"NOOP", "4 bytes: no trailing CRLF"),
        (b"a\nb\r\n", "5 bytes: bare LF"),
        (b"a\rb\r\n", "5 bytes: bare CR"),
        (b"a\0b\r\n", "5 bytes: NUL"),
        (
            b"hello\n.\nMAIL FROM:<x>\r\n",
            "23 bytes: <LF>.<LF> (SMTP smuggling pattern), bare LF 2 times",
        ),
        (b"hi\r\n.\nQUIT\r\n", "12 bytes: <CR><LF>.<LF> (SMTP smuggling pattern), bare LF"),
        (b"hi\n.\r\nQUIT\r\n", "12 bytes: <LF>.<CR><LF> (SMTP smuggling pattern), bare LF"),
        (b"hi\r\n.\r\n", "7 bytes: <CR><LF>.<CR><LF> (ends a message in DATA)"),
    ],
)
def test_describe_bytes(data: bytes, description: str) -> None:
    assert describe_bytes(data) == description
    assert bool(notable_sequences(data)) == (": " in description)


def test_quick_message_folds_long_headers() -> None:
    many = [f"recipient{i}@example.net" for i in range(12)]
    raw = quick_message("a@x.test", many, subject="s")
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    assert parse(raw)["To"].addresses[11].addr_spec == "recipient11@example.net"
