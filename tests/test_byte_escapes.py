"""The one rule for the escapes /raw and /b64 take, and bytes are shown in (escapes.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtpshell.escapes import format_escapes, is_terminal_safe, parse_escapes


@pytest.mark.parametrize(
    ("text", "data"),
    [
        (r"DATA\r\n", b"DATA\r\n"),
        (r"hello\n.\nMAIL FROM:<x>\r\n", b"hello\n.\nMAIL FROM:<x>\r\n"),
        (r"a\tb\0c\\d", b"a\tb\0c\\d"),
        (r"\x41\x0d\x0A", b"A\r\n"),
        (r"\0user\0pass", b"\0user\0pass"),
        (r"user=a\x01auth=Bearer t\x01\x01", b"user=a\x01auth=Bearer t\x01\x01"),
        (r"\01", b"\x001"),
        ("naïve", "naïve".encode()),
        ("", b""),
    ],
)
def test_parse_escapes(text: str, data: bytes) -> None:
    assert parse_escapes(text) == data


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (r"ab\q", r"unknown escape \q at position 3 (known: \0 \n \r \t \\ \xNN)"),
        ("abc\\", "lone backslash at position 4"),
        (r"\x4", r"\x at position 1 needs two hex digits"),
        (r"xx\xZZ", r"\x at position 3 needs two hex digits"),
        ("a\ud800", "the character at position 2 is not valid Unicode"),
    ],
)
def test_errors_name_the_position_from_1(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_escapes(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"\0user\0pass", r"\0user\0pass"),
        (b"line\r\n", r"line\r\n"),
        (b"\x01\xff", r"\x01\xff"),
        ("grüße".encode(), "grüße"),
        (b"back\\slash", r"back\\slash"),
        ("\u200b".encode(), r"\xe2\x80\x8b"),  # invisible: escaped
        ("\u202e".encode(), r"\xe2\x80\xae"),  # right-to-left override: escaped
        (b"\x1b]52;c;x\x07", r"\x1b]52;c;x\x07"),
    ],
)
def test_format_escapes(data: bytes, text: str) -> None:
    assert format_escapes(data) == text


@given(st.binary(max_size=300))
def test_round_trip_printable_and_terminal_safe(data: bytes) -> None:
    text = format_escapes(data)
    assert text.isprintable() and is_terminal_safe(text)
    assert parse_escapes(text) == data
