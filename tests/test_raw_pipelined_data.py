"""A /raw payload that carries DATA and its message in one write (a hand-pipelined message,
a smuggling probe), and ``BDAT n`` with its octets: the bytes go out exactly as typed, the
session knows which lines the server answers, and it never waits out the reply timeout.

Against the real sandbox (aiosmtpd on 127.0.0.1) and a small server that refuses DATA.
Every session gets a 3 s reply timeout, so a regression fails fast instead of hanging; the
assertions are on what was shown and stored, never on time.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from smtpshell.protocol.connection import ClientConnection
from smtpshell.protocol.events import Reply
from smtpshell.protocol.state import ClientState, Stage
from smtpshell.sandbox import Sandbox, SandboxConfig, SandboxThread
from smtpshell.session import ConnectOptions
from smtpshell.tls import TlsOptions
from smtpshell.ui.app import run_repl
from smtpshell.ui.core import ShellCore
from smtpshell.ui.render import Renderer
from tests.helpers import run_cli
from tests.hostile.servers import serve_in_thread

ENVELOPE = "EHLO rec.test\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\n"
TIMEOUT_SAID = "no reply within"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    config = SandboxConfig(port=0, tls_port=None, workdir=tmp_path / "sandbox")
    with SandboxThread(config) as sb:
        yield sb


def cli(argv: list[str], stdin: str = "", tmp: Path = Path("/nonexistent")) -> tuple[int, str]:
    status, out, err = run_cli(argv, stdin=stdin, tmp=tmp)
    return status, out + err


def batch(port: int, stdin: str, *extra: str) -> tuple[int, str]:
    """The shell in batch mode (stdin not a terminal) with a short reply timeout."""
    return cli(["--ehlo", "rec.test", "--reply-timeout", "3", *extra, "127.0.0.1", str(port)],
               stdin)


def reply_codes(out: str) -> list[str]:
    """The codes of the replies shown (the last line of each; batch mode marks them "< ")."""
    return [m[1] for m in re.finditer(r"^(?:< )?([2-5]\d\d)(?: .*)?$", out, re.MULTILINE)]


# --------------------------------------------------------------------- the sandbox: 354


def test_data_and_its_message_in_one_raw_payload(sandbox: Sandbox) -> None:
    status, out = batch(sandbox.port, ENVELOPE
                        + "/raw DATA\\r\\nSubject: x\\r\\n\\r\\nbody\\r\\n.\\r\\n\n"
                        + "NOOP\nQUIT\n")
    assert TIMEOUT_SAID not in out, out
    assert status == 0, out
    assert sandbox.messages() == [b"Subject: x\r\n\r\nbody\r\n"]
    # every reply shown, in order: 354 to DATA, 250 to the ".", then NOOP's and QUIT's
    codes = reply_codes(out)
    assert codes[-4:] == ["354", "250", "250", "221"], out
    assert "queued as" in out


def repl(port: int, lines: list[str]) -> str:
    """The real REPL (prompt_toolkit pipe input), lines typed ahead, then Ctrl-D."""
    out = io.StringIO()

    async def run() -> None:
        with create_pipe_input() as pipe:
            core = ShellCore(ConnectOptions(host="127.0.0.1", port=port, tls=TlsOptions(),
                                            ehlo_name="repl.test", reply_timeout=3),
                             Renderer(out))
            task = asyncio.create_task(run_repl(core, history_file=None, input=pipe,
                                                output=DummyOutput()))
            pipe.send_text("".join(line + "\r" for line in lines) + "\x04")
            await asyncio.wait_for(task, 30)

    asyncio.run(run())
    return out.getvalue()


def test_the_repl_sends_data_and_its_message_in_one_raw(sandbox: Sandbox) -> None:
    out = repl(sandbox.port, [*ENVELOPE.splitlines(),
                              "/raw DATA\\r\\nSubject: x\\r\\n\\r\\nbody\\r\\n.\\r\\n",
                              "/status", "NOOP", "QUIT"])
    assert TIMEOUT_SAID not in out, out
    assert sandbox.messages() == [b"Subject: x\r\n\r\nbody\r\n"]
    assert reply_codes(out)[-4:] == ["354", "250", "250", "221"], out
    assert "stage       idle" in out  # the transaction ended with the "."


def test_a_second_transaction_pipelined_after_the_end_of_a_message(sandbox: Sandbox) -> None:
    """In DATA mode, ``/!raw``: the end of this message, then MAIL, RCPT, DATA and a
    second message in the same write (what a smuggling probe sends)."""
    payload = ("Subject: one\\r\\n\\r\\nfirst\\r\\n.\\r\\n"
               "MAIL FROM:<a@example.org>\\r\\nRCPT TO:<c@example.org>\\r\\nDATA\\r\\n"
               "Subject: two\\r\\n\\r\\n..dot\\r\\nsecond\\r\\n.\\r\\n")
    status, out = batch(sandbox.port, ENVELOPE + f"DATA\n/!raw {payload}\nNOOP\nQUIT\n")
    assert TIMEOUT_SAID not in out, out
    assert status == 0, out
    assert sandbox.messages() == [b"Subject: one\r\n\r\nfirst\r\n",
                                  b"Subject: two\r\n\r\n.dot\r\nsecond\r\n"]
    codes = reply_codes(out)
    assert codes[-8:] == ["354", "250", "250", "250", "354", "250", "250", "221"], out


def test_a_whole_transaction_in_one_raw_payload(sandbox: Sandbox) -> None:
    """Pipelined MAIL, RCPT, DATA, the message and NOOP: one write, five replies."""
    payload = ("MAIL FROM:<a@example.org>\\r\\nRCPT TO:<b@example.org>\\r\\nDATA\\r\\n"
               "Subject: all\\r\\n\\r\\n..dot\\r\\nend\\r\\n.\\r\\nNOOP\\r\\n")
    status, out = batch(sandbox.port, f"EHLO rec.test\n/raw {payload}\nQUIT\n")
    assert TIMEOUT_SAID not in out, out
    assert status == 0, out
    assert sandbox.messages() == [b"Subject: all\r\n\r\n.dot\r\nend\r\n"]
    codes = reply_codes(out)
    assert codes[-6:] == ["250", "250", "354", "250", "250", "221"], out


def test_bdat_and_its_octets_in_one_raw_payload(chunking: Sandbox) -> None:
    """``BDAT n LAST`` and the n octets (CRLF.CRLF among them is data, not an end)."""
    chunk = b"Subject: b\r\n\r\nx\r\n.\r\nQUIT\r\n"
    escaped = chunk.decode().replace("\r", "\\r").replace("\n", "\\n")
    status, out = batch(chunking.port, ENVELOPE
                        + f"/raw BDAT {len(chunk)} LAST\\r\\n{escaped}\nNOOP\nQUIT\n")
    assert TIMEOUT_SAID not in out, out
    assert status == 0, out
    assert chunking.messages() == [chunk]
    codes = reply_codes(out)
    assert codes[-3:] == ["250", "250", "221"], out


def test_bdat_to_a_server_without_chunking_its_octets_are_commands(sandbox: Sandbox) -> None:
    """The sandbox without CHUNKING answers BDAT 500 and reads the octets as commands:
    their replies pair with them (never "unsolicited"), and nothing is waited out."""
    status, out = batch(sandbox.port, ENVELOPE + "/raw BDAT 12 LAST\\r\\nNOOP\\r\\nRSET\\r\\n\n"
                        + "QUIT\n")
    assert TIMEOUT_SAID not in out and "unsolicited" not in out, out
    assert reply_codes(out)[-4:] == ["500", "250", "250", "221"], out
    assert "it does not know BDAT" in out
    assert status != 0  # BDAT was refused
    assert sandbox.messages() == []


# --------------------------------------------------------------- a server refusing DATA


async def refuses_data(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """554 to DATA, 500 to every other line (a command it does not know), 250 to the
    envelope and NOOP, 221 to QUIT; every reply in its own write."""
    writer.write(b"220 refuser.test ESMTP\r\n")
    await writer.drain()
    while line := await reader.readline():
        verb = line.strip().split(b" ", 1)[0].upper()
        if verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            return
        if verb == b"DATA":
            writer.write(b"554 5.7.1 no data for you\r\n")
        elif verb in (b"EHLO", b"MAIL", b"RCPT", b"NOOP"):
            writer.write(b"250 ok\r\n")
        else:
            writer.write(b"500 5.5.2 unknown: " + line.strip()[:20] + b"\r\n")
        await writer.drain()


def test_data_refused_every_line_after_it_is_answered_as_a_command() -> None:
    with serve_in_thread(refuses_data) as srv:
        status, out = batch(srv.port, ENVELOPE
                            + "/raw DATA\\r\\nSubject: x\\r\\n\\r\\nbody\\r\\n.\\r\\n\n"
                            + "NOOP\nQUIT\n")
    assert TIMEOUT_SAID not in out, out
    codes = reply_codes(out)
    # DATA 554, then the four lines answered as commands, then NOOP and QUIT
    assert codes[-7:] == ["554", "500", "500", "500", "500", "250", "221"], out
    assert "unknown: Subject: x" in out and "unknown: body" in out
    assert "not a message" in out  # the notice says what became of the lines
    assert status != 0 or "554" in out


# ------------------------------------------------------------------------ the recorder


def test_a_recorded_pipelined_data_session_replays(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "pipelined.smtp"
    status, out = batch(sandbox.port, ENVELOPE
                        + "/raw DATA\\r\\nSubject: x\\r\\n\\r\\nbody\\r\\n.\\r\\n\nQUIT\n",
                        "--record", str(path))
    assert status == 0 and TIMEOUT_SAID not in out, out
    status, out = cli(["replay", "--timeout", "3", "--server", f"127.0.0.1:{sandbox.port}",
                       str(path)])
    assert status == 0, out + path.read_text()
    first, again = sandbox.messages()
    assert first == again == b"Subject: x\r\n\r\nbody\r\n"


def test_a_recorded_refused_data_session_replays(tmp_path: Path) -> None:
    path = tmp_path / "refused.smtp"
    with serve_in_thread(refuses_data) as srv:
        _, out = batch(srv.port, ENVELOPE
                       + "/raw DATA\\r\\nSubject: x\\r\\n\\r\\nbody\\r\\n.\\r\\n\nQUIT\n",
                       "--record", str(path))
        assert TIMEOUT_SAID not in out, out
        status, out = cli(["replay", "--timeout", "3", "--server", f"127.0.0.1:{srv.port}",
                           str(path)])
    assert status == 0, out + path.read_text()


# ------------------------------------------------------------------- the sans-IO core


def _reply(code: int) -> bytes:
    return f"{code} x\r\n".encode()


def test_core_holds_the_lines_after_data_until_its_reply() -> None:
    conn = ClientConnection()
    conn.receive_data(b"220 x\r\n")
    payload = b"DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n"
    assert conn.send_raw(payload) == payload  # exactly as given
    assert conn.pending == ("DATA",)  # the rest waits for DATA's reply to mean anything
    conn.receive_data(_reply(354))
    assert conn.pending == (".",) and conn.state is ClientState.READY
    conn.receive_data(_reply(250))
    assert conn.pending == () and conn.stage is Stage.NONE


def test_core_after_a_refused_data_the_lines_are_commands() -> None:
    conn = ClientConnection()
    conn.receive_data(b"220 x\r\n")
    conn.send_raw(b"DATA\r\nSubject: x\r\n\r\n.\r\nNOOP\r\n")
    conn.receive_data(_reply(554))
    assert conn.pending == ("SUBJECT:", "", ".", "NOOP")
    conn.receive_data(b"".join(_reply(500) for _ in range(3)) + _reply(250))
    replies = []
    while (event := conn.next_event()) is not None:
        if isinstance(event, Reply):
            replies.append((event.command, event.code))
    assert replies[-4:] == [("SUBJECT:", 500), ("", 500), (".", 500), ("NOOP", 250)]
    assert conn.state is ClientState.READY and conn.pending == ()


def test_core_bdat_octets_are_data_unless_bdat_is_unknown() -> None:
    for code, pending in ((250, ()), (552, ()), (500, ("NOOP", "QUIT")), (502, ("NOOP", "QUIT"))):
        conn = ClientConnection()
        conn.receive_data(b"220 x\r\n")
        conn.send_raw(b"BDAT 12\r\nNOOP\r\nQU")
        assert conn.in_chunk and conn.line_open  # 10 of the 12 octets went out
        conn.send_raw(b"IT\r\n")
        assert conn.pending == ("BDAT",) and not conn.line_open
        conn.receive_data(_reply(code))
        assert conn.pending == pending, code
        assert not conn.in_chunk and not conn.line_open


def test_core_lmtp_bdat_last_releases_once() -> None:
    """LMTP: one reply per recipient to BDAT LAST; the first releases what followed."""
    conn = ClientConnection(lmtp=True)
    conn.receive_data(b"220 x\r\n")
    for line in (b"LHLO x\r\n", b"MAIL FROM:<a>\r\n", b"RCPT TO:<b>\r\n", b"RCPT TO:<c>\r\n"):
        conn.send_raw(line)
        conn.receive_data(_reply(250))
    conn.send_raw(b"BDAT 3 LAST\r\nabcNOOP\r\n")
    assert conn.pending == ("BDAT", "BDAT")
    conn.receive_data(_reply(250))
    assert conn.pending == ("BDAT", "NOOP")
    conn.receive_data(_reply(250) + _reply(250))
    assert conn.pending == () and conn.stage is Stage.NONE
