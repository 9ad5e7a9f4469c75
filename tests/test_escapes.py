"""``escapes.for_terminal``: the one function that makes outside text safe for the terminal.

Property tests (hypothesis) over all of Unicode, lone surrogates included, plus the fixed
corpus of sequences a hostile peer uses (OSC title and clipboard, CSI, C1, bidi).
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from smtpshell.escapes import (
    escape_char,
    for_terminal,
    for_terminal_bytes,
    for_terminal_lines,
    is_terminal_safe,
)
from smtpshell.protocol.replies import decode_line

BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp", "Cn"}

# Any code point, surrogates included: text from outside can hold them after a
# surrogateescape decode (bytes that were not UTF-8).
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=60)
# Text that needs no escaping: letters, digits, punctuation, symbols, spaces, marks.
safe_text = st.text(
    alphabet=st.characters(
        categories=("L", "M", "N", "P", "S", "Zs"),
        exclude_characters="\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0",
    ),
    max_size=60,
)

HOSTILE = {
    "osc-title": "\x1b]0;pwned\x07",
    "osc-title-2": "\x1b]2;pwned\x1b\\",
    "osc-52": "\x1b]52;c;ZWNobyBwd25lZA==\x07",
    "csi-clear": "\x1b[2J",
    "alt-screen": "\x1b[?1049h",
    "c1-csi": "\x9b31m",
    "home": "\x1b[H",
    "backspaces": "ok\x08\x08no",
    "bare-cr": "250 ok\rfake",
    "rlo": "abc\u202edef",
    "lri": "a\u2066b\u2069c",
    "zwsp": "pay\u200bpal",
    "bom": "\ufeffhi",
    "line-sep": "a\u2028b",
    "tag": "x\U000e0041",
    "hangul-filler": "a\u3164b",
}
HOSTILE_SHOWN = {
    "osc-title": "\\x1b]0;pwned\\x07",
    "osc-title-2": "\\x1b]2;pwned\\x1b\\",
    "osc-52": "\\x1b]52;c;ZWNobyBwd25lZA==\\x07",
    "csi-clear": "\\x1b[2J",
    "alt-screen": "\\x1b[?1049h",
    "c1-csi": "\\x9b31m",
    "home": "\\x1b[H",
    "backspaces": "ok\\x08\\x08no",
    "bare-cr": "250 ok\\x0dfake",
    "rlo": "abc\\u202edef",
    "lri": "a\\u2066b\\u2069c",
    "zwsp": "pay\\u200bpal",
    "bom": "\\ufeffhi",
    "line-sep": "a\\u2028b",
    "tag": "x\\U000e0041",
    "hangul-filler": "a\\u3164b",
}


def unsafe_in(text: str) -> list[str]:
    return [
        ch for ch in text
        if unicodedata.category(ch) in BAD_CATEGORIES or 0xD800 <= ord(ch) <= 0xDFFF
    ]


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_the_hostile_corpus_is_shown_escaped(case: str) -> None:
    assert for_terminal(HOSTILE[case]) == HOSTILE_SHOWN[case]
    assert not unsafe_in(for_terminal(HOSTILE[case]))


@given(any_text)
@example("\x1b]0;pwned\x07\x9b\u202e\udcff\u2028\U000e0041\U0010ffff")
def test_nothing_unsafe_survives(text: str) -> None:
    out = for_terminal(text)
    assert unsafe_in(out) == []
    assert "\x1b" not in out and "\x9b" not in out


@given(safe_text)
def test_safe_text_is_left_as_it_is(text: str) -> None:
    assert for_terminal(text) == text
    assert is_terminal_safe(text)


@given(any_text)
def test_idempotent_on_its_own_output(text: str) -> None:
    once = for_terminal(text)
    assert for_terminal(once) == once
    assert for_terminal_lines(once) == once


no_backslash = st.text(
    alphabet=st.characters(codec=None, exclude_categories=("Cs",), exclude_characters="\\"),
    max_size=30,
)


@given(no_backslash, no_backslash)
def test_distinct_texts_stay_distinct(a: str, b: str) -> None:
    """Injective on text without backslashes: two different hostile strings never look alike
    once escaped (the RLO and LRO overrides, an OSC 0 and an OSC 2 title...)."""
    if a != b:
        assert for_terminal(a) != for_terminal(b)


@given(any_text)
def test_escapes_decode_back_to_the_text(text: str) -> None:
    r"""Every escape reads as Python would: decoding the output with the ``\x``, ``\u``,
    ``\U`` rules gives the input back (stray bytes give the byte they were)."""
    if "\\" in text:
        return
    out = for_terminal(text)

    back = re.sub(r"\\(x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8}))",
                  lambda m: chr(int(m.group(2) or m.group(3) or m.group(4), 16)), out)
    expected = "".join(
        chr(ord(ch) - 0xDC00) if 0xDC80 <= ord(ch) <= 0xDCFF else ch for ch in text
    )
    assert back == expected


@given(st.binary(max_size=60))
def test_bytes_from_outside(data: bytes) -> None:
    out = for_terminal_bytes(data)
    assert unsafe_in(out) == []
    assert decode_line(data) == out  # replies use the same function
    if all(0x20 <= b < 0x7F for b in data):
        assert out == data.decode("ascii")


def test_stray_bytes_are_shown_as_the_byte() -> None:
    assert for_terminal_bytes(b"caf\xc3\xa9 \xff\xfe \xc2\x9b") == "café \\xff\\xfe \\x9b"
    assert escape_char("\udcff") == "\\xff"


@given(st.lists(any_text, max_size=5))
def test_lines_keep_the_programs_newlines_only(lines: list[str]) -> None:
    block = "\n".join(lines)
    out = for_terminal_lines(block)
    assert out.split("\n") == [for_terminal(line) for line in block.split("\n")]
    assert unsafe_in(out.replace("\n", "")) == []


def test_a_cr_in_a_block_is_escaped_but_the_newline_kept() -> None:
    assert for_terminal_lines("a\r\nb\x1b[2J\n") == "a\\x0d\nb\\x1b[2J\n"


def test_variation_selectors_and_ordinary_non_ascii_stay() -> None:
    for text in ("❤️", "naïve café", "日本語", "Ünïcödé ½ €", "\u00a0nbsp"):
        assert for_terminal(text) == text


INVISIBLE = "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0"


@given(any_text)
@example("caf\u00e9\u00a0\ue000\u3164")  # NBSP and private use: not printable to Python, kept
def test_fast_paths_agree_with_the_character_rule(text: str) -> None:
    """Whatever shortcut is taken, the result is the per-character rule."""
    expected = "".join(
        escape_char(ch)
        if unicodedata.category(ch) in BAD_CATEGORIES or ch in INVISIBLE else ch
        for ch in text
    )
    assert for_terminal(text) == expected
