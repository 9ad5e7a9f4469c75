"""/send, /bdat, /msg and /raw driven through ShellCore against real servers.

The sandbox (aiosmtpd) checks what arrives for DATA; a small asyncio server written
here captures exact bytes for /raw and speaks BDAT (aiosmtpd does not).
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smtpshell.compose import normalise_line_endings
from smtpshell.protocol.state import Stage
from smtpshell.sandbox import Sandbox
from smtpshell.session import ConnectOptions
from smtpshell.status import ExitStatus
from smtpshell.ui.commands.mail import SendArgs, parse_send_args
from smtpshell.ui.core import ShellCore
from smtpshell.ui.render import Renderer
from tests.hostile.servers import serve

MESSAGE = (
    b"Subject: dots and line endings\n"
    b"From: a@example.org\r\n"
    b"\n"
    b".starts with a dot\n"
    b"..two dots\r"
    b".\n"
    b"a line with a bare CR\rin it\r\n"
    b" .space then dot\n"
    b"no final newline"
)
STORED = normalise_line_endings(MESSAGE) + b"\r\n"

async def drive(port: int, lines: list[str]) -> tuple[str, ShellCore]:
    """Connect a ShellCore, feed it lines as if typed, close; return the output."""
    out = io.StringIO()
    core = ShellCore(
        ConnectOptions(host="127.0.0.1", port=port, ehlo_name="compose.test", reply_timeout=10),
        Renderer(out),
    )
    assert await core.connect() is ExitStatus.OK
    try:
        for line in lines:
            await core.handle_line(line)
    finally:
        await core.close()
    return out.getvalue(), core


def run(port: int, lines: list[str]) -> tuple[str, ShellCore]:
    return asyncio.run(drive(port, lines))


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("x ")]


# ---- a small SMTP server that records every byte and understands BDAT ----------------------


@dataclass
class Mini:
    """Behaviour and records of the capturing server."""

    caps: tuple[str, ...] = ()
    data_reply: bytes = b"354 go ahead\r\n"
    received: bytearray = field(default_factory=bytearray)
    commands: list[bytes] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    bdat_sizes: list[int] = field(default_factory=list)
    finished: asyncio.Event | None = None

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self.converse(reader, writer)
        finally:
            # Close here, so that serve() finds nothing left to cancel.
            writer.close()
            await writer.wait_closed()
            if self.finished is not None:
                self.finished.set()

    async def converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def line() -> bytes:
            got = await reader.readline()
            self.received += got
            return got

        writer.write(b"220 mini ESMTP\r\n")
        bdat = bytearray()
        while got := await line():
            self.commands.append(got)
            verb = got.split(b" ", 1)[0].strip().upper()
            if verb == b"EHLO":
                caps = [b"mini", *(c.encode() for c in self.caps)]
                writer.write(b"".join(b"250-" + c + b"\r\n" for c in caps[:-1]))
                writer.write(b"250 " + caps[-1] + b"\r\n")
            elif verb == b"DATA":
                writer.write(self.data_reply)
                if self.data_reply.startswith(b"354"):
                    body = bytearray()
                    while (got := await line()) not in (b".\r\n", b""):
                        body += got
                    self.messages.append(bytes(body))
                    writer.write(b"250 2.0.0 accepted\r\n")
            elif verb == b"BDAT":
                match = re.fullmatch(rb"BDAT (\d+)( LAST)?\r\n", got)
                if match is None:
                    writer.write(b"501 5.5.4 bad BDAT\r\n")
                    continue
                chunk = await reader.readexactly(int(match[1]))
                self.received += chunk
                self.bdat_sizes.append(len(chunk))
                bdat += chunk
                if match[2]:
                    self.messages.append(bytes(bdat))
                    bdat.clear()
                    writer.write(b"250 2.0.0 message accepted\r\n")
                else:
                    writer.write(b"250 2.0.0 %d octets received\r\n" % len(chunk))
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                return
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                writer.write(b"250 2.0.0 ok\r\n")
            else:
                writer.write(b"500 5.5.2 what?\r\n")
            await writer.drain()


def run_mini(mini: Mini, lines: list[str]) -> tuple[str, ShellCore]:
    async def main() -> tuple[str, ShellCore]:
        mini.finished = asyncio.Event()
        async with serve(mini.handler) as srv:
            result = await drive(srv.port, lines)
            await mini.finished.wait()  # the client's close reached the server
        return result

    return asyncio.run(main())


ENVELOPE = ["EHLO me", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>"]


# ---- /send over DATA, against the sandbox ------------------------------------------------


@pytest.mark.parametrize("chunk", ["", "--chunk 5", "--chunk=1"])
def test_send_streams_a_file_that_arrives_intact(
    sandbox: Sandbox, tmp_path: Path, chunk: str
) -> None:
    path = tmp_path / "message.eml"
    path.write_bytes(MESSAGE)
    output, core = run(sandbox.port, [*ENVELOPE, f"/send {path} {chunk}"])
    assert sandbox.messages() == [STORED]
    assert not errors(output)
    assert f"message.eml: {len(STORED)} bytes, 10 lines (the server accepts up to" in output
    assert f"sent message.eml: 10 lines, {len(STORED)} bytes, dot-stuffed 3 lines" in output
    assert "added the missing final CRLF" in output
    assert "250 2.0.0 OK: queued as" in output
    assert core.exit_status() is ExitStatus.OK
    assert core.session.stage is Stage.NONE and not core.session.in_data


def test_send_inside_data_appends_the_file_and_ends_the_message(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "body.txt"
    path.write_bytes(b".first\nsecond\n")
    output, _ = run(sandbox.port, [*ENVELOPE, "DATA", "Subject: typed", "", f"/!send {path}"])
    assert sandbox.messages() == [b"Subject: typed\r\n\r\n.first\r\nsecond\r\n"]
    assert not errors(output)


def test_send_a_path_with_spaces_in_the_home_directory(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "my message.eml").write_bytes(b"Subject: spaces\r\n\r\nok\r\n")
    output, _ = run(sandbox.port, [*ENVELOPE, "/send '~/my message.eml'"])
    assert sandbox.messages() == [b"Subject: spaces\r\n\r\nok\r\n"]
    assert not errors(output)


@pytest.mark.parametrize(
    ("before", "problem"),
    [
        (["EHLO me"], "no mail transaction: send MAIL FROM and RCPT TO first (or use /msg)"),
        (["EHLO me", "MAIL FROM:<a@example.org>"], "no recipient accepted yet: send RCPT TO first"),
        (
            [*ENVELOPE[:2], "RCPT TO:<reject@sandbox.test>"],
            "no recipient accepted yet: send RCPT TO first",
        ),
    ],
)
def test_send_needs_a_transaction(
    sandbox: Sandbox, tmp_path: Path, before: list[str], problem: str
) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(b"Subject: x\r\n\r\n")
    output, _ = run(sandbox.port, [*before, f"/send {path}"])
    assert errors(output) == [f"x {problem}"]
    assert sandbox.messages() == []


def test_send_refuses_bad_files_in_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "empty.eml").write_bytes(b"")
    (tmp_path / "binary.eml").write_bytes(b"GIF89a\x00\x01")
    lines = [
        f"/send {tmp_path / 'missing.eml'}",
        f"/send {tmp_path}",
        f"/send {tmp_path / 'empty.eml'}",
        f"/send {tmp_path / 'binary.eml'}",
        "/send",
        "/send a.eml b.eml",
        "/send --frobnicate a.eml",
        "/send --chunk 0 a.eml",
        "/send 'unbalanced",
        f"/bdat {tmp_path / 'missing.eml'}",
    ]
    output, _ = run(sandbox.port, [*ENVELOPE, *lines])
    found = errors(output)
    assert len(found) == len(lines)
    for got, want in zip(
        found,
        [
            "missing.eml: no such file",
            "is a directory",
            "is empty",
            "looks binary",
            "give exactly one message file",
            "give exactly one message file",
            "unknown option --frobnicate",
            "--chunk needs a positive number",
            "No closing quotation",
            "missing.eml: no such file",
        ],
        strict=True,
    ):
        assert want in got
    assert "Traceback" not in output
    assert sandbox.messages() == []


def test_send_refused_by_data_reply(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(b"Subject: x\r\n\r\nbody\r\n")
    mini = Mini(data_reply=b"554 5.5.1 no valid recipients\r\n")
    output, core = run_mini(mini, [*ENVELOPE, f"/send {path}"])
    assert errors(output) == ["x the server did not answer DATA with 354: message not sent"]
    assert not core.session.in_data
    assert mini.messages == []


def test_size_limit_refuses_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "big.eml"
    path.write_bytes(b"Subject: big\n\n" + b"x" * 90 + b"\n")  # 105 on disk, 108 as sent
    mini = Mini(caps=("SIZE 100",))
    output, _ = run_mini(mini, [*ENVELOPE, f"/send {path}"])
    assert errors(output) == [
        "x big.eml is 108 bytes; the server's SIZE limit is 100 (RFC 1870): not sent "
        "(--force sends it anyway)"
    ]
    assert b"DATA\r\n" not in mini.commands
    output, _ = run_mini(mini, [*ENVELOPE, f"/send --force {path}"])
    assert "over the server's SIZE limit of 100: sending anyway" in output
    assert mini.messages == [normalise_line_endings(path.read_bytes())]


def test_long_lines_are_warned_about_before_sending(tmp_path: Path) -> None:
    path = tmp_path / "long.eml"
    path.write_bytes(b"Subject: long\r\n\r\n" + b"y" * 1200 + b"\r\n")
    mini = Mini()
    output, _ = run_mini(mini, [*ENVELOPE, f"/send {path}"])
    assert "! 1 line(s) longer than 1000 octets" in output
    assert mini.messages == [path.read_bytes()]


# ---- BDAT --------------------------------------------------------------------------------


def test_bdat_sends_exact_octet_counts(tmp_path: Path) -> None:
    path = tmp_path / "message.eml"
    path.write_bytes(MESSAGE)
    mini = Mini(caps=("CHUNKING", "SIZE 1000"))
    output, core = run_mini(mini, [*ENVELOPE, f"/bdat {path} --chunk 40", "NOOP"])
    assert mini.messages == [STORED]  # no dot-stuffing, CRLF everywhere
    assert sum(mini.bdat_sizes) == len(STORED) and len(mini.bdat_sizes) > 2
    bdat_lines = [c for c in mini.commands if c.startswith(b"BDAT")]
    assert bdat_lines[-1].endswith(b" LAST\r\n")
    assert not any(b"LAST" in c for c in bdat_lines[:-1])
    assert f"> BDAT {mini.bdat_sizes[0]}  [{mini.bdat_sizes[0]} octets of message.eml]" in output
    assert "250 2.0.0 message accepted" in output
    assert f"sent message.eml with BDAT: 10 lines, {len(STORED)} bytes" in output
    assert not errors(output)
    assert core.session.stage is Stage.NONE
    assert core.last_replies[-1].command == "NOOP"


def test_send_with_bdat_flag_is_the_same(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(b"Subject: x\n\n.dot\n")
    mini = Mini(caps=("CHUNKING",))
    output, _ = run_mini(mini, [*ENVELOPE, f"/send --bdat {path}"])
    assert "> BDAT 20 LAST  [20 octets of m.eml]" in output
    assert mini.messages == [b"Subject: x\r\n\r\n.dot\r\n"]
    assert mini.bdat_sizes == [20]
    assert mini.commands[-1] == b"BDAT 20 LAST\r\n"


def test_bdat_needs_chunking(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(b"Subject: x\r\n\r\n")
    output, _ = run(sandbox.port, [*ENVELOPE, f"/bdat {path}", "DATA", f"/!send --bdat {path}"])
    assert errors(output) == [
        "x the server does not advertise CHUNKING (RFC 3030), so BDAT is not available",
        "x BDAT cannot follow DATA: end this message with '.' first",
    ]


def test_parse_send_args() -> None:
    assert parse_send_args("m.eml") == SendArgs("m.eml")
    assert parse_send_args("--force --chunk 9 m.eml --bdat") == SendArgs("m.eml", True, True, 9)
    assert parse_send_args("m.eml", bdat=True) == SendArgs("m.eml", bdat=True)
    assert parse_send_args("--chunk") == "/send: --chunk needs a number of bytes"


# ---- /msg ----------------------------------------------------------------------------------


def test_msg_sends_a_whole_transaction(sandbox: Sandbox) -> None:
    output, core = run(
        sandbox.port,
        ["/msg alice@example.org bob@example.org,reject@sandbox.test Hello there"],
    )
    [delivery] = sandbox.deliveries()
    assert delivery.mail_from == "alice@example.org"
    assert delivery.rcpt_tos == ("bob@example.org",)
    assert b"\r\nSubject: Hello there\r\n" in delivery.data
    assert delivery.data.startswith(b"From: alice@example.org\r\nTo: bob@example.org, ")
    for shown in ("> EHLO compose.test", "> MAIL FROM:<alice@example.org> SIZE=",
                  "> RCPT TO:<bob@example.org>", "550 5.1.1", "> DATA", "354", "> .",
                  "250 2.0.0 OK: queued as"):
        assert shown in output
    assert core.exit_status() is ExitStatus.OK


def test_msg_declares_the_size_it_sends() -> None:
    mini = Mini(caps=("SIZE 100000",))
    run_mini(mini, ["EHLO me", "/msg <a@x.test> <b@y.test>"])
    [mail] = [c for c in mini.commands if c.startswith(b"MAIL")]
    size = int(re.fullmatch(rb"MAIL FROM:<a@x\.test> SIZE=(\d+)\r\n", mail)[1])  # type: ignore[index]
    assert size == len(mini.messages[0])


def test_msg_with_no_accepted_recipient_resets(sandbox: Sandbox) -> None:
    output, core = run(sandbox.port, ["/msg a@example.org reject@sandbox.test"])
    assert errors(output) == ["x no recipient was accepted: message not sent (sending RSET)"]
    assert sandbox.messages() == []
    assert core.session.stage is Stage.NONE


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("/msg", "usage: /msg FROM TO[,TO...] [SUBJECT...]"),
        ("/msg a@example.org", "usage: /msg FROM TO[,TO...] [SUBJECT...]"),
        ("/msg nobody b@example.org", "/msg: 'nobody' is not an address like user@example.org"),
        ("/msg a@example.org b@x,oops", "/msg: 'oops' is not an address like user@example.org"),
        ("/msg a@example.org ,", "/msg: ',' is not an address like user@example.org"),
    ],
)
def test_msg_bad_input(sandbox: Sandbox, line: str, problem: str) -> None:
    output, _ = run(sandbox.port, [line])
    assert errors(output) == [f"x {problem}"]


def test_msg_refuses_inside_a_transaction(sandbox: Sandbox) -> None:
    output, _ = run(sandbox.port, [*ENVELOPE[:2], "/msg a@example.org b@example.org"])
    assert errors(output) == ["x a mail transaction is already open: send RSET first"]


# ---- /raw ----------------------------------------------------------------------------------


def test_raw_bytes_arrive_exactly_and_replies_are_matched() -> None:
    mini = Mini()
    output, core = run_mini(mini, [r"/raw NOOP\r\n", r"/raw NO", r"/raw OP\r\n", "NOOP"])
    assert bytes(mini.received) == b"NOOP\r\nNOOP\r\nNOOP\r\n"
    assert "* raw: 6 bytes, CRLF line endings, nothing unusual" in output
    assert "! raw: 2 bytes: no trailing CRLF" in output
    assert "unsolicited" not in output
    assert output.count("250 2.0.0 ok") == 3
    assert [r.command for r in core.last_replies] == ["NOOP"]


def test_raw_smuggling_probe_inside_data() -> None:
    mini = Mini()
    probe = r"hello\n.\nMAIL FROM:<x>\r\n"
    output, core = run_mini(mini, [*ENVELOPE, r"/raw DATA\r\n", f"/!raw {probe}", "."])
    assert (
        "! raw: 23 bytes: <LF>.<LF> (SMTP smuggling pattern), bare LF 2 times" in output
    )
    assert bytes(mini.received).endswith(b"DATA\r\nhello\n.\nMAIL FROM:<x>\r\n.\r\n")
    assert mini.messages == [b"hello\n.\nMAIL FROM:<x>\r\n"]
    assert not core.session.in_data
    assert core.last_replies[-1].code == 250


def test_raw_can_end_the_message_itself() -> None:
    mini = Mini()
    lines = [*ENVELOPE, r"/raw DATA\r\n", r"/!raw Subject: raw\r\n\r\nbody\r\n.\r\n", "NOOP"]
    output, core = run_mini(mini, lines)
    assert mini.messages == [b"Subject: raw\r\n\r\nbody\r\n"]
    assert bytes(mini.received).endswith(b"body\r\n.\r\nNOOP\r\n")
    assert "unsolicited" not in output
    assert [r.command for r in core.last_replies] == ["NOOP"]


def test_raw_bad_escape_is_one_line() -> None:
    mini = Mini()
    output, _ = run_mini(mini, [r"/raw NOOP\q", "/raw"])
    assert errors(output) == [
        r"x /raw: unknown escape \q at position 5 (known: \0 \n \r \t \\ \xNN)",
        r"x usage: /raw TEXT (escapes \r \n \t \0 \\ \xNN; write \r\n to end a line)",
    ]
    assert bytes(mini.received) == b""


def test_commands_are_listed_in_help(sandbox: Sandbox) -> None:
    output, _ = run(sandbox.port, ["/help", "/help send"])
    for name in ("/send FILE", "/bdat FILE", "/msg FROM", "/raw TEXT"):
        assert name in output
