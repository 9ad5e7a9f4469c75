"""The fast searches the streamed message body uses give what the plain ones give."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from smtpshell.compose import DataStats, data_normaliser
from smtpshell.ui.batch import _BANG_HITS, _find_bang_slash

_TEXT = st.binary(max_size=300).map(
    lambda b: bytes(b"/!\n a"[x % 5] for x in b))  # mostly the bytes that matter


@given(_TEXT, st.integers(min_value=0, max_value=310))
def test_find_bang_slash_is_find(data: bytes, start: int) -> None:
    assert _find_bang_slash(data, start) == data.find(b"/!", start)


def test_many_bangs_before_the_first_slash_bang() -> None:
    """Past ``_BANG_HITS`` lone "!"s the plain search takes over and still finds it."""
    for extra in (0, 1, 2):
        data = b"wow!" * (_BANG_HITS + extra) + b"x/!y"
        assert _find_bang_slash(data, 0) == data.find(b"/!") == len(data) - 3
        assert _find_bang_slash(data[:-3], 0) == -1


@given(st.lists(st.binary(max_size=40).map(lambda b: bytes(b"\r\n.x"[x % 4] for x in b))
                | st.sampled_from([b"y" * 1200 + b"\n", b"z" * 999 + b"\r\n."]),
                max_size=6))
def test_a_normaliser_that_leaves_long_lines_to_its_caller_sends_the_same(
        chunks: list[bytes]) -> None:
    """``data_normaliser(long_lines=False)`` (the piped body: ``_specials`` warns per line)
    changes nothing but ``stats.long_lines``."""
    full, lean = DataStats(), DataStats()
    a, b = data_normaliser(full), data_normaliser(lean, long_lines=False)
    assert [a.feed(c) for c in chunks] + [a.finish()] == [b.feed(c) for c in chunks] + [
        b.finish()]
    assert lean.long_lines == 0
    assert replace(full, long_lines=0) == lean
