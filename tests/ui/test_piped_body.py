"""A message piped on stdin after DATA: streamed in chunks, the same bytes as line by line.

Batch mode streams the lines after a 354 through the normaliser ``/send`` uses when stdin
is a file or a pipe; a stream without a file descriptor (``StringIO``) still goes line by
line, the way every message went before.  Each test here sends the same input both ways
and compares what the server received and what the transcript holds.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import TextIO

import pytest

from smtpshell.session import ConnectOptions
from smtpshell.status import ExitStatus
from smtpshell.transcript import recorder as _recorder  # noqa: F401  (imported at collection)
from smtpshell.ui.batch import LineReader, run_batch
from smtpshell.ui.commands.record import start_recording
from smtpshell.ui.core import Settings, ShellCore
from smtpshell.ui.render import Renderer
from tests.hostile.servers import serve, serve_in_thread

HEAD = b"EHLO me\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\nDATA\n"
SECRET = "s3cret-Pa55"


async def _server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  bodies: list[bytes]) -> None:
    """250 to everything, 354 to DATA; each body as received (up to and with ".\\r\\n")."""
    writer.write(b"220 body.test ESMTP\r\n")
    while line := await reader.readline():
        verb = line[:4].upper()
        if verb == b"EHLO":
            writer.write(b"250-body.test\r\n250 8BITMIME\r\n")
        elif verb == b"DATA":
            writer.write(b"354 go ahead\r\n")
            await writer.drain()
            body = bytearray()
            while chunk := await reader.readline():
                body += chunk
                if chunk == b".\r\n":
                    break
            bodies.append(bytes(body))
            writer.write(b"250 2.0.0 queued\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            break
        else:
            writer.write(b"250 ok\r\n")
        await writer.drain()


def _run(stdin: TextIO, *, record: Path | None = None, show_data: bool = False,
         ) -> tuple[ExitStatus, list[bytes], str]:
    bodies: list[bytes] = []
    out = io.StringIO()

    async def main() -> ExitStatus:
        async with serve(lambda r, w: _server(r, w, bodies)) as srv:
            options = ConnectOptions(host=srv.host, port=srv.port, ehlo_name="batch.test",
                                     reply_timeout=10)
            settings = Settings(environ={"SMTPSHELL_PASSWORD": SECRET}, show_data=show_data)
            core = ShellCore(options, Renderer(out, echo=True, arrows=True),
                             settings=settings)
            if record is not None:
                assert start_recording(core, str(record))
            return await run_batch(core, stdin)

    return asyncio.run(main()), bodies, out.getvalue()


def _line_by_line(data: bytes, **kw: object) -> tuple[ExitStatus, list[bytes], str]:
    """The way every message went before: one line at a time (no file descriptor)."""
    stream = io.StringIO(data.decode("utf-8", "surrogateescape"), newline="")
    return _run(stream, **kw)  # type: ignore[arg-type]


def _from_file(data: bytes, tmp_path: Path, **kw: object) -> tuple[ExitStatus, list[bytes], str]:
    path = tmp_path / "stdin.txt"
    path.write_bytes(data)
    with open(path, encoding="utf-8") as stream:
        return _run(stream, **kw)  # type: ignore[arg-type]


def _from_pipe(data: bytes, **kw: object) -> tuple[ExitStatus, list[bytes], str]:
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with open(write_fd, "wb") as w:
            w.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        with open(read_fd, encoding="utf-8") as stream:
            return _run(stream, **kw)  # type: ignore[arg-type]
    finally:
        writer.join()


TRICKY = [
    # leading dots, a "." line inside a word, ". " (not the end), "." then CR LF as the end
    (b".one\n..two\n. space\n.\r\n", [b"..one\r\n...two\r\n.. space\r\n.\r\n"]),
    # CRLF and LF input mixed, empty lines
    (b"Subject: x\r\n\r\nbody\nmore\r\n\n.\n",
     [b"Subject: x\r\n\r\nbody\r\nmore\r\n\r\n.\r\n"]),
    # a bare CR inside a line is a line ending, as /send makes it (one normaliser)
    (b"a\rb\nnext\nx\r\r\nlast\n.\n", [b"a\r\nb\r\nnext\r\nx\r\n\r\nlast\r\n.\r\n"]),
    # a NUL and bytes that are not UTF-8 go out as they came
    (b"nul\0byte\n\xff\xfe caf\xc3\xa9\n.\n", [b"nul\0byte\r\n\xff\xfe caf\xc3\xa9\r\n.\r\n"]),
    # long lines (a warning each) and a dot-stuffed long one
    (b"x" * 998 + b"\n" + b"y" * 999 + b"\r\n" + b"." + b"w" * 1500 + b"\n.\n",
     [b"x" * 998 + b"\r\n" + b"y" * 999 + b"\r\n" + b".." + b"w" * 1500 + b"\r\n.\r\n"]),
    # a meta-command inside the message is run, not sent; "/!" alone is text
    (b"before\n /!nosuch arg\n/!\nafter\n.\n", [b"before\r\n/!\r\nafter\r\n.\r\n"]),
    # a known secret in the body: sent, but redacted on screen and in the transcript
    (f"pass {SECRET} here\nok\n.\n".encode(), [f"pass {SECRET} here\r\nok\r\n.\r\n".encode()]),
    # "." as the last line without a newline ends the message
    (b"body\n.", [b"body\r\n.\r\n"]),
    # an empty message, then a second one
    (b".\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\nDATA\n..\n.\n",
     [b".\r\n", b"...\r\n.\r\n"]),
]


@pytest.mark.parametrize(("body", "expected"), TRICKY)
def test_the_server_receives_the_same_bytes_streamed_as_line_by_line(
    body: bytes, expected: list[bytes], tmp_path: Path
) -> None:
    """``expected``: what the server received from the line-by-line reader of stdin."""
    data = HEAD + body + b"\nQUIT\n"
    for status, bodies, _ in (_from_file(data, tmp_path), _from_pipe(data)):
        assert bodies == expected
        assert status is ExitStatus.OK


def test_no_final_newline_and_no_end_of_message() -> None:
    """Input that ends inside the message: the last line goes out with CRLF, no "."."""
    data = HEAD + b"one\ntwo"
    received: list[bytes] = []

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 x\r\n")
        while line := await reader.readline():
            received.append(line)
            if line.startswith((b"EHLO", b"MAIL", b"RCPT")):
                writer.write(b"250 ok\r\n")
            elif line.startswith(b"DATA"):
                writer.write(b"354 go\r\n")
            await writer.drain()

    def run(stdin: TextIO) -> list[bytes]:
        received.clear()

        async def main() -> None:
            async with serve(server) as srv:
                options = ConnectOptions(host=srv.host, port=srv.port, ehlo_name="b.test",
                                         reply_timeout=5)
                core = ShellCore(options, Renderer(io.StringIO(), echo=True, arrows=True))
                await run_batch(core, stdin)

        asyncio.run(main())
        return list(received)

    old = run(io.StringIO(data.decode()))
    new = _with_pipe(data, run)
    assert old == new
    assert b"".join(new).endswith(b"DATA\r\none\r\ntwo\r\n")


def _with_pipe(data: bytes, run):  # type: ignore[no-untyped-def]
    read_fd, write_fd = os.pipe()
    os.write(write_fd, data)
    os.close(write_fd)
    with open(read_fd, encoding="utf-8") as stream:
        return run(stream)


def _big_body() -> bytes:
    """About 400 kB over several reads: dots, CRLF and LF, lines across chunk edges."""
    parts = []
    for i in range(4000):
        word = b"." if i % 7 == 0 else b""
        end = b"\r\n" if i % 3 else b"\n"
        parts.append(word + b"line %d " % i + b"abcdefghij" * (i % 18) + end)
    return b"".join(parts) + b".\n"


def test_a_big_message_and_its_transcript_are_the_same_both_ways(tmp_path: Path) -> None:
    data = HEAD + b"Subject: big\n\n" + _big_body() + b"QUIT\n"
    status, old, _ = _line_by_line(data, record=tmp_path / "old.smtp")
    assert status is ExitStatus.OK and len(old) == 1
    status, new_file, _ = _from_file(data, tmp_path, record=tmp_path / "file.smtp")
    assert status is ExitStatus.OK and new_file == old
    status, new_pipe, _ = _from_pipe(data, record=tmp_path / "pipe.smtp")
    assert status is ExitStatus.OK and new_pipe == old

    def content(path: Path) -> list[str]:  # without the date and the server's port
        text = re.sub(r"127\.0\.0\.1:\d+", "SERVER", path.read_text())
        return [line for line in text.splitlines() if not line.startswith("recorded:")]

    assert content(tmp_path / "file.smtp") == content(tmp_path / "old.smtp")
    assert content(tmp_path / "pipe.smtp") == content(tmp_path / "old.smtp")
    assert len(content(tmp_path / "old.smtp")) > 4000


def test_the_screen_shows_the_first_lines_and_a_count(tmp_path: Path) -> None:
    data = HEAD + b"Subject: big\n\n" + _big_body() + b"QUIT\n"
    status, _, screen = _from_pipe(data)
    assert status is ExitStatus.OK
    lines = screen.splitlines()
    start = lines.index("< 354 go ahead")
    assert lines[start + 1:start + 4] == ["> Subject: big", "> ", "> .line 0 "]
    summary = [line for line in lines if "not shown" in line]
    assert len(summary) == 1, screen
    assert "4002 lines" in summary[0] and "--show-data" in summary[0]
    assert "dot-stuffed 572 lines" in summary[0]
    assert lines[lines.index(summary[0]) + 1:][:2] == ["> .", "< 250 2.0.0 queued"]
    assert len(lines) < 40  # bounded: not one line per message line


@pytest.mark.parametrize("show_data", [False, True])
def test_the_screen_shows_the_lines_a_bare_cr_made(tmp_path: Path, show_data: bool) -> None:
    """A bare CR inside a piped line goes out as a line end: the screen shows the lines
    that went out, not the CR (it once showed 'a\\x0db' and a blank line never sent)."""
    body = b"a\rb\r\nx\r\r\nc\rd\n.\r\n"
    status, bodies, screen = _from_pipe(HEAD + body + b"QUIT\n", show_data=show_data)
    assert status is ExitStatus.OK
    assert bodies == [b"a\r\nb\r\nx\r\n\r\nc\r\nd\r\n.\r\n"]
    lines = screen.splitlines()
    start = lines.index("< 354 go ahead")
    assert lines[start + 1:start + 8] == ["> a", "> b", "> x", "> ", "> c", "> d", "> ."]
    assert "\\x0d" not in screen


def test_show_data_shows_every_line(tmp_path: Path) -> None:
    body = b"".join(b"line %d\n" % i for i in range(300)) + b".\n"
    status, _, screen = _from_file(HEAD + body + b"QUIT\n", tmp_path, show_data=True)
    assert status is ExitStatus.OK
    shown = [line for line in screen.splitlines() if line.startswith("> line ")]
    assert shown == [f"> line {i}" for i in range(300)]
    assert "not shown" not in screen


def test_a_small_message_looks_as_it_did_line_by_line(tmp_path: Path) -> None:
    data = HEAD + b"Subject: s\n\nhello\n.\nQUIT\n"
    _, _, before = _line_by_line(data)
    _, _, after = _from_file(data, tmp_path)
    assert re.sub(r":\d+", "", after) == re.sub(r":\d+", "", before)
    assert "> hello\n> .\n< 250 2.0.0 queued" in after


def test_a_secret_in_the_body_is_not_shown(tmp_path: Path) -> None:
    data = HEAD + f"pass {SECRET} here\n.\nQUIT\n".encode()
    _, bodies, screen = _from_pipe(data, record=tmp_path / "t.smtp")
    assert SECRET.encode() in bodies[0]  # it went to the server, as typed
    assert SECRET not in screen
    assert SECRET not in (tmp_path / "t.smtp").read_text()


def test_a_refused_data_sends_no_body(tmp_path: Path) -> None:
    received: list[bytes] = []

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 x\r\n")
        while line := await reader.readline():
            received.append(line)
            if line.startswith(b"DATA"):
                writer.write(b"554 5.5.1 no valid recipients\r\n")
            elif line.startswith(b"QUIT"):
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()

    path = tmp_path / "stdin.txt"
    path.write_bytes(HEAD + b"Subject: no\n\n" + b"body line\n" * 5000 + b".\nQUIT\n")
    out = io.StringIO()

    async def main() -> ExitStatus:
        async with serve(server) as srv:
            options = ConnectOptions(host=srv.host, port=srv.port, ehlo_name="b.test",
                                     reply_timeout=5)
            core = ShellCore(options, Renderer(out, echo=True, arrows=True))
            with open(path, encoding="utf-8") as stdin:
                return await run_batch(core, stdin)

    assert asyncio.run(main()) is ExitStatus.DATA
    assert received[-2:] == [b"DATA\r\n", b"QUIT\r\n"]
    assert out.getvalue().count("body line") == 0


@pytest.mark.parametrize("show_data", [False, True])
def test_cat_commands_and_message_into_the_shell(show_data: bool) -> None:
    """``cat cmds msg.eml - | smtpshell HOST PORT``: the message streams, the screen
    shows the first lines and a count (every line with --show-data)."""
    bodies: list[bytes] = []
    message = b"Subject: piped\r\n\r\n" + b"".join(b".line %d\r\n" % i for i in range(500))
    with serve_in_thread(lambda r, w: _server(r, w, bodies)) as srv:
        done = subprocess.run(
            [sys.executable, "-m", "smtpshell", "--timeout", "10",
             *(["--show-data"] if show_data else []), srv.host, str(srv.port)],
            input=HEAD + message + b".\nQUIT\n", capture_output=True, timeout=60,
            env={**os.environ, "NO_COLOR": "1"},
        )
    screen = done.stdout.decode()
    assert done.returncode == 0, screen + done.stderr.decode()
    assert bodies == [message.replace(b"\r\n.line", b"\r\n..line") + b".\r\n"]
    shown = [line for line in screen.splitlines() if line.startswith("> .line")]
    assert len(shown) == (500 if show_data else 8)
    summary = [line for line in screen.splitlines() if "streamed from stdin" in line]
    assert summary == ["* message lines streamed from stdin: 502 lines, 5408 bytes, "
                       "dot-stuffed 500 lines"
                       + ("" if show_data else "; 492 not shown (--show-data shows every line)")]


def test_only_a_file_or_a_pipe_is_streamed(tmp_path: Path) -> None:
    """A person typing at a terminal (output redirected: batch mode) sees every line
    echoed as before; a file or a pipe streams; a non-UTF-8 stdin goes line by line."""
    import pty

    master, slave = pty.openpty()
    read_fd, write_fd = os.pipe()
    path = tmp_path / "in.txt"
    path.write_bytes(b"x\n")
    try:
        with open(slave, encoding="utf-8", closefd=False) as tty, \
                open(read_fd, encoding="utf-8") as pipe, open(path, encoding="utf-8") as f, \
                open(path, encoding="latin-1") as latin:
            assert not LineReader(tty).streamable
            assert LineReader(pipe).streamable
            assert LineReader(f).streamable
            assert not LineReader(latin).streamable
            assert not LineReader(io.StringIO("x\n")).streamable
    finally:
        os.close(master)
        os.close(slave)
        os.close(write_fd)


def test_many_long_lines_stream_with_a_warning_each_in_the_transcript(tmp_path: Path) -> None:
    """Lines over 1000 octets (an HTML mail without line breaks): the server gets them as
    before, the transcript has the same warning before each, the screen stays bounded."""
    body = b"".join(b"<p>%d " % i + b"w" * 1200 + b"</p>\n" for i in range(600)) + b".\n"
    data = HEAD + body + b"QUIT\n"
    status, old, _ = _line_by_line(data, record=tmp_path / "old.smtp")
    assert status is ExitStatus.OK
    status, new, screen = _from_pipe(data, record=tmp_path / "new.smtp")
    assert status is ExitStatus.OK and new == old

    def content(path: Path) -> list[str]:
        text = re.sub(r"127\.0\.0\.1:\d+", "SERVER", path.read_text())
        return [line for line in text.splitlines() if not line.startswith("recorded:")]

    assert content(tmp_path / "new.smtp") == content(tmp_path / "old.smtp")
    assert sum("octets; RFC 5321" in line for line in content(tmp_path / "new.smtp")) == 600
    lines = screen.splitlines()
    assert len(lines) < 60
    assert sum("octets; RFC 5321" in line for line in lines) == 10  # beside the shown ones
    assert any("590 more lines over 1000 octets" in line for line in lines), screen
