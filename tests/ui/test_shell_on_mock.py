"""The shell's own logic on a MockStream: no server, no thread, canned replies.

What these tests check is how ShellCore and the client core follow a conversation (the
stage after BDAT, where a message ends in /raw bytes, what the screen says), not the
network; real-socket tests of the same commands are in test_mail_commands.py.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from pathlib import Path

from smtpshell.protocol.state import ClientState, Stage
from smtpshell.session import ConnectOptions, Observer, Session
from smtpshell.status import ExitStatus
from smtpshell.transport import MockStream
from smtpshell.ui.core import ShellCore
from smtpshell.ui.render import Renderer

GREETING = b"220 mock ESMTP\r\n"
EHLO = b"250-mock\r\n250-CHUNKING\r\n250 8BITMIME\r\n"
OK = b"250 ok\r\n"


def shell_on(stream: MockStream, out: io.StringIO) -> ShellCore:
    def factory(options: ConnectOptions, observers: Sequence[Observer]) -> Session:
        return Session(options, observers, opener=stream.opener())

    return ShellCore(ConnectOptions(ehlo_name="me"), Renderer(out), session_factory=factory)


def drive(stream: MockStream, lines: list[str]) -> tuple[str, ShellCore]:
    out = io.StringIO()
    core = shell_on(stream, out)

    async def run() -> None:
        assert await core.connect() is ExitStatus.OK
        for line in lines:
            await core.handle_line(line)

    asyncio.run(run())
    return out.getvalue(), core


def test_bdat_ends_the_transaction_through_the_core(tmp_path: Path) -> None:
    message = tmp_path / "m.eml"
    message.write_bytes(b"Subject: x\n\n" + b"y" * 50 + b"\n")
    stream = MockStream([GREETING, EHLO, OK, OK, b"250 2.0.0 chunk\r\n", b"250 2.0.0 queued\r\n"])
    out, core = drive(stream, ["EHLO me", "MAIL FROM:<a@x>", "RCPT TO:<b@x>",
                               f"/bdat {message} --chunk 40"])
    assert core.session.stage is Stage.NONE  # BDAT LAST accepted: nobody wrote the stage
    first, last = stream.writes[-2:]
    assert first.startswith(b"BDAT ") and b"LAST" not in first.split(b"\r\n", 1)[0]
    assert last.split(b"\r\n", 1)[0].endswith(b" LAST")
    assert b"".join(w.split(b"\r\n", 1)[1] for w in (first, last)) == (
        b"Subject: x\r\n\r\n" + b"y" * 50 + b"\r\n")
    shown = [line for line in out.splitlines() if line.startswith("> BDAT")]
    assert len(shown) == 2 and shown[1].startswith("> BDAT ") and " LAST  [" in shown[1]


def test_raw_bytes_that_end_the_message_leave_data_mode() -> None:
    stream = MockStream([GREETING, OK, OK, b"354 go\r\n", b"250 queued as X\r\n"])
    out, core = drive(stream, ["MAIL FROM:<a@x>", "RCPT TO:<b@x>", "DATA",
                               r"/!raw Subject: x\r\n\r\nbody\r\n.\r\n"])
    assert core.session.conn.state is ClientState.READY and core.session.stage is Stage.NONE
    assert [r.text for r in core.last_replies] == ["queued as X"]
    assert stream.writes[-1] == b"Subject: x\r\n\r\nbody\r\n.\r\n"  # one write, as typed
    assert "250 queued as X" in out


def test_not_connected_is_said_in_the_shell_s_words() -> None:
    stream = MockStream([GREETING, b"221 bye\r\n", b""])  # the server closes after 221
    out, core = drive(stream, ["QUIT", "NOOP"])
    assert not core.session.connected
    assert out.splitlines()[-1] == "* not connected (use /reconnect)"
