"""The one pipelining policy (RFC 2920 §3.1) that paste and batch mode share."""

from __future__ import annotations

import asyncio
import io
from collections import deque

import pytest

from smtpshell.session import ConnectOptions
from smtpshell.status import ExitStatus
from smtpshell.ui import pipeline
from smtpshell.ui.batch import run_batch
from smtpshell.ui.core import ShellCore
from smtpshell.ui.pipeline import Policy, Role
from smtpshell.ui.render import Renderer
from tests.hostile.servers import serve

ON = Policy(pipelining=True)


def groups(lines: list[str], policy: Policy = ON) -> list[list[str]]:
    """How ``lines`` would go out: each inner list is one write."""
    queue = deque(lines)
    out: list[list[str]] = []
    while queue:
        out.append(pipeline.group(queue.popleft(), policy,
                                  lambda: queue.popleft() if queue else None, queue.appendleft))
    return out


@pytest.mark.parametrize("verb", ["EHLO", "HELO", "LHLO", "DATA", "VRFY", "EXPN", "TURN",
                                  "QUIT", "NOOP"])  # fmt: skip
def test_every_group_ender_of_rfc_2920_ends_a_group(verb: str) -> None:
    assert pipeline.verb_role(verb) is Role.LAST
    line = f"{verb} x" if verb in ("VRFY", "EXPN", "EHLO", "HELO", "LHLO") else verb
    assert groups(["MAIL FROM:<a@b>", line, "RCPT TO:<c@d>", "RSET"]) == [
        ["MAIL FROM:<a@b>", line], ["RCPT TO:<c@d>", "RSET"]]


def test_mail_rcpt_rset_may_stand_anywhere() -> None:
    lines = ["RSET", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "rcpt to:<e@f>", "DATA"]
    assert groups(lines) == [lines]


@pytest.mark.parametrize("line", ["STARTTLS", "AUTH PLAIN AGEAYg==", "BDAT 3 LAST", "HELP",
                                  "ETRN example.org", "/status", "", "X-UNKNOWN"])
def test_what_goes_on_its_own(line: str) -> None:
    assert ON.role(line) is Role.ALONE
    assert groups(["MAIL FROM:<a@b>", line, "RCPT TO:<c@d>"]) == [
        ["MAIL FROM:<a@b>"], [line], ["RCPT TO:<c@d>"]]


def test_nothing_is_grouped_without_pipelining() -> None:
    lines = ["MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"]
    assert groups(lines, Policy(pipelining=False)) == [[line] for line in lines]


def test_a_group_ender_does_not_start_a_group() -> None:
    assert groups(["NOOP", "MAIL FROM:<a@b>", "QUIT"]) == [["NOOP"], ["MAIL FROM:<a@b>", "QUIT"]]


def test_secrets_and_require_tls_keep_a_line_apart() -> None:
    secret = Policy(pipelining=True, has_secret=lambda line: "s3cret" in line)
    assert secret.role("RCPT TO:<s3cret@x>") is Role.ALONE
    strict = Policy(pipelining=True, require_tls=True)
    assert strict.role("MAIL FROM:<a@b>") is Role.ALONE
    assert Policy(pipelining=True, require_tls=True, is_tls=True).role("MAIL FROM:<a@b>") \
        is Role.MEMBER


def _group_ends_at(verb: bytes):  # type: ignore[no-untyped-def]
    """A server that answers MAIL, RCPT and ``verb`` only once all three have arrived (a
    client that waited for each reply, or ended the group earlier, would hang), then
    expects RCPT and QUIT as the next group."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 pipe ESMTP\r\n")
        await reader.readline()  # EHLO
        writer.write(b"250-pipe\r\n250 PIPELINING\r\n")
        await writer.drain()
        first = [await reader.readline() for _ in range(3)]
        assert first[2].startswith(verb)
        writer.write(b"250 ok\r\n250 ok\r\n252 cannot verify\r\n")
        await writer.drain()
        second = [await reader.readline() for _ in range(2)]
        assert second == [b"RCPT TO:<c@example.org>\r\n", b"QUIT\r\n"]
        writer.write(b"250 ok\r\n221 bye\r\n")
        await writer.drain()

    return handler


def test_a_paste_uses_the_policy_against_a_real_server() -> None:
    out = io.StringIO()

    async def run() -> None:
        async with serve(_group_ends_at(b"VRFY")) as srv:
            core = ShellCore(ConnectOptions(host=srv.host, port=srv.port, ehlo_name="p",
                                            reply_timeout=5), Renderer(out))
            assert await core.connect() == 0
            await core.handle_line("EHLO p")
            await core.handle_paste(["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>",
                                     "VRFY b", "RCPT TO:<c@example.org>", "QUIT"])
            await core.close()

    asyncio.run(run())
    text = out.getvalue()
    assert "VRFY b  →  252 cannot verify" in text
    assert "QUIT  →  221 bye" in text


def test_batch_mode_sends_turn_as_the_end_of_a_group() -> None:
    out = io.StringIO()
    script = ("EHLO p\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\nTURN\n"
              "RCPT TO:<c@example.org>\nQUIT\n")

    async def run() -> ExitStatus:
        async with serve(_group_ends_at(b"TURN")) as srv:
            core = ShellCore(ConnectOptions(host=srv.host, port=srv.port, ehlo_name="p",
                                            reply_timeout=5), Renderer(out, echo=True))
            return await run_batch(core, io.StringIO(script))

    assert asyncio.run(run()) is ExitStatus.OK, out.getvalue()
    text = out.getvalue()
    assert "252 cannot verify" in text and "221 bye" in text
    assert "no reply within" not in text  # a group cut short waits for replies in vain
