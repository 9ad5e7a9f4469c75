"""Batch mode: PIPELINING groups (RFC 2920), lines read without threads, lean imports."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from smtpshell.protocol.events import Closed, Notice, Reply
from smtpshell.protocol.sasl import Outgoing
from smtpshell.sandbox import Sandbox
from smtpshell.session import ConnectOptions, Sent
from smtpshell.status import ExitStatus
from smtpshell.ui.batch import LineReader, run_batch
from smtpshell.ui.core import ShellCore
from smtpshell.ui.pipeline import interleave
from smtpshell.ui.render import Renderer
from tests.hostile.servers import serve, serve_in_thread

MESSAGE = "Subject: pipelined\n\n.hidden line\nbody\n.\n"


def strict_server(*, rcpt_code: int = 250, pipelining: bool = True, withhold: bool = True):  # type: ignore[no-untyped-def]
    """A server that (with ``withhold``) answers MAIL and RCPT only once DATA has arrived:
    a client that waited for each reply before sending the next would never get one."""
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 pipe.test ESMTP\r\n")
        held: list[bytes] = []
        in_data = False
        while line := await reader.readline():
            received.append(line)
            verb = line[:4].upper()
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"EHLO":
                writer.write(b"250-pipe.test\r\n" + (b"250-PIPELINING\r\n" if pipelining
                                                     else b"") + b"250 8BITMIME\r\n")
            elif verb in (b"MAIL", b"RCPT"):
                code = rcpt_code if verb == b"RCPT" else 250
                reply = f"{code} {'2.1.5 ok' if code == 250 else '5.1.1 no such user'}\r\n"
                held.append(reply.encode())
            elif verb == b"DATA":
                ok = rcpt_code == 250
                held.append(b"354 go ahead\r\n" if ok else b"554 5.5.1 no valid recipients\r\n")
                in_data = ok
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"250 ok\r\n")
            if held and (not withhold or verb == b"DATA"):
                writer.write(b"".join(held))
                held.clear()
            await writer.drain()

    return handler, received


def _batch(handler, stdin: str) -> tuple[ExitStatus, str]:  # type: ignore[no-untyped-def]
    out = io.StringIO()

    async def run() -> ExitStatus:
        async with serve(handler) as srv:
            options = ConnectOptions(host=srv.host, port=srv.port, ehlo_name="batch.test",
                                     reply_timeout=10)
            core = ShellCore(options, Renderer(out, echo=True, arrows=True))
            return await run_batch(core, io.StringIO(stdin))

    return asyncio.run(run()), out.getvalue()


def test_a_group_goes_out_in_one_write_and_each_reply_is_shown_beside_its_command() -> None:
    handler, received = strict_server()
    stdin = ("EHLO me\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\nDATA\n"
             + MESSAGE + "QUIT\n")
    status, output = _batch(handler, stdin)
    assert status is ExitStatus.OK, output
    lines = output.splitlines()
    start = lines.index("> MAIL FROM:<a@example.org>")
    assert lines[start:start + 6] == [
        "> MAIL FROM:<a@example.org>", "< 250 2.1.5 ok",
        "> RCPT TO:<b@example.org>", "< 250 2.1.5 ok",
        "> DATA", "< 354 go ahead",
    ]
    message = [line for line in lines[start + 6:] if not line.startswith("* ")]
    assert message[:6] == [
        "> Subject: pipelined", "> ", "> .hidden line", "> body", "> .", "< 250 2.0.0 queued",
    ]
    # the message went out dot-stuffed and intact
    body = b"".join(received[received.index(b"DATA\r\n") + 1:])
    assert body.startswith(b"Subject: pipelined\r\n\r\n..hidden line\r\nbody\r\n.\r\n")


def test_a_refused_recipient_gives_the_same_exit_status_as_one_by_one() -> None:
    stdin = "EHLO me\nMAIL FROM:<a@example.org>\nRCPT TO:<nobody@example.org>\nDATA\n"
    handler, _ = strict_server(rcpt_code=550)
    pipelined, output = _batch(handler, stdin)
    plain_handler, _ = strict_server(rcpt_code=550, pipelining=False, withhold=False)
    one_by_one, plain_output = _batch(plain_handler, stdin)
    assert pipelined is one_by_one is ExitStatus.RCPT  # the first failed step, not DATA's refusal
    assert "< 550 5.1.1 no such user" in output
    assert output.splitlines()[-5:] == plain_output.splitlines()[-5:]


def test_without_pipelining_each_command_waits_for_its_reply() -> None:
    handler, received = strict_server(pipelining=False, withhold=False)
    status, output = _batch(handler, "EHLO me\nMAIL FROM:<a@example.org>\nRSET\nQUIT\n")
    assert status is ExitStatus.OK
    assert "> MAIL FROM:<a@example.org>\n< 250 2.1.5 ok\n> RSET\n< 250 ok" in output
    assert received[1:3] == [b"MAIL FROM:<a@example.org>\r\n", b"RSET\r\n"]


def test_meta_commands_and_auth_are_not_pipelined() -> None:
    handler, _ = strict_server(withhold=False)
    status, output = _batch(handler, "EHLO me\nMAIL FROM:<a@example.org>\n/help\nRSET\nQUIT\n")
    assert status is ExitStatus.OK
    assert output.index("< 250 2.1.5 ok") < output.index("Shell commands start with")


def test_interleave_puts_each_reply_after_its_command() -> None:
    def sent(text: str) -> Sent:
        return Sent(out=Outgoing(text), data=text.encode() + b"\r\n", tls=False)

    def reply(code: int) -> Reply:
        return Reply(code=code, lines=(f"{code} x",))

    notice = Notice(kind="note", message="about RCPT")
    closed = Closed()
    events = [sent("MAIL"), sent("RCPT"), notice, sent("DATA"), reply(250), reply(250), closed]
    assert interleave(events) == [
        sent("MAIL"), reply(250), sent("RCPT"), notice, reply(250), sent("DATA"), closed,
    ]
    assert interleave([]) == []


def test_line_reader_looks_ahead_on_a_pipe_without_waiting() -> None:
    read_fd, write_fd = os.pipe()
    stream = open(read_fd, encoding="utf-8")
    try:
        reader = LineReader(stream)

        async def run() -> list[str | None]:
            got: list[str | None] = []
            os.write(write_fd, b"MAIL FROM:<a@x>\r\nRC")
            got.append(await reader.line())
            got.append(reader.ready_line())  # half a line: not ready, and no waiting
            os.write(write_fd, b"PT TO:<\xff@x>\n")
            got.append(reader.ready_line())
            reader.push_back("again")
            got.append(await reader.line())
            os.write(write_fd, b"no newline at the end")
            os.close(write_fd)
            got.append(await reader.line())
            got.append(await reader.line())
            return got

        assert asyncio.run(run()) == [
            "MAIL FROM:<a@x>", None, "RCPT TO:<\udcff@x>", "again", "no newline at the end",
            None,
        ]
    finally:
        stream.close()


def test_a_script_that_waits_for_each_reply_is_served_line_by_line() -> None:
    """Look-ahead never blocks: a co-process writing one line per reply is not starved."""
    handler, _ = strict_server(withhold=False)
    with serve_in_thread(handler) as srv:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smtpshell", "--timeout", "10", srv.host, str(srv.port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            seen = b""
            for line, answer in [("EHLO me", b"< 250 8BITMIME"),
                                 ("MAIL FROM:<a@example.org>", b"< 250 2.1.5 ok"),
                                 ("RCPT TO:<b@example.org>",
                                  b"> RCPT TO:<b@example.org>\n< 250 2.1.5 ok")]:
                proc.stdin.write(line.encode() + b"\n")
                proc.stdin.flush()
                seen = _read_until(proc.stdout, seen, answer)
            proc.stdin.write(b"QUIT\n")
            proc.stdin.close()
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            with contextlib.suppress(OSError):
                proc.stdin.close()
            proc.stdout.close()


def _read_until(stream: io.BufferedReader | object, seen: bytes, wanted: bytes) -> bytes:
    fd = stream.fileno()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {wanted!r}; got:\n{seen.decode()}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"the shell ended before {wanted!r}:\n{seen.decode()}"
            seen += chunk
    return seen


def test_batch_mode_imports_neither_prompt_toolkit_nor_pygments(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Start-up: a batch run (STARTTLS and all) loads no UI toolkit and no highlighter,
    and a certificate that verified is reported without ``cryptography``."""
    script = (
        "import sys\n"
        "from smtpshell.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "loaded = sorted(m for m in sys.modules\n"
        "                if m.split('.')[0] in ('prompt_toolkit', 'pygments', 'cryptography'))\n"
        "print('STATUS', int(status), 'LOADED', loaded, file=sys.stderr)\n"
    )
    with open(os.devnull, "rb") as devnull:
        done = subprocess.run(
            [sys.executable, "-c", script, "--starttls", "--cafile", str(sandbox.ca_file),
             sandbox.host, str(sandbox.port)],
            stdin=devnull, capture_output=True, timeout=60, cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1"},
        )
    report = done.stderr.decode()
    assert "STATUS 0 LOADED []" in report, report + done.stdout.decode()
    assert "TLS established (STARTTLS)" in done.stdout.decode()
    assert "SHA-256" in done.stdout.decode() and "verified against" in done.stdout.decode()
