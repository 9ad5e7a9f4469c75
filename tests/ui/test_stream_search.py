"""The fast searches the streamed message body uses give what the plain ones give."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

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
