"""Issue 13: where a credential can slip out between the lines.

A blank before a secret helper (`` /b64 pw``), the answers lined up for an AUTH exchange
the server ended, a whole LOGIN exchange in one /raw, /auth after a refused STARTTLS,
the order of the clear-text warning.  Each test runs the shell against a real server on
127.0.0.1 and reads what the SERVER received, the transcript and the screen.
"""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path

import pytest

from smtpshell.session import ConnectOptions
from smtpshell.ui.batch import run_batch
from smtpshell.ui.commands.record import start_recording
from smtpshell.ui.core import Settings, ShellCore
from smtpshell.ui.render import Renderer
from tests.hostile.servers import Hostile, serve

PASSWORD = "s3cret!"
PLAIN = base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode()  # AGFsaWNlAHMzY3JldCE=
USER64 = base64.b64encode(b"alice").decode()  # YWxpY2U=
PASS64 = base64.b64encode(PASSWORD.encode()).decode()  # czNjcmV0IQ==
FORMS = (PASSWORD, PASS64, PLAIN)


def server(*, login_user: bytes = b"334 UGFzc3dvcmQ6", login_ir: bytes = b"535 5.7.8 no",
           login_pass: bytes = b"535 5.7.8 no", starttls: bytes = b"454 4.7.0 not now",
           ehlo: bytes = b"250-srv\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN"):
    """A server that answers each line as a real one would, one exchange step at a time:
    ``AUTH LOGIN`` 334, the user name ``login_user``, the password ``login_pass``;
    ``AUTH LOGIN <user>`` ``login_ir``; ``AUTH PLAIN <blob>`` 235; other lines 250."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 srv ESMTP\r\n")
        step = ""
        while line := await reader.readline():
            srv.received.extend(line)
            words = line.split()
            verb = (words or [b""])[0].upper()
            if step == "user":
                reply, step = login_user, "pass" if login_user.startswith(b"334") else ""
            elif step == "pass":
                reply, step = login_pass, ""
            elif verb == b"EHLO":
                reply = ehlo
            elif verb == b"STARTTLS":
                reply = starttls
            elif verb == b"AUTH" and len(words) == 2 and words[1].upper() == b"LOGIN":
                reply, step = b"334 VXNlcm5hbWU6", "user"
            elif verb == b"AUTH" and words[1:2] == [b"LOGIN"]:
                reply, step = login_ir, "pass" if login_ir.startswith(b"334") else ""
            elif verb == b"AUTH":
                reply = b"235 2.7.0 ok"
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                return
            elif verb in (b"NOOP", b"MAIL", b"RCPT", b"RSET"):
                reply = b"250 ok"
            else:
                reply = b"500 5.5.2 what?"
            writer.write(reply + b"\r\n")
            await writer.drain()

    srv = Hostile("", 0, bytearray())
    return handler, srv


def batch(script: list[str], tmp_path: Path, **kwargs: object) -> tuple[str, str, bytes]:
    """Run ``script`` in batch mode, recording: (screen, transcript, bytes received)."""
    settings = {k: v for k, v in kwargs.items() if k in ("allow_plain_auth", "user",
                                                         "password_env", "environ")}
    handler, box = server(**{k: v for k, v in kwargs.items() if k not in settings})  # type: ignore[arg-type]
    record = tmp_path / "t.smtp"

    async def run() -> str:
        out = io.StringIO()
        async with serve(handler) as srv:
            options = ConnectOptions(host=srv.host, port=srv.port, ehlo_name="c",
                                     reply_timeout=10)
            core = ShellCore(options, Renderer(out, echo=True),
                             settings=Settings(**settings))  # type: ignore[arg-type]
            assert start_recording(core, str(record))
            await run_batch(core, io.StringIO("\n".join(script) + "\n"))
        return out.getvalue()

    screen = asyncio.run(run())
    return screen, record.read_text(), bytes(box.received)


def no_secret(*texts: str | bytes) -> None:
    for text in texts:
        for form in FORMS:
            probe = form.encode() if isinstance(text, bytes) else form
            assert probe not in text, (form, text)  # type: ignore[operator]


# ---- 1. blanks before a secret helper ---------------------------------------------


@pytest.mark.parametrize("line", [f" /b64  {PASSWORD}", f" /unb64 {PASS64}",
                                  rf" /raw AUTH PLAIN {PLAIN}\r\n", f"\t/b64 {PASSWORD}",
                                  f"/b64\t{PASSWORD}"])
def test_a_secret_helper_after_blanks_is_the_helper_never_sent(line: str,
                                                               tmp_path: Path) -> None:
    screen, transcript, received = batch(["EHLO c", line, "QUIT"], tmp_path,
                                         allow_plain_auth=True)
    assert b"/b64" not in received and b"/unb64" not in received and b"/raw" not in received
    if "/raw" in line:
        assert PLAIN.encode() in received  # /raw ran: its payload went out, as asked
    else:
        assert received == b"EHLO c\r\nQUIT\r\n"
        assert "unknown command" not in screen
    assert "/b64" not in transcript and "/unb64" not in transcript
    no_secret(transcript)


# ---- 2. answers lined up for an exchange the server ended -------------------------


@pytest.mark.parametrize("how", ["initial-response", "answer"])
def test_a_password_after_a_refused_user_name_is_not_sent(how: str, tmp_path: Path) -> None:
    lines = [f"AUTH LOGIN {USER64}"] if how == "initial-response" else ["AUTH LOGIN", USER64]
    screen, transcript, received = batch(
        ["EHLO c", *lines, PASS64, "NOOP", "QUIT"], tmp_path,
        login_ir=b"535 5.7.8 no such user", login_user=b"535 5.7.8 no such user")
    assert USER64.encode() in received  # the user name went out, as typed
    no_secret(received, transcript, screen)
    assert "not sent: it answers an AUTH exchange the server ended" in screen
    assert received.endswith(b"NOOP\r\nQUIT\r\n")  # the session goes on
    assert "-> NOOP" in transcript


# ---- 3. a whole LOGIN exchange in one /raw -----------------------------------------


@pytest.mark.parametrize("refused", ["password", "user", "none"])
def test_raw_login_exchange_follows_each_reply(refused: str, tmp_path: Path) -> None:
    raw = rf"/raw AUTH LOGIN\r\n{USER64}\r\n{PASS64}\r\n"
    screen, transcript, received = batch(
        ["EHLO c", raw, "NOOP", "/status", "QUIT"], tmp_path,
        login_user=b"535 5.7.8 no such user" if refused == "user" else b"334 UGFzc3dvcmQ6",
        login_pass=b"235 2.7.0 ok" if refused == "none" else b"535 5.7.8 no")
    assert received.startswith(b"EHLO c\r\nAUTH LOGIN\r\n" + USER64.encode() + b"\r\n")
    assert received.endswith(b"NOOP\r\nQUIT\r\n")  # NOOP went out as NOOP
    assert "\nNOOP\n250 ok\n" in screen and "-> NOOP\n" in transcript
    assert "unexpected reply" not in screen
    no_secret(transcript, screen)
    auth_line = next(line for line in screen.splitlines() if line.strip().startswith("auth "))
    if refused == "user":
        assert PASS64.encode() not in received  # lined up for an exchange that was over
        assert "not sent: 1 line(s) of the /raw payload answer an AUTH exchange" in screen
    else:
        assert PASS64.encode() in received  # answered the server's 334, as written
        assert "{{secret:login password=$SMTPSHELL_PASSWORD}}" in transcript
    if refused == "none":
        assert "yes" in auth_line
    else:
        assert "no" in auth_line and "authenticated" not in screen


# ---- 5. the clear-text warning comes before the line ------------------------------


@pytest.mark.parametrize("line", [f"AUTH PLAIN {PLAIN}", rf"/raw AUTH PLAIN {PLAIN}\r\n"])
def test_the_auth_in_clear_warning_comes_before_the_line(line: str, tmp_path: Path) -> None:
    screen, transcript, received = batch(["EHLO c", line, "QUIT"], tmp_path)
    assert PLAIN.encode() in received  # a typed line goes out as typed
    warning = screen.index("! AUTH on a connection that is not encrypted")
    assert warning < screen.index("AUTH PLAIN <credential redacted")
    assert transcript.index("== warning") < transcript.index("-> AUTH PLAIN {{secret:")
    no_secret(transcript, screen)


# ---- 4 and 6. /auth on a plain connection ------------------------------------------


class Human:
    """The person at the keyboard: says yes, knows the password; the questions are shown
    on the same screen as everything else."""

    def __init__(self, screen: io.StringIO) -> None:
        self.screen = screen
        self.questions: list[str] = []

    async def text(self, label: str) -> str | None:
        return "alice"

    async def secret(self, label: str) -> str | None:
        self.questions.append(label)
        return PASSWORD

    async def confirm(self, question: str) -> bool:
        self.questions.append(question)
        self.screen.write(f"{question} [y/N] y\n")
        return True


def interactive(lines: list[str], **kwargs: object) -> tuple[str, bytes, Human]:
    settings = {k: v for k, v in kwargs.items() if k == "allow_plain_auth"}
    handler, box = server(**{k: v for k, v in kwargs.items() if k not in settings})  # type: ignore[arg-type]
    out = io.StringIO()
    human = Human(out)

    async def run() -> None:
        async with serve(handler) as srv:
            options = ConnectOptions(host=srv.host, port=srv.port, ehlo_name="c",
                                     reply_timeout=10)
            core = ShellCore(options, Renderer(out, echo=True), prompter=human,
                             settings=Settings(**settings), interactive=True)  # type: ignore[arg-type]
            await core.connect()
            for line in lines:
                await core.handle_line(line)
            await core.close()

    asyncio.run(run())
    return out.getvalue(), bytes(box.received), human


@pytest.mark.parametrize("in_clear", [False, True])
def test_auth_command_after_a_refused_starttls_is_refused_like_typed_auth(
        in_clear: bool) -> None:
    screen, received, human = interactive(["EHLO c", "STARTTLS", "/auth plain alice", "NOOP"],
                                          allow_plain_auth=in_clear)
    if in_clear:  # --auth-in-clear: the user said so
        assert PLAIN.encode() in received
        return
    assert b"AUTH" not in received and b"NOOP" in received
    assert human.questions == []  # no y/N that a reflex "y" turns into a password in clear
    assert "not sending AUTH in clear: the server refused STARTTLS on this connection" in screen
    no_secret(received, screen)


def test_auth_command_says_why_before_asking_when_auth_is_not_advertised() -> None:
    screen, received, _ = interactive(["/auth plain alice"],
                                      ehlo=b"250-srv\r\n250 STARTTLS")
    assert received.startswith(b"EHLO c\r\n")  # asked the server first, before any question
    reason = screen.index("AUTH was not advertised on this plain connection")
    assert "send STARTTLS" in screen
    assert reason < screen.index("Authenticate anyway? [y/N]")


def test_a_line_typed_while_the_question_is_shown_is_not_taken_for_no() -> None:
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from smtpshell.ui.terminal import PromptSecrets

    async def run() -> list[bool]:
        answers = []
        with create_pipe_input() as pipe:
            prompter = PromptSecrets(input=pipe, output=DummyOutput())
            pipe.send_text("NOOP\ry\r")  # typed ahead, then the answer
            answers.append(await prompter.confirm("Authenticate anyway?"))
            pipe.send_text("QUIT\rno\r")
            answers.append(await prompter.confirm("Authenticate anyway?"))
        return answers

    assert asyncio.run(run()) == [True, False]
