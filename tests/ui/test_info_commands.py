"""/explain and /set, and the automatic hints they control."""

from __future__ import annotations

import asyncio
import io

from smtpshell.sandbox import Sandbox
from smtpshell.session import ConnectOptions
from smtpshell.tls import TlsOptions
from smtpshell.ui.core import ShellCore
from smtpshell.ui.render import Renderer


def run_lines(sb: Sandbox, lines: list[str]) -> str:
    out = io.StringIO()

    async def run() -> None:
        core = ShellCore(
            ConnectOptions(host="127.0.0.1", port=sb.port, tls=TlsOptions(cafile=str(sb.ca_file)),
                           ehlo_name="x", reply_timeout=10),
            Renderer(out),
        )
        await core.connect()
        for line in lines:
            await core.handle_line(line)
        await core.close()

    asyncio.run(run())
    return out.getvalue()


def test_explain_codes_keywords_and_last_reply(sandbox: Sandbox) -> None:
    out = run_lines(sandbox, ["/explain 5.7.1", "/explain pipelining", "/explain 538",
                              "/explain nonsense-word", "EHLO x", "/explain"])
    assert "RFC 3463" in out
    assert "RFC 2920" in out
    assert "RFC 4954" in out
    assert "nothing known about 'nonsense-word'" in out
    assert out.count("RFC 5321") >= 1  # /explain alone explains the last reply (250)


def test_hints_can_be_switched_off(sandbox: Sandbox) -> None:
    out = run_lines(sandbox, ["EHLO x", "RCPT TO:<b@example.org>", "/set hints off",
                              "RCPT TO:<b@example.org>", "/set"])
    assert out.count("hint:") == 1
    assert "hints          off" in out


def test_require_tls_refuses_mail_in_clear(sandbox: Sandbox) -> None:
    out = run_lines(sandbox, ["/set require-tls on", "EHLO x", "MAIL FROM:<a@example.org>",
                              "STARTTLS", "EHLO x", "MAIL FROM:<a@example.org>"])
    assert "require-TLS is on: not sending MAIL" in out
    assert out.count("250 OK") == 1  # only the MAIL inside TLS went out
