"""A server's EHLO keywords with controls and bidi: /status and Tab completion.

Case is folded on the server's bytes and the result escaped once (never an upper-cased
escape such as ``\\X1B``); completion inserts only words that are SMTP tokens.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

from smtpshell.protocol.events import Reply
from smtpshell.protocol.replies import Capabilities, ReplyParser
from smtpshell.ui.completion_engine import CompletionState, complete
from tests.hostile.servers import serve_in_thread

EHLO = (b"250-kw.test\r\n250-AUTH \x1b]0;COMPL\x07 plain \xe2\x80\xaeXEVIL\r\n"
        b"250-x\x1b]2;KW\x07key\r\n250-\xe2\x80\xaepipelining\r\n250 MAIL\x1b[?1049h\r\n")


async def keywords_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 kw.test\r\n")
    await writer.drain()
    while line := await reader.readline():
        verb = line.split(b" ", 1)[0].strip().upper()
        if verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            return
        writer.write(EHLO if verb == b"EHLO" else b"250 ok\r\n")
        await writer.drain()


def ehlo_capabilities() -> Capabilities:
    replies = [e for e in ReplyParser().feed(EHLO) if isinstance(e, Reply)]
    assert len(replies) == 1
    return Capabilities.from_reply(replies[0])


def test_keywords_are_upper_cased_before_they_are_escaped() -> None:
    caps = ehlo_capabilities()
    assert "X\\x1b]2;KW\\x07KEY" in caps.keywords
    assert "\\u202ePIPELINING" in caps.keywords
    assert "MAIL\\x1b[?1049H" in caps.keywords  # the server's 'h' is a letter: upper-cased
    assert caps.auth_mechanisms == ("\\x1b]0;COMPL\\x07", "PLAIN", "\\u202eXEVIL")
    assert not any("\\X" in k or "\\U" in k for k in caps.keywords)


def test_auth_completion_offers_only_sasl_mechanism_names() -> None:
    st = CompletionState(capabilities=ehlo_capabilities())
    assert [s.text for s in complete("AUTH ", st)] == ["PLAIN"]
    assert [s.text for s in complete("auth ", st)] == ["plain"]
    assert complete("AUTH \\", st) == []


def test_status_shows_the_keywords_escaped_in_their_own_case() -> None:
    with serve_in_thread(keywords_server) as srv:
        done = subprocess.run(
            [sys.executable, "-m", "smtpshell", "127.0.0.1", str(srv.port)],
            input=b"EHLO me\n/status\nQUIT\n", capture_output=True, timeout=60, check=False,
        )
    out = done.stdout.decode("utf-8", "replace")
    status = [line for line in out.splitlines() if line.strip().startswith("ehlo ")]
    assert len(status) == 1, out
    assert "X\\x1b]2;KW\\x07KEY" in status[0] and "\\u202ePIPELINING" in status[0], status
    assert "\\X1B" not in out and "\\U202E" not in out and "\\X07" not in out, out
    assert b"\x1b" not in done.stdout
