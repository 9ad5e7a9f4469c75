"""The interactive shell against slow and rude servers: Ctrl-C, replies at the prompt.

The drip tests run the real program in a pseudo-terminal that is its controlling
terminal (``TtyShell``), so Ctrl-C typed while the shell waits becomes SIGINT exactly
as at a real terminal.  The 421 test drives the REPL in-process through prompt_toolkit's
pipe input.
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
import threading
from pathlib import Path

from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from smtpshell.ui.app import run_repl
from smtpshell.ui.core import ShellCore
from smtpshell.ui.render import Renderer
from tests.hostile.more_servers import (
    Reader,
    TtyShell,
    Writer,
    hostile,
    polite,
    shell_options,
    wait_for_text,
)
from tests.hostile.servers import Handler, serve_in_thread

DRIP_EVERY = 0.02  # seconds per byte: "one byte a second", made fast for tests


async def drip(
    writer: Writer, reader: Reader, data: bytes, progress: threading.Event | None = None
) -> bool:
    """Send ``data`` one byte at a time; False when the client went away meanwhile.

    ``progress`` is set once ten bytes are out.
    """
    for sent, byte in enumerate(data, 1):
        if reader.at_eof() or writer.is_closing():
            return False
        writer.write(bytes([byte]))
        await writer.drain()
        if sent == 10 and progress is not None:
            progress.set()
        await asyncio.sleep(DRIP_EVERY)
    return True


def dripping_server(noop_arrived: threading.Event, dripped: threading.Event) -> Handler:
    async def handler(reader: Reader, writer: Writer) -> None:
        writer.write(b"220 drip ESMTP\r\n")
        await writer.drain()
        while line := await reader.readline():
            if line.upper().startswith(b"QUIT"):
                writer.write(b"221 bye\r\n")
                await writer.drain()
                return
            noop_arrived.set()
            if not await drip(writer, reader, b"250 " + b"s" * 2000 + b"\r\n", dripped):
                return

    return handler


def test_ctrl_c_while_a_reply_drips_in_brings_the_prompt_back(tmp_path: Path) -> None:
    noop_arrived, dripped = threading.Event(), threading.Event()
    env = {"NO_COLOR": "1", "XDG_DATA_HOME": str(tmp_path / "data")}
    with serve_in_thread(dripping_server(noop_arrived, dripped)) as srv:
        sh = TtyShell(["--timeout", "60", "127.0.0.1", str(srv.port)], env)
        try:
            sh.expect(r"220 drip ESMTP")
            sh.expect(r"plain>")
            sh.sendline("NOOP")
            assert noop_arrived.wait(10)  # the shell is now waiting for the dripping reply
            sh.interrupt()
            sh.expect(r"! interrupted; a reply still pending will be shown when it arrives")
            sh.expect(r"plain>")
            assert dripped.wait(10)  # ten bytes of the reply are on their way to the shell
            sh.sendline("/status")  # responsive while the reply keeps dripping
            sh.expect(r"stage +idle")
            sh.sendline("/close")  # what dripped in so far is shown, not lost
            sh.expect(r"the connection ended in the middle of a reply; received: 250 s+")
            sh.expect(r"closed>")
        finally:
            sh.close()  # SIGKILL: no chance to flush anything at exit
    assert "Traceback" not in sh.text
    history = tmp_path / "data" / "smtpshell" / "history"
    assert stat.S_IMODE(os.stat(history).st_mode) == 0o600
    assert [line for line in history.read_text().splitlines() if line.startswith("+")] == [
        "+NOOP",
        "+/status",
        "+/close",
    ]


def test_ctrl_c_while_the_greeting_drips_in_leaves_with_status_130() -> None:
    connected = threading.Event()

    async def slow_greeting(reader: Reader, writer: Writer) -> None:
        connected.set()
        await drip(writer, reader, b"220 " + b"s" * 2000 + b"\r\n")

    with serve_in_thread(slow_greeting) as srv:
        sh = TtyShell(["--no-history", "--timeout", "60", "127.0.0.1", str(srv.port)],
                      {"NO_COLOR": "1"})
        try:
            sh.expect(r"connected to 127\.0\.0\.1")
            assert connected.wait(10)
            sh.interrupt()
            assert sh.wait() == 130
        finally:
            sh.close()
    assert sh.text.rstrip().endswith("smtpshell: interrupted")
    assert "Traceback" not in sh.text


def test_unsolicited_421_is_shown_while_the_user_is_at_the_prompt() -> None:
    say_goodbye = asyncio.Event()

    async def shutting_down(reader: Reader, writer: Writer) -> None:
        writer.write(b"220 soon-gone ESMTP\r\n")
        await reader.readline()  # EHLO
        writer.write(b"250 soon-gone\r\n")
        await writer.drain()
        await say_goodbye.wait()  # the user is at the prompt, typing nothing
        writer.write(b"421 4.3.2 shutting down, come back later\r\n")
        await writer.drain()

    async def main() -> str:
        out = io.StringIO()
        async with hostile(shutting_down, polite) as srv:
            with create_pipe_input() as pipe:
                core = ShellCore(shell_options(srv.port), Renderer(out))
                repl = asyncio.create_task(
                    run_repl(core, history_file=None, input=pipe, output=DummyOutput())
                )
                await wait_for_text(out, "220 soon-gone")
                pipe.send_text("EHLO me\r")
                await wait_for_text(out, "250 soon-gone")
                say_goodbye.set()
                await wait_for_text(out, "connection closed by server")
                assert not repl.done()  # still at the prompt
                pipe.send_text("NOOP\r")
                await wait_for_text(out, "not connected (use /reconnect)")
                pipe.send_text("/reconnect\r")
                await wait_for_text(out, "220 polite ESMTP")
                pipe.send_text("/quit\r")
                await asyncio.wait_for(repl, 10)
        return out.getvalue()

    output = asyncio.run(main())
    lines = output.splitlines()
    at = lines.index("421 4.3.2 shutting down, come back later")
    assert lines[at - 1] == "250 soon-gone"  # nothing was typed in between
    assert lines[at + 1 : at + 5] == [
        "  (unsolicited: no command was waiting for this reply)",
        "  hint: the server is closing the connection: reconnect (later) to continue",
        "* the server says it is closing the connection (421)",
        "x connection closed by server",
    ]
    assert "Traceback" not in output


# ---- interrupts leave a known state (issue 13 §5) ------------------------------------


def stalling_starttls_server(hello: threading.Event, ended: threading.Event,
                             after_hello: bytearray) -> Handler:
    """Says 220 to STARTTLS, then never answers the ClientHello; keeps what follows it."""

    async def handler(reader: Reader, writer: Writer) -> None:
        try:
            writer.write(b"220 stall ESMTP\r\n")
            await writer.drain()
            while line := await reader.readline():
                if line.upper().startswith(b"EHLO"):
                    writer.write(b"250-stall\r\n250 STARTTLS\r\n")
                elif line.upper().startswith(b"STARTTLS"):
                    writer.write(b"220 go ahead\r\n")
                    await writer.drain()
                    await reader.readexactly(1)  # the ClientHello is on its way
                    hello.set()
                    while data := await reader.read(65536):
                        after_hello.extend(data)
                    return
                else:
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        finally:
            ended.set()

    return handler


def test_ctrl_c_during_the_starttls_handshake_closes_the_connection(tmp_path: Path) -> None:
    """Never back to plain text once a ClientHello went out: the next AUTH line is not
    sent (it was, in clear, under a 'plain>' prompt)."""
    hello, ended = threading.Event(), threading.Event()
    after_hello = bytearray()
    env = {"NO_COLOR": "1", "XDG_DATA_HOME": str(tmp_path / "data")}
    with serve_in_thread(stalling_starttls_server(hello, ended, after_hello)) as srv:
        sh = TtyShell(["--timeout", "60", "127.0.0.1", str(srv.port)], env)
        try:
            sh.expect(r"plain>")
            sh.sendline("EHLO me")
            sh.expect(r"250 STARTTLS")
            sh.sendline("STARTTLS")
            assert hello.wait(10)  # the shell is in the handshake now
            sh.interrupt()
            sh.expect(r"\* interrupted during the TLS handshake: the connection is closed")
            sh.expect(r"closed>")
            sh.sendline("AUTH PLAIN AGFsaWNlAHMzY3JldA==")
            sh.expect(r"[*x] not connected \(use /reconnect\)")
            assert ended.wait(10)  # the server saw the connection end
        finally:
            sh.close()
    assert b"AUTH" not in after_hello and b"AGFsaWNl" not in after_hello
    assert "interrupted; a reply still pending" not in sh.text
    assert "Traceback" not in sh.text


def stalling_data_server(reading: threading.Event, resume: threading.Event,
                         outcome: dict[str, object]) -> Handler:
    """Accepts a transaction, reads a megabyte of the message, then stops reading until
    ``resume``; then reads what is left and notes whether the message was ended."""

    async def handler(reader: Reader, writer: Writer) -> None:
        writer.write(b"220 slow ESMTP\r\n")
        await writer.drain()
        while line := await reader.readline():
            if line.upper().startswith(b"DATA"):
                writer.write(b"354 go on\r\n")
                await writer.drain()
                body = bytearray(await reader.readexactly(1 << 20))
                reading.set()
                await asyncio.get_running_loop().run_in_executor(None, resume.wait, 20)
                try:
                    async with asyncio.timeout(20):
                        while data := await reader.read(1 << 20):
                            body += data
                    outcome["eof"] = True
                except ConnectionError:
                    outcome["eof"] = True
                except TimeoutError:
                    outcome["eof"] = False
                outcome["ended"] = b"\r\n.\r\n" in body
                return
            writer.write(b"250 ok\r\n")
            await writer.drain()

    return handler


def test_ctrl_c_during_send_ends_the_connection_and_the_transcript_says_so(
    tmp_path: Path,
) -> None:
    """A message sent in part cannot be finished: Ctrl-C closes the connection (the shell
    stayed 'in DATA' and a typed '.' was glued onto the half-sent line)."""
    message = tmp_path / "big.eml"
    line = b"x" * 998 + b"\n"
    message.write_bytes(b"Subject: big\n\n" + line * (24 << 10))  # 24 MiB
    record = tmp_path / "session.txt"
    reading, resume = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}
    env = {"NO_COLOR": "1", "XDG_DATA_HOME": str(tmp_path / "data")}
    with serve_in_thread(stalling_data_server(reading, resume, outcome)) as srv:
        sh = TtyShell(["--timeout", "60", "--record", str(record), "--elide-data", "100",
                       "127.0.0.1", str(srv.port)], env)
        try:
            sh.expect(r"plain>")
            for n, command in enumerate(
                ("EHLO me", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>"), 1
            ):
                sh.sendline(command)
                sh.expect("(?s)" + ".*".join(["250 ok"] * n))
            sh.sendline(f"/send {message}")
            assert reading.wait(20)  # a megabyte of the message arrived; then it stalls
            sh.interrupt()
            sh.expect(r"\* interrupted while sending: the connection is closed")
            sh.expect(r"closed>")
            sh.sendline(".")
            sh.expect(r"[*x] not connected \(use /reconnect\)")
            resume.set()
            sh.sendline("/quit")
            assert sh.wait() == 0
        finally:
            resume.set()
            sh.close()
    assert outcome == {"eof": True, "ended": False}
    assert "Traceback" not in sh.text
    transcript = record.read_text()
    assert "== closed by=client" in transcript
    assert "interrupted while sending" in transcript
