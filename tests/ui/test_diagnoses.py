"""Diagnoses from the session's state, against the real sandbox (aiosmtpd + trustme).

Each case once printed a reason the state contradicted: "already authenticated, or AUTH
inside a mail transaction" for an AUTH that was simply not advertised after STARTTLS,
"try again later" for STARTTLS inside TLS.
"""

from __future__ import annotations

import asyncio
import io

from smtpshell.sandbox import Sandbox
from smtpshell.session import ConnectOptions
from smtpshell.tls import TlsOptions
from smtpshell.ui.core import ShellCore
from smtpshell.ui.render import Renderer
from tests.hostile.servers import serve_in_thread

PLAIN_AUTH = "AUTH PLAIN AGFsaWNlAHMzY3JldA=="  # \0alice\0s3cret, refused before it is read


def run_lines(sb: Sandbox, lines: list[str], *, implicit: bool = False) -> str:
    out = io.StringIO()

    async def run() -> None:
        port = sb.tls_port if implicit else sb.port
        assert port is not None
        core = ShellCore(
            ConnectOptions(host="127.0.0.1", port=port, tls=TlsOptions(cafile=str(sb.ca_file)),
                           tls_mode="implicit" if implicit else "plain", ehlo_name="x",
                           reply_timeout=10),
            Renderer(out),
        )  # fmt: skip
        assert await core.connect() == 0
        for line in lines:
            await core.handle_line(line)
        await core.close()

    asyncio.run(run())
    return out.getvalue()


def test_auth_after_starttls_without_a_second_ehlo(sandbox: Sandbox) -> None:
    out = run_lines(sandbox, ["EHLO x", "STARTTLS", PLAIN_AUTH])
    assert "503 Error: send EHLO first" in out
    assert ("x AUTH was not advertised in this session: no EHLO since STARTTLS: what the "
            "server advertised before TLS no longer counts, so nothing is advertised now; "
            "send EHLO again (RFC 3207 §4.2)") in out
    assert "already authenticated" not in out and "mail transaction" not in out


def test_auth_before_starttls_is_not_advertised_in_clear(sandbox: Sandbox) -> None:
    out = run_lines(sandbox, ["EHLO x", PLAIN_AUTH])
    assert "538 5.7.11" in out
    assert ("x AUTH was not advertised on this plain connection (the EHLO reply offers "
            "STARTTLS, not AUTH): many servers offer AUTH only over TLS; send STARTTLS, then "
            "EHLO again, then AUTH") in out


def test_auth_before_any_ehlo(sandbox: Sandbox) -> None:
    out = run_lines(sandbox, [PLAIN_AUTH])
    assert ("x AUTH was not advertised in this session: no EHLO yet, and AUTH is an "
            "extension the EHLO reply announces (RFC 4954 §3); send EHLO first") in out


def test_starttls_inside_tls(sandbox: Sandbox) -> None:
    out = run_lines(sandbox, ["EHLO x", "STARTTLS"], implicit=True)
    assert "454 TLS not available" in out
    assert ("  hint: this connection is already encrypted: STARTTLS is not allowed once TLS "
            "is active (RFC 3207 §4)") in out
    assert "try again later" not in out


def test_a_command_after_starttls_without_ehlo(sandbox: Sandbox) -> None:
    out = run_lines(sandbox, ["EHLO x", "STARTTLS", "MAIL FROM:<a@example.org>"])
    assert "503 Error: send HELO first" in out
    assert "  hint: no EHLO since STARTTLS" in out
    assert "the usual order is" not in out


def test_the_code_alone_still_hints_when_the_state_says_nothing(sandbox: Sandbox) -> None:
    out = run_lines(sandbox, ["EHLO x", "RCPT TO:<b@example.org>"])
    assert "503" in out
    assert ("  hint: bad sequence of commands: the usual order is EHLO, MAIL FROM, RCPT TO, "
            "DATA") in out


def test_auth_with_a_misspelt_mechanism_sends_nothing(sandbox: Sandbox) -> None:
    out = run_lines(sandbox, ["EHLO x", "/auth plian", "/auth SCRAM-SHA-256 alice"])
    assert ("x unknown mechanism 'plian' (did you mean PLAIN?); known: PLAIN, LOGIN, "
            "CRAM-MD5, XOAUTH2; to log in as a user named 'plian', name the mechanism first: "
            "/auth PLAIN plian") in out
    assert "x SCRAM-SHA-256: a SASL mechanism this shell does not speak" in out
    assert "AUTH " not in out and "User name" not in out



async def refuses_recipients(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RCPT 550, DATA 503 (as a server answers DATA when no recipient was accepted)."""
    writer.write(b"220 refusing\r\n")
    while line := await reader.readline():
        verb = line.split(b" ", 1)[0].strip().upper()
        if verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            break
        answer = {b"EHLO": b"250-refusing\r\n250 8BITMIME", b"RCPT": b"550 5.1.1 no such user",
                  b"DATA": b"503 5.5.1 Error: need RCPT command"}.get(verb, b"250 OK")
        writer.write(answer + b"\r\n")
        await writer.drain()


def run_against(port: int, lines: list[str]) -> str:
    out = io.StringIO()

    async def run() -> None:
        core = ShellCore(ConnectOptions(host="127.0.0.1", port=port, ehlo_name="x",
                                        reply_timeout=10), Renderer(out))
        assert await core.connect() == 0
        for line in lines:
            await core.handle_line(line)
        await core.close()

    asyncio.run(run())
    return out.getvalue()


def test_data_after_every_recipient_was_refused() -> None:
    with serve_in_thread(refuses_recipients) as srv:
        out = run_against(srv.port, ["EHLO x", "MAIL FROM:<a@example.org>",
                                     "RCPT TO:<b@example.org>", "RCPT TO:<c@example.org>",
                                     "DATA"])
    assert "503 5.5.1 Error: need RCPT command" in out, out
    assert ("  hint: no recipient was accepted in this transaction (a refused RCPT TO does not "
            "count): DATA needs at least one RCPT TO answered 250; add one, or RSET "
            "(RFC 5321 §3.3)") in out, out
    assert "the usual order is" not in out


def test_data_before_mail(sandbox: Sandbox) -> None:
    out = run_lines(sandbox, ["EHLO x", "DATA"])
    assert "503 Error: need RCPT command" in out
    assert ("  hint: no transaction is open: DATA needs an accepted MAIL FROM and at least one "
            "accepted RCPT TO first (RFC 5321 §3.3)") in out
    assert "the usual order is" not in out


def test_data_after_an_accepted_recipient_is_not_explained_away(sandbox: Sandbox) -> None:
    out = run_lines(sandbox, ["EHLO x", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>",
                              "DATA", "Subject: t", "", "hi", "."])
    assert "354" in out and "no recipient was accepted" not in out


def test_a_misspelt_mechanism_before_a_user_suggests_that_user(sandbox: Sandbox) -> None:
    out = run_lines(sandbox, ["EHLO x", "/auth plian demo", "/auth cram-md demo"])
    assert ("x unknown mechanism 'plian' (did you mean PLAIN?); known: PLAIN, LOGIN, "
            "CRAM-MD5, XOAUTH2; /auth PLAIN demo") in out, out
    assert "x unknown mechanism 'cram-md' (did you mean CRAM-MD5?)" in out
    assert "/auth CRAM-MD5 demo" in out
    assert "/auth PLAIN plian" not in out and "AUTH " not in out and "Password" not in out
