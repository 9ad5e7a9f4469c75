"""Replies that break the grammar: shown as received, flagged, never a crash.

A canned server answers ``NOOP <case>`` with the bytes of that case, then ``NOOP``
gets a normal reply, to show the session goes on.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.hostile.more_servers import Reader, Writer, drive, errors, hostile, polite

CASES: dict[str, bytes] = {
    "short-code": b"25 two digits\r\n250 ok after all\r\n",
    "long-code": b"2500 four digits\r\n250 ok after all\r\n",
    "letters": b"OK thanks\r\n250 ok after all\r\n",
    "out-of-range": b"600 no such class\r\n199 nor this\r\n250 ok after all\r\n",
    "no-separator": b"250ok\r\n250 ok after all\r\n",
    "mixed-codes": b"250-first\r\n251-second\r\n252 third\r\n",
    "non-ascii-and-nul": b"250 caf\xc3\xa9 \xff\xfe nul\x00here\r\n",
    "bare-lf": b"250-one\n250 two\n",
    "stray-cr": b"250 a\rb\r\n",
    "escapes": b"250 \x1b[2J\x1b]0;owned\x07 \xc2\x9b31m hi\r\n",
    "overlong": b"250 " + b"x" * 600 + b"\r\n",
    "garbage-only": b"HTTP/1.1 400 Bad Request\r\n",
}


async def canned(reader: Reader, writer: Writer) -> None:
    writer.write(b"220 canned ESMTP\r\n")
    while line := await reader.readline():
        words = line.decode().split()
        if words[0] == "QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            return
        writer.write(CASES[words[1]] if len(words) > 1 else b"250 2.0.0 plain ok\r\n")
        await writer.drain()


def run(case: str) -> str:
    async def main() -> str:
        async with hostile(canned) as srv:
            sh = await drive(srv.port, [f"NOOP {case}", "NOOP"], reply_timeout=0.5)
        return sh.output

    output = asyncio.run(main())
    assert "Traceback" not in output
    return output


def after(output: str, case: str) -> list[str]:
    """The lines printed in answer to ``NOOP <case>``, up to the next command."""
    lines = output.splitlines()
    start = lines.index(f"> NOOP {case}") + 1
    end = lines.index("> NOOP", start)
    return lines[start:end]


@pytest.mark.parametrize(
    ("case", "bad"),
    [
        ("short-code", ["25 two digits"]),
        ("long-code", ["2500 four digits"]),
        ("letters", ["OK thanks"]),
        ("out-of-range", ["600 no such class", "199 nor this"]),
        ("no-separator", ["250ok"]),
    ],
)
def test_reply_codes_that_are_not_three_digits(case: str, bad: list[str]) -> None:
    output = run(case)
    assert after(output, case) == [
        *(f"x protocol error: malformed reply line (no three-digit code 2xx-5xx): {b}"
          for b in bad),
        "< 250 ok after all",
    ]
    assert "< 250 2.0.0 plain ok" in output  # the session goes on, replies still paired


def test_mixed_codes_inside_one_reply() -> None:
    assert after(run("mixed-codes"), "mixed-codes") == [
        "< 250-first",
        "< 251-second",
        "< 252 third",
        "  ⚑ mixed codes in one reply: 250 then 251",
        "  ⚑ mixed codes in one reply: 250 then 252",
    ]


def test_non_ascii_and_nul_bytes() -> None:
    assert after(run("non-ascii-and-nul"), "non-ascii-and-nul") == [
        "< 250 café \\xff\\xfe nul\\x00here",
        "  ⚑ NUL byte in reply",
        "  ⚑ non-ASCII bytes in reply",
    ]


def test_bare_lf_line_endings() -> None:
    assert after(run("bare-lf"), "bare-lf") == [
        "< 250-one",
        "< 250 two",
        "  ⚑ line ended with a bare LF, not CRLF",
    ]


def test_stray_cr_inside_a_line() -> None:
    assert after(run("stray-cr"), "stray-cr") == [
        "< 250 a\\x0db",
        "  ⚑ stray CR inside reply line",
    ]


def test_terminal_escape_sequences_are_shown_escaped_never_sent_to_the_terminal() -> None:
    output = run("escapes")
    assert after(output, "escapes") == [
        "< 250 \\x1b[2J\\x1b]0;owned\\x07 \\x9b31m hi",
        "  ⚑ control characters in reply (shown as \\xNN)",
        "  ⚑ non-ASCII bytes in reply",
    ]
    assert "\x1b" not in output and "\x07" not in output and "\x9b" not in output


def test_overlong_reply_line_is_shown_in_full_and_flagged() -> None:
    assert after(run("overlong"), "overlong") == [
        "< 250 " + "x" * 600,
        "  ⚑ line of 606 bytes exceeds RFC 5321's 512",
    ]


def test_garbage_with_no_reply_at_all_then_reconnect() -> None:
    async def main() -> str:
        async with hostile(canned, polite) as srv:
            sh = await drive(srv.port, ["NOOP garbage-only", "/reconnect", "NOOP"],
                             reply_timeout=0.5)
        return sh.output

    output = asyncio.run(main())
    assert after(output, "garbage-only")[:2] == [
        "x protocol error: malformed reply line (no three-digit code 2xx-5xx): "
        "HTTP/1.1 400 Bad Request",
        "! no reply within 0.5s (it will be shown if it comes)",
    ]
    assert output.splitlines()[-1] == "< 250 2.0.0 ok"
    assert errors(output) == [after(output, "garbage-only")[0]]
