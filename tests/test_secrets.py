"""Issue 13 §1: credentials never leak, however they are typed, and hand sessions replay.

Real sockets throughout: a small server that refuses STARTTLS, the sandbox (aiosmtpd with
STARTTLS and a real account), the mock server and replay.
"""

from __future__ import annotations

import asyncio
import base64
import io
import smtplib
from pathlib import Path

import pytest

from smtpshell.sandbox import Sandbox
from smtpshell.session import ConnectOptions
from smtpshell.status import ExitStatus
from smtpshell.tls import TlsOptions
from smtpshell.transcript.mock import MockServer
from smtpshell.transcript.replay import ReplayOptions, replay_file
from smtpshell.transcript.syntax import parse
from smtpshell.ui.batch import run_batch
from smtpshell.ui.commands.record import start_recording
from smtpshell.ui.core import Settings, ShellCore
from smtpshell.ui.render import Renderer
from tests.hostile.servers import Hostile, serve

PASSWORD = "s3cret!"
PLAIN = base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---- AUTH after a refused STARTTLS ----------------------------------------------------


async def refuses_starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Offers STARTTLS, then refuses it (a downgrade looks like this); accepts any AUTH."""
    writer.write(b"220 downgrade ESMTP\r\n")
    while line := await reader.readline():
        SEEN.append(line)
        verb = (line.split() or [b""])[0].upper()
        if verb == b"EHLO":
            writer.write(b"250-downgrade\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n")
        elif verb == b"STARTTLS":
            writer.write(b"454 4.7.0 TLS not available due to temporary reason\r\n")
        elif verb == b"AUTH":
            writer.write(b"334 \r\n" if len(line.split()) == 2 else b"235 2.7.0 ok\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"250 ok\r\n" if not line.strip().endswith(b"=") else b"235 2.7.0 ok\r\n")
        await writer.drain()


SEEN: list[bytes] = []


def _core(srv: Hostile, out: io.StringIO, **settings: object) -> ShellCore:
    options = ConnectOptions(host=srv.host, port=srv.port, ehlo_name="c", reply_timeout=10)
    return ShellCore(options, Renderer(out, echo=True), settings=Settings(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["typed", "pasted", "batch"])
@pytest.mark.parametrize("in_clear", [False, True])
def test_auth_after_a_refused_starttls_is_not_sent_in_clear(how: str, in_clear: bool) -> None:
    lines = ["EHLO c", "STARTTLS", f"AUTH PLAIN {PLAIN}", "AUTH LOGIN", b64(b"alice"),
             b64(PASSWORD.encode()), "NOOP"]

    async def run() -> str:
        SEEN.clear()
        out = io.StringIO()
        async with serve(refuses_starttls) as srv:
            core = _core(srv, out, allow_plain_auth=in_clear)
            if how == "batch":
                await run_batch(core, io.StringIO("\n".join([*lines, "QUIT"]) + "\n"))
                return out.getvalue()
            await core.connect()
            if how == "typed":
                for line in lines:
                    await core.handle_line(line)
            else:
                await core.handle_text("\n".join(lines) + "\n")
            await core.handle_line("QUIT")
            await core.close()
        return out.getvalue()

    out = asyncio.run(run())
    sent = b"".join(SEEN)
    assert b"454" not in sent and b"STARTTLS" in sent
    if in_clear:  # --auth-in-clear: the user said so
        assert PLAIN.encode() in sent and b64(PASSWORD.encode()).encode() in sent
        return
    assert b"AUTH" not in sent, sent
    assert PLAIN.encode() not in sent and b64(PASSWORD.encode()).encode() not in sent
    assert b64(b"alice").encode() not in sent  # the answers of an AUTH not sent stay too
    assert b"NOOP" in sent  # the session goes on
    assert "not sending AUTH in clear: the server refused STARTTLS" in out


# ---- hand-typed AUTH is recorded as a replayable reference --------------------------


def _sandbox_core(sb: Sandbox, out: io.StringIO, **settings: object) -> ShellCore:
    options = ConnectOptions(host="127.0.0.1", port=sb.port, tls_mode="starttls",
                             tls=TlsOptions(cafile=str(sb.ca_file)), ehlo_name="hand.test",
                             reply_timeout=10)
    return ShellCore(options, Renderer(out), settings=Settings(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "PLAIN-334"])
def test_hand_typed_auth_is_recorded_as_a_placeholder_and_replays(
    sandbox: Sandbox, tmp_path: Path, mech: str
) -> None:
    path = tmp_path / "hand.smtp"
    password = sandbox.password
    blob = b64(b"\0" + sandbox.user.encode() + b"\0" + password.encode())
    lines = {
        "PLAIN": [f"auth PLAIN {blob}"],  # aiosmtpd wants the mechanism in capitals
        "PLAIN-334": ["AUTH PLAIN", blob],
        "LOGIN": ["AUTH LOGIN", b64(sandbox.user.encode()), b64(password.encode())],
    }[mech]

    async def run() -> tuple[str, bool, bool]:
        out = io.StringIO()
        core = _sandbox_core(sandbox, out)
        assert start_recording(core, str(path))
        assert await core.connect() is ExitStatus.OK
        for line in lines:
            await core.handle_line(line)
        await core.handle_line("QUIT")
        await core.close()
        options = ReplayOptions(server=("127.0.0.1", sandbox.port),
                                env={"SMTPSHELL_PASSWORD": password},
                                tls=TlsOptions(cafile=str(sandbox.ca_file)))
        good = await replay_file(path, options)
        bad = await replay_file(path, ReplayOptions(
            server=("127.0.0.1", sandbox.port), env={"SMTPSHELL_PASSWORD": "wrong"},
            tls=TlsOptions(cafile=str(sandbox.ca_file))))
        return out.getvalue(), good.passed, bad.passed

    out, good, bad = asyncio.run(run())
    assert "authenticated" in out
    text = path.read_text()
    for form in (password, b64(password.encode()), blob):
        assert form not in text
    assert "$SMTPSHELL_PASSWORD}}" in text
    assert good, text  # the hand session replays with the password from the environment
    assert not bad  # and the placeholder really carries it


def test_the_shell_reads_smtpshell_password(sandbox: Sandbox) -> None:
    async def run() -> tuple[ExitStatus, str]:
        out = io.StringIO()
        core = _sandbox_core(sandbox, out, user=sandbox.user, auth="plain",
                             environ={"SMTPSHELL_PASSWORD": sandbox.password})
        status = await core.connect()
        await core.close()
        return status, out.getvalue()

    status, out = asyncio.run(run())
    assert status is ExitStatus.OK, out
    assert "authenticated as demo" in out


def test_a_password_from_the_environment_is_redacted_anywhere(sandbox: Sandbox) -> None:
    """$SMTPSHELL_PASSWORD is known before any /auth: a line that carries it is masked."""
    async def run() -> str:
        out = io.StringIO()
        core = _sandbox_core(sandbox, out, environ={"SMTPSHELL_PASSWORD": "hunter2-hunter2"})
        return core.redact_for_history("NOOP hunter2-hunter2")

    assert "hunter2" not in asyncio.run(run())


# ---- the screen: what went on the wire, or a mask that cannot be taken for it --------


def test_auth_sent_by_the_shell_is_masked_not_base64_of_a_mask(sandbox: Sandbox) -> None:
    async def run() -> str:
        out = io.StringIO()
        core = _sandbox_core(sandbox, out, user=sandbox.user, auth="plain",
                             environ={"SMTPSHELL_PASSWORD": sandbox.password})
        await core.connect()
        await core.close()
        return out.getvalue()

    out = asyncio.run(run())
    assert "~> AUTH PLAIN <credential redacted: \\0demo\\0 + password>" in out
    assert b64(b"\0demo\0****") not in out and "****" not in out


# ---- mock and replay reports ----------------------------------------------------------

MOCK = """\
# smtpshell transcript v1
== connect address=127.0.0.1:25 tls=plain
<- 220 mock ESMTP
-> EHLO client
<- 250-mock
<- 250 AUTH PLAIN LOGIN
-> AUTH PLAIN {{secret:plain user=bob password=$P}}
<- 235 2.7.0 ok
-> QUIT
<- 221 bye
"""


def test_the_mock_reports_a_credential_it_received_as_redacted() -> None:
    async def run() -> str:
        async with MockServer(parse(MOCK)) as mock:
            def client() -> None:
                with smtplib.SMTP(mock.host, mock.port, local_hostname="client") as smtp:
                    smtp.ehlo("client")
                    smtp.docmd("AUTH", f"LOGIN {b64(b'alice')}")  # not what it expects
            await asyncio.to_thread(client)
            [result] = await mock.wait()
        return result.render()

    report = asyncio.run(run())
    assert "AUTH LOGIN <credential redacted>" in report, report
    assert b64(b"alice") not in report


def test_the_mock_masks_an_answer_inside_the_exchange() -> None:
    transcript = MOCK.replace("-> AUTH PLAIN {{secret:plain user=bob password=$P}}\n<- 235",
                              "-> AUTH LOGIN\n<- 334 VXNlcm5hbWU6\n-> Ym9i\n<- 334 UGFzc3dvcmQ6\n"
                              "-> {{secret:login password=$P}}\n<- 235")

    async def run() -> str:
        async with MockServer(parse(transcript)) as mock:
            def client() -> None:
                with smtplib.SMTP(mock.host, mock.port, local_hostname="client") as smtp:
                    smtp.ehlo("client")
                    smtp.docmd("AUTH", "LOGIN")
                    smtp.docmd(b64(b"alice"))  # the mock expects bob: a mismatch
            await asyncio.to_thread(client)
            [result] = await mock.wait()
        return result.render()

    report = asyncio.run(run())
    assert "<credential redacted>" in report and b64(b"alice") not in report, report


def test_a_replay_diff_masks_a_credential_written_in_the_file(sandbox: Sandbox,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "literal.smtp"
    blob = b64(b"\0demo\0" + sandbox.password.encode())
    path.write_text(
        "# smtpshell transcript v1\n"
        f"== connect address=127.0.0.1:{sandbox.port} tls=plain\n"
        "<- 220 {{any:}}\n"
        "-> EHLO replay.test\n"
        "<- 250-{{any:}}  ~any\n"
        f"-> AUTH PLAIN {blob}\n"
        "<- 235 2.7.0 this is not what the sandbox says on a plain connection\n"
    )

    async def run() -> str:
        result = await replay_file(path, ReplayOptions(server=("127.0.0.1", sandbox.port)))
        assert not result.passed
        return result.render()

    report = asyncio.run(run())
    assert blob not in report, report
