"""AUTH for the user: every mechanism against real servers, the teaching view, no leaks."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from smtpshell.sandbox import Sandbox
from smtpshell.session import ConnectOptions
from smtpshell.status import ExitStatus
from smtpshell.tls import TlsOptions
from smtpshell.ui.app import run_repl
from smtpshell.ui.core import Settings, ShellCore
from smtpshell.ui.render import Renderer
from smtpshell.ui.terminal import PromptSecrets
from tests.hostile.servers import serve

PASSWORD = "demo-password"


def secret_forms(user: str, password: str) -> list[str]:
    def b(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return [
        password,
        b(password.encode()),
        b(f"\0{user}\0{password}".encode()),
        b(f"user={user}\x01auth=Bearer {password}\x01\x01".encode()),
    ]


def sandbox_core(sb: Sandbox, out: io.StringIO, **settings: object) -> ShellCore:
    options = ConnectOptions(host="127.0.0.1", port=sb.port, tls_mode="starttls",
                             tls=TlsOptions(cafile=str(sb.ca_file)), ehlo_name="auth.test",
                             reply_timeout=10)
    return ShellCore(options, Renderer(out), settings=Settings(
        environ={"PW": PASSWORD, "BAD": "wrong-password"}, **settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("mech", ["plain", "login", "cram-md5", "auto"])
def test_each_mechanism_succeeds_and_fails_against_the_sandbox(
    sandbox: Sandbox, mech: str
) -> None:
    async def attempt(var: str) -> tuple[ExitStatus, str, ShellCore]:
        out = io.StringIO()
        core = sandbox_core(sandbox, out, user="demo", password_env=var, auth=mech)
        status = await core.connect()
        await core.close()
        return status, out.getvalue(), core

    status, out, core = asyncio.run(attempt("PW"))
    assert status is ExitStatus.OK, out
    assert "authenticated as demo" in out
    assert core.session.auth_user == "demo"
    for form in secret_forms("demo", PASSWORD):
        assert form not in out
    status, out, _ = asyncio.run(attempt("BAD"))
    assert status is ExitStatus.AUTH
    assert "535" in out and "credentials rejected" in out


def test_batch_missing_password_fails_at_once_with_auth_status(sandbox: Sandbox) -> None:
    async def run() -> tuple[ExitStatus, str]:
        out = io.StringIO()
        core = sandbox_core(sandbox, out, user="demo", auth="plain")
        status = await core.connect()
        await core.close()
        return status, out.getvalue()

    status, out = asyncio.run(run())
    assert status is ExitStatus.AUTH
    assert "batch mode never prompts" in out


def test_auth_in_clear_needs_permission_in_batch(sandbox: Sandbox) -> None:
    async def run() -> str:
        out = io.StringIO()
        options = ConnectOptions(host="127.0.0.1", port=sandbox.port, ehlo_name="x",
                                 reply_timeout=10)
        core = ShellCore(options, Renderer(out), settings=Settings(
            user="demo", password_env="PW", environ={"PW": PASSWORD}))
        await core.connect()
        await core.handle_line("/auth plain")
        await core.close()
        return out.getvalue()

    assert "not confirmed" in asyncio.run(run())


async def xoauth2_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts token 'good'; for others sends Google's JSON error and waits for the empty line."""
    writer.write(b"220 oauth ESMTP\r\n")
    while line := await reader.readline():
        words = line.decode().split()
        verb = words[0].upper() if words else ""
        if verb == "EHLO":
            writer.write(b"250-oauth\r\n250 AUTH XOAUTH2\r\n")
        elif verb == "AUTH":
            blob = base64.b64decode(words[2])
            if blob == b"user=u@example.org\x01auth=Bearer good\x01\x01":
                writer.write(b"235 2.7.0 Accepted\r\n")
            else:
                err = base64.b64encode(b'{"status":"401","schemes":"Bearer"}')
                writer.write(b"334 " + err + b"\r\n")
                await writer.drain()
                empty = await reader.readline()
                assert empty == b"\r\n"
                writer.write(b"535 5.7.8 Username and Password not accepted\r\n")
        elif verb == "QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"250 ok\r\n")
        await writer.drain()


@pytest.mark.parametrize(("token", "ok"), [("good", True), ("expired-token", False)])
def test_xoauth2_success_and_error_flow(token: str, ok: bool) -> None:
    async def run() -> tuple[ExitStatus, str]:
        out = io.StringIO()
        async with serve(xoauth2_server) as srv:
            core = ShellCore(
                ConnectOptions(host=srv.host, port=srv.port, ehlo_name="x", reply_timeout=10),
                Renderer(out),
                settings=Settings(user="u@example.org", password_env="TOK", auth="xoauth2",
                                  allow_plain_auth=True, environ={"TOK": token}),
            )
            status = await core.connect()
            await core.close()
        return status, out.getvalue()

    status, out = asyncio.run(run())
    assert (status is ExitStatus.OK) is ok, out
    if not ok:
        assert "JSON error" in out and "(empty line)" in out
        assert "535" in out
    for form in secret_forms("u@example.org", token):
        assert form not in out


def test_typed_auth_lines_are_decoded_masked_and_bad_base64_is_explained(
    sandbox: Sandbox,
) -> None:
    async def run() -> str:
        out = io.StringIO()
        core = sandbox_core(sandbox, out)
        await core.connect()
        plain = base64.b64encode(b"\0demo\0" + PASSWORD.encode()).decode()
        echo_mistake = base64.b64encode(b"\0demo\0" + PASSWORD.encode() + b"\n").decode()
        await core.handle_line(f"AUTH PLAIN {echo_mistake}")
        await core.handle_line("AUTH PLAIN not*base64")
        await core.handle_line(f"AUTH PLAIN {plain}")
        await core.handle_line("/b64 \\0demo\\0pw")
        await core.handle_line("/unb64 AGRlbW8AcHc=")
        await core.handle_line("/unb64 AGRlbW8AcHc")
        await core.close()
        return out.getvalue()

    out = asyncio.run(run())
    assert "newline" in out  # the echo mistake is named
    assert "not valid base64" in out
    assert "<credential redacted: \\0demo\\0 + password>" in out
    assert "****" not in out  # never the base64 (or the text) of a masked credential
    assert "authenticated" in out
    assert "AGRlbW8AcHc=" in out and "\\0demo\\0pw" in out
    assert "padding" in out
    for form in secret_forms("demo", PASSWORD):
        assert form not in out


def test_repl_auth_leaves_no_secret_in_any_file(sandbox: Sandbox, tmp_path: Path) -> None:
    """Typed and driven AUTH for every mechanism; grep everything the shell wrote."""
    history = tmp_path / "history"
    plain = base64.b64encode(b"\0demo\0" + PASSWORD.encode()).decode()
    login_pw = base64.b64encode(PASSWORD.encode()).decode()
    lines = [
        f"AUTH PLAIN {plain}",
        "RSET",
        "/reconnect",
        "AUTH LOGIN",
        base64.b64encode(b"demo").decode(),
        login_pw,
        "/reconnect",
        "/auth login demo",
        PASSWORD,
        "/reconnect",
        "/auth cram-md5 demo",
        PASSWORD,
        "/reconnect",
        "/auth plain demo",
        PASSWORD,
        "QUIT",
    ]
    out = io.StringIO()

    async def run() -> None:
        with create_pipe_input() as pipe:
            core = sandbox_core(sandbox, out)
            core.prompter = PromptSecrets(input=pipe, output=DummyOutput())
            task = asyncio.create_task(
                run_repl(core, history_file=history, input=pipe, output=DummyOutput())
            )
            # Typed ahead, all at once: the prompt (and the password question, which reads
            # the same input) takes one line at a time, in order; Ctrl-D ends the shell.
            pipe.send_text("".join(line + "\r" for line in lines) + "\x04")
            await asyncio.wait_for(task, 60)

    asyncio.run(run())
    text = out.getvalue()
    assert text.count("authenticated as demo") == 3, text
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert history in written
    kept = history.read_text()
    assert "AUTH PLAIN {{secret:plain user=demo password=$SMTPSHELL_PASSWORD}}" in kept
    assert "{{secret:login password=$SMTPSHELL_PASSWORD}}" in kept
    for path in written:
        content = path.read_text(errors="replace")
        for form in secret_forms("demo", PASSWORD):
            assert form not in content, f"{form!r} leaked into {path}"
    for form in secret_forms("demo", PASSWORD):
        assert form not in text


def test_xoauth2_recording_holds_no_token_and_replays(tmp_path: Path) -> None:
    from smtpshell.transcript.replay import ReplayOptions, replay_file
    from smtpshell.ui.commands.record import start_recording

    path = tmp_path / "xoauth2.smtp"
    token = "ya29.secret-token-value"

    async def run() -> tuple[ExitStatus, str, bool]:
        out = io.StringIO()
        async with serve(xoauth2_server) as srv:
            core = ShellCore(
                ConnectOptions(host=srv.host, port=srv.port, ehlo_name="x", reply_timeout=10),
                Renderer(out),
                settings=Settings(user="u@example.org", password_env="TOK", auth="xoauth2",
                                  allow_plain_auth=True, environ={"TOK": "good"}),
            )
            assert start_recording(core, str(path))
            status = await core.connect()
            await core.handle_line("QUIT")
            await core.close()
            result = await replay_file(path, ReplayOptions(server=(srv.host, srv.port),
                                                           env={"TOK": "good"},
                                                           secret_env=frozenset({"TOK"})))
        return status, out.getvalue(), result.passed

    status, out, replayed = asyncio.run(run())
    assert status is ExitStatus.OK, out
    text = path.read_text()
    assert "{{secret:xoauth2 user=u@example.org token=$TOK}}" in text
    for form in secret_forms("u@example.org", "good") + secret_forms("u@example.org", token):
        assert form not in text
    assert replayed
