"""The REPL's exit status when the user leaves in the middle of a message (real REPL
through prompt_toolkit's pipe input, against the sandbox)."""

from __future__ import annotations

import asyncio
import io

from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from smtpshell.sandbox import Sandbox
from smtpshell.session import ConnectOptions
from smtpshell.status import ExitStatus
from smtpshell.tls import TlsOptions
from smtpshell.ui.app import run_repl
from smtpshell.ui.core import ShellCore
from smtpshell.ui.render import Renderer

TRANSACTION = ["EHLO me", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA",
               "Subject: never ended", "", "body"]


def drive(sb: Sandbox, typed: str) -> tuple[ExitStatus, str]:
    out = io.StringIO()

    async def run() -> ExitStatus:
        with create_pipe_input() as pipe:
            core = ShellCore(
                ConnectOptions(host="127.0.0.1", port=sb.port,
                               tls=TlsOptions(cafile=str(sb.ca_file)),
                               ehlo_name="repl.test", reply_timeout=10),
                Renderer(out),
            )
            task = asyncio.create_task(
                run_repl(core, history_file=None, input=pipe, output=DummyOutput()))
            pipe.send_text(typed)
            return await asyncio.wait_for(task, 30)

    return asyncio.run(run()), out.getvalue()


def test_ctrl_d_inside_data_is_the_data_stage_failure(sandbox: Sandbox) -> None:
    status, output = drive(sandbox, "".join(line + "\r" for line in TRANSACTION) + "\x04")
    assert status == ExitStatus.DATA, output
    assert "left inside DATA: the message was not sent" in output
    assert sandbox.messages() == []


def test_quit_typed_inside_data_is_the_data_stage_failure(sandbox: Sandbox) -> None:
    status, output = drive(sandbox, "".join(line + "\r" for line in [*TRANSACTION, "/!quit"]))
    assert status == ExitStatus.DATA, output
    assert "the message was not sent" in output
    assert sandbox.messages() == []


def test_a_finished_message_then_ctrl_d_is_ok(sandbox: Sandbox) -> None:
    typed = "".join(line + "\r" for line in [*TRANSACTION, ".", "QUIT"]) + "\x04"
    status, output = drive(sandbox, typed)
    assert status == ExitStatus.OK, output
    assert "not sent" not in output
    assert len(sandbox.messages()) == 1
