"""Pasting several lines into the REPL: in order, and pipelined when the server allows it."""

from __future__ import annotations

import asyncio
import io

from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from smtpshell.session import ConnectOptions
from smtpshell.ui.app import run_repl
from smtpshell.ui.core import ShellCore
from smtpshell.ui.render import Renderer
from tests.hostile.servers import serve

PASTE = "MAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\nRCPT TO:<c@example.org>\nDATA\n"


async def strict_pipelining_server(reader: asyncio.StreamReader,
                                   writer: asyncio.StreamWriter) -> None:
    """Answers MAIL/RCPT/RCPT/DATA only once all four have arrived: a client that waits
    for each reply before sending the next would never get one."""
    writer.write(b"220 pipe ESMTP\r\n")
    await reader.readline()  # EHLO
    writer.write(b"250-pipe\r\n250 PIPELINING\r\n")
    await writer.drain()
    group = [await reader.readline() for _ in range(4)]
    assert group[0].startswith(b"MAIL") and group[3] == b"DATA\r\n"
    writer.write(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go\r\n")
    await writer.drain()
    while line := await reader.readline():
        if line == b".\r\n":
            writer.write(b"250 2.0.0 queued\r\n")
        elif line.startswith(b"QUIT"):
            writer.write(b"221 bye\r\n")
            await writer.drain()
            return
        await writer.drain()


def test_paste_is_pipelined_and_replies_shown_beside_commands() -> None:
    out = io.StringIO()

    async def run() -> None:
        async with serve(strict_pipelining_server) as srv:
            with create_pipe_input() as pipe:
                core = ShellCore(ConnectOptions(host=srv.host, port=srv.port, ehlo_name="p",
                                                reply_timeout=5), Renderer(out))
                task = asyncio.create_task(
                    run_repl(core, history_file=None, input=pipe, output=DummyOutput()))
                pipe.send_text("EHLO p\r")
                pipe.send_text("\x1b[200~" + PASTE + "\x1b[201~\r")
                pipe.send_text("Subject: pasted\r\r")
                pipe.send_text(".\r")
                pipe.send_text("QUIT\r")
                pipe.send_text("\x04")
                await asyncio.wait_for(task, 20)

    asyncio.run(run())
    text = out.getvalue()
    assert "RCPT TO:<c@example.org>  →  550 5.1.1 no such user" in text, text
    assert "DATA  →  354 go" in text
    assert "250 2.0.0 queued" in text
    assert "timed out" not in text and "no reply" not in text
