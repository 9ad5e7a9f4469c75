"""The real REPL driven through prompt_toolkit's pipe input, against the sandbox."""

from __future__ import annotations

import asyncio
import io
import os
import stat
from pathlib import Path

from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from smtpshell.protocol.events import Reply
from smtpshell.sandbox import Sandbox
from smtpshell.session import ConnectOptions
from smtpshell.tls import TlsOptions
from smtpshell.ui.app import run_repl
from smtpshell.ui.core import ShellCore
from smtpshell.ui.render import Renderer

SESSION = [
    "EHLO me",
    "STARTTLS",
    "EHLO me",
    "MAIL FROM:<a@example.org>",
    "RCPT TO:<b@example.org>",
    "DATA",
    "Subject: from the REPL",
    "",
    ".starts with a dot",
    "/status is sent as text in DATA",
    ".",
    "/status",
    "QUIT",
]


def drive(sb: Sandbox, lines: list[str], history: Path | None) -> tuple[str, ShellCore]:
    out = io.StringIO()

    async def run() -> ShellCore:
        with create_pipe_input() as pipe:
            core = ShellCore(
                ConnectOptions(
                    host="127.0.0.1",
                    port=sb.port,
                    tls=TlsOptions(cafile=str(sb.ca_file)),
                    ehlo_name="repl.test",
                    reply_timeout=10,
                ),
                Renderer(out),
            )
            task = asyncio.create_task(
                run_repl(core, history_file=history, input=pipe, output=DummyOutput())
            )
            # Typed ahead, all at once: the prompt takes one line at a time, in order,
            # and Ctrl-D (at an empty prompt) ends the shell once every line is handled.
            pipe.send_text("".join(line + "\r" for line in lines) + "\x04")
            await asyncio.wait_for(task, 30)
            return core

    core = asyncio.run(run())
    return out.getvalue(), core


def test_repl_full_session_with_starttls(sandbox: Sandbox, tmp_path: Path) -> None:
    history = tmp_path / "history"
    output, _core = drive(sandbox, SESSION, history)
    assert "220 Ready to start TLS" in output
    assert "TLS established (STARTTLS)" in output
    assert "250-AUTH" in output  # only offered after TLS
    assert "dot-stuffing" in output
    assert "stage       idle" in output
    assert "221" in output
    [message] = sandbox.messages()
    body = message.replace(b"\r\n", b"\n")
    assert b"\n.starts with a dot\n" in body
    assert b"/status is sent as text in DATA" in body
    assert stat.S_IMODE(os.stat(history).st_mode) == 0o600
    assert "MAIL FROM:<a@example.org>" in history.read_text()


def test_repl_unknown_meta_command_and_reconnect(sandbox: Sandbox) -> None:
    output, _core = drive(sandbox, ["/nonsense", "QUIT", "/reconnect", "NOOP", "/quit"], None)
    assert "unknown command /nonsense" in output
    assert output.count("220 sandbox.smtpshell.test") == 2
    assert "250" in output


def test_a_failing_highlighter_falls_back_to_plain_colours() -> None:
    """A reply is never lost to the highlighter: on an error the line is shown in the
    reply-class colour, with one warning, and highlighting stays off."""
    calls = []

    def broken(line: str) -> str:
        calls.append(line)
        raise ImportError("cannot import name 'Terminal256Formatter'")

    out = io.StringIO()
    renderer = Renderer(out, colour=True, highlight=broken)
    renderer(Reply(code=220, lines=("220 first",)))
    renderer(Reply(code=250, lines=("250-second", "250 third")))
    text = out.getvalue()
    assert "\x1b[32m220 first\x1b[0m" in text
    assert "\x1b[32m250-second\x1b[0m" in text and "\x1b[32m250 third\x1b[0m" in text
    assert text.count("highlighting is off: ImportError: cannot import name") == 1
    assert calls == ["220 first"]
