"""The sandbox server, driven by a real client (smtplib) over real sockets and real TLS."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import mailbox
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.sandbox import (
    DEFAULT_HOSTNAME,
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    Delivery,
    Sandbox,
    SandboxConfig,
    SandboxThread,
)

# A message whose body exercises dot-stuffing: smtplib stuffs, the server must unstuff.
MESSAGE = (
    b"From: a@example.test\r\n"
    b"To: b@example.test\r\n"
    b"Subject: dots\r\n"
    b"\r\n"
    b".leading dot\r\n"
    b"..two dots\r\n"
    b".\r\n"
    b"last line\r\n"
)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with SandboxThread(SandboxConfig()) as sandbox:
        yield sandbox


def ca_context(sb: Sandbox) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(sb.ca_file))


def starttls_client(sb: Sandbox) -> smtplib.SMTP:
    client = smtplib.SMTP(sb.host, sb.port)
    client.ehlo()
    client.starttls(context=ca_context(sb))
    client.ehlo()
    return client


def test_greeting_names_the_sandbox(sb: Sandbox) -> None:
    client = smtplib.SMTP()
    try:
        code, text = client.connect(sb.host, sb.port)
        assert code == 220
        assert text.startswith(DEFAULT_HOSTNAME.encode())
    finally:
        client.close()


def test_plain_ehlo_offers_starttls_but_not_auth(sb: Sandbox) -> None:
    with smtplib.SMTP(sb.host, sb.port) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        code, text = client.docmd("AUTH", "PLAIN AHVzZXIAcGFzcw==")
        assert code == 538
        assert text.startswith(b"5.7.11")


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1", DEFAULT_HOSTNAME])
def test_starttls_verifies_against_the_ca_file(sb: Sandbox, server_hostname: str) -> None:
    context = ssl.create_default_context(cafile=str(sb.ca_file))
    with socket.create_connection((sb.host, sb.port)) as raw:
        reader = raw.makefile("rb")
        try:
            assert reader.readline().startswith(b"220 ")
            raw.sendall(b"EHLO client.test\r\n")
            while not (line := reader.readline()).startswith(b"250 "):
                assert line.startswith(b"250-")
            raw.sendall(b"STARTTLS\r\n")
            assert reader.readline().startswith(b"220 ")
        finally:
            reader.close()
        with context.wrap_socket(raw, server_hostname=server_hostname) as tls:
            assert tls.getpeercert() is not None
            tls.sendall(b"QUIT\r\n")
            assert tls.recv(100).startswith(b"221")


def test_certificate_is_not_trusted_without_the_ca(sb: Sandbox) -> None:
    client = smtplib.SMTP(sb.host, sb.port)
    try:
        client.ehlo()
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(context=ssl.create_default_context())
    finally:
        client.close()


@pytest.mark.parametrize("initial_response", [True, False])
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_auth_after_starttls(sb: Sandbox, mechanism: str, initial_response: bool) -> None:
    with starttls_client(sb) as client:
        assert client.esmtp_features["auth"].split() == ["CRAM-MD5", "LOGIN", "PLAIN"]
        client.user, client.password = DEFAULT_USER, DEFAULT_PASSWORD
        authobject = getattr(client, "auth_" + mechanism.lower().replace("-", "_"))
        code, text = client.auth(mechanism, authobject, initial_response_ok=initial_response)
        assert (code, text) == (235, b"2.7.0 Authentication successful")


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
@pytest.mark.parametrize(
    ("user", "password"), [(DEFAULT_USER, "wrong"), ("nobody", DEFAULT_PASSWORD)]
)
def test_auth_with_wrong_credentials_is_535(
    sb: Sandbox, mechanism: str, user: str, password: str
) -> None:
    with starttls_client(sb) as client:
        client.user, client.password = user, password
        authobject = getattr(client, "auth_" + mechanism.lower().replace("-", "_"))
        with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
            client.auth(mechanism, authobject)
        assert failure.value.smtp_code == 535
        error = failure.value.smtp_error
        assert isinstance(error, bytes)
        assert error.startswith(b"5.7.8")


def test_cram_md5_challenge_shape_and_cancel(sb: Sandbox) -> None:
    with starttls_client(sb) as client:
        code, challenge = client.docmd("AUTH", "CRAM-MD5")
        assert code == 334
        decoded = base64.b64decode(challenge).decode()
        assert re.fullmatch(r"<\d+\.\d+@" + re.escape(DEFAULT_HOSTNAME) + ">", decoded)
        code, _ = client.docmd("*")
        assert code == 501
        assert client.noop()[0] == 250  # the session goes on


def test_successful_auth_logs_no_aiosmtpd_deprecation(
    sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="mail.log"), starttls_client(sb) as client:
        client.login(DEFAULT_USER, DEFAULT_PASSWORD)
    assert not [r for r in caplog.records if "deprecated" in r.getMessage()]


def test_auth_without_tls_when_configured() -> None:
    with SandboxThread(SandboxConfig(auth_require_tls=False, tls_port=None)) as sb:
        with smtplib.SMTP(sb.host, sb.port) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            assert client.has_extn("auth")
            assert client.login(DEFAULT_USER, DEFAULT_PASSWORD)[0] == 235


def test_implicit_tls_port(sb: Sandbox) -> None:
    assert sb.tls_port is not None
    with smtplib.SMTP_SSL(sb.host, sb.tls_port, context=ca_context(sb)) as client:
        client.ehlo()
        assert not client.has_extn("starttls")
        assert client.has_extn("auth")
        client.login(DEFAULT_USER, DEFAULT_PASSWORD)
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    [delivery] = sb.deliveries()
    assert delivery.tls
    assert delivery.user == DEFAULT_USER


def test_message_is_stored_byte_for_byte(sb: Sandbox) -> None:
    with starttls_client(sb) as client:
        client.login(DEFAULT_USER, DEFAULT_PASSWORD)
        client.sendmail("a@example.test", ["b@example.test", "c@example.test"], MESSAGE)
    with smtplib.SMTP(sb.host, sb.port) as client:  # plain, unauthenticated: allowed
        client.sendmail("d@example.test", ["e@example.test"], b"Subject: 2\r\n\r\nsecond\r\n")

    assert sb.messages() == [MESSAGE, b"Subject: 2\r\n\r\nsecond\r\n"]
    first, second = sb.deliveries()
    assert first.mail_from == "a@example.test"
    assert first.rcpt_tos == ("b@example.test", "c@example.test")
    assert (first.tls, first.user) == (True, DEFAULT_USER)
    assert (second.tls, second.user) == (False, None)
    assert second.peer.startswith("127.0.0.1:")

    box = mailbox.Maildir(str(sb.maildir), create=False)
    try:
        assert box.get_bytes(first.key) == MESSAGE
        assert len(box) == 2
    finally:
        box.close()
    assert (sb.maildir / "new" / first.key).read_bytes() == MESSAGE


def test_rejected_recipient_gets_550(sb: Sandbox) -> None:
    with smtplib.SMTP(sb.host, sb.port) as client:
        client.ehlo()
        client.mail("a@example.test")
        code, text = client.rcpt("Reject@Sandbox.Test")
        assert code == 550
        assert text.startswith(b"5.1.1 <Reject@Sandbox.Test>")
        client.rset()
        refused = client.sendmail(
            "a@example.test", ["ok@example.test", "reject@sandbox.test"], MESSAGE
        )
        assert set(refused) == {"reject@sandbox.test"}
        assert refused["reject@sandbox.test"][0] == 550
    [delivery] = sb.deliveries()
    assert delivery.rcpt_tos == ("ok@example.test",)


def test_all_recipients_rejected_stores_nothing(sb: Sandbox) -> None:
    with smtplib.SMTP(sb.host, sb.port) as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("a@example.test", ["reject@sandbox.test"], MESSAGE)
    assert sb.messages() == []


def test_lmtp_replies_per_recipient() -> None:
    with SandboxThread(SandboxConfig(lmtp=True)) as sb:
        assert sb.tls_port is None
        with smtplib.LMTP(sb.host, sb.port) as client:
            assert client.ehlo()[0] == 250  # smtplib's LMTP sends LHLO
            assert not client.has_extn("starttls")
            assert client.docmd("EHLO", "client.test")[0] == 500

            # One accepted, one rejected: smtplib reads the single DATA reply.
            refused = client.sendmail(
                "a@example.test", ["one@example.test", "reject@sandbox.test"], MESSAGE
            )
            assert refused == {
                "reject@sandbox.test": (
                    550,
                    b"5.1.1 <reject@sandbox.test>: recipient rejected (sandbox reject list)",
                )
            }

            # Two accepted: one reply each after the final dot (RFC 2033 §4.2).
            client.mail("a@example.test")
            assert client.rcpt("one@example.test")[0] == 250
            assert client.rcpt("two@example.test")[0] == 250
            first = client.data(b"Subject: two\r\n\r\nhi\r\n")
            second = client.getreply()
            assert first[0] == second[0] == 250
            assert b"<one@example.test>" in first[1]
            assert b"<two@example.test>" in second[1]
            assert client.noop() == (250, b"OK")  # nothing left over in the stream
        assert sb.messages() == [MESSAGE, b"Subject: two\r\n\r\nhi\r\n"]


def test_thread_stops_cleanly_and_removes_its_temporary_workdir() -> None:
    runner = SandboxThread()
    sb = runner.start()
    workdir, port = sb.workdir, sb.port
    assert sb.ca_file.parent == workdir
    plain = smtplib.SMTP(sb.host, sb.port)
    tls = starttls_client(sb)
    try:
        plain.ehlo()
        runner.stop()  # with two connections still open, one of them inside TLS
        for client in (plain, tls):
            with pytest.raises(smtplib.SMTPServerDisconnected):
                client.noop()
    finally:
        plain.close()
        tls.close()
    assert not workdir.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port)).close()
    with pytest.raises(RuntimeError):
        _ = sb.ca_file
    runner.stop()  # a second stop is harmless


def test_given_workdir_is_kept(tmp_path: Path) -> None:
    workdir = tmp_path / "sandbox"
    with SandboxThread(SandboxConfig(workdir=workdir)) as sb, smtplib.SMTP(sb.host, sb.port) as c:
        c.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    assert (workdir / "ca.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert (workdir / "server.pem").exists()
    assert len(list((workdir / "maildir" / "new").iterdir())) == 1


def test_start_error_is_raised_in_the_caller(sb: Sandbox) -> None:
    with pytest.raises(OSError), SandboxThread(SandboxConfig(port=sb.port)):
        pass


def test_attributes_need_a_running_sandbox() -> None:
    sandbox = Sandbox()
    with pytest.raises(RuntimeError, match="not running"):
        _ = sandbox.maildir


def test_async_context_manager_inside_a_running_loop() -> None:
    seen: list[Delivery] = []

    def send(host: str, port: int, cafile: str) -> bytes:
        with smtplib.SMTP(host, port) as client:
            client.starttls(context=ssl.create_default_context(cafile=cafile))
            client.login(DEFAULT_USER, DEFAULT_PASSWORD)
            client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
            return client.noop()[1]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with Sandbox(SandboxConfig(tls_port=None), on_delivery=seen.append) as sb:
            assert sb.tls_port is None
            reply = await loop.run_in_executor(None, send, sb.host, sb.port, str(sb.ca_file))
            assert reply == b"OK"
            assert sb.messages() == [MESSAGE]

    asyncio.run(main())
    assert [d.data for d in seen] == [MESSAGE]


SERVE_SCRIPT = """
import signal, sys
from smtpshell.cli import main
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.exit(main(["sandbox", "--port", "0", "--tls-port", "0"]))
"""


def grab(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match is not None, f"{pattern!r} not in {text!r}"
    return match[1]


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_prints_where_it_listens_and_stops_on_a_signal(stop_signal: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-W", "error", "-c", SERVE_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = ""
        while "Ctrl-C" not in banner:
            line = proc.stdout.readline()
            assert line, f"serve exited early: {banner!r}"
            banner += line
        port = int(grab(r"SMTP \+ STARTTLS\s+127\.0\.0\.1:(\d+)", banner))
        tls_port = int(grab(r"implicit TLS\s+127\.0\.0\.1:(\d+)", banner))
        ca_file = Path(grab(r"CA certificate\s+(\S+)", banner))
        assert f"smtpshell --cafile {ca_file} 127.0.0.1 {port}" in banner
        assert f"{DEFAULT_USER} / {DEFAULT_PASSWORD}" in banner
        assert "reject@sandbox.test" in banner
        assert re.search(r"maildir\s+\S+maildir", banner)

        context = ssl.create_default_context(cafile=str(ca_file))
        with smtplib.SMTP_SSL("127.0.0.1", tls_port, context=context) as client:
            client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.docmd("BOGUS")  # the server's own warning is shown, not a traceback

        proc.send_signal(stop_signal)
        rest, errors = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert errors == ""
    assert "message from <a@example.test> to b@example.test over TLS" in rest
    assert "BOGUS" in rest
    assert rest.rstrip().endswith("sandbox stopped.")
    assert not ca_file.parent.exists()


def test_serve_reports_a_busy_port_in_one_line(sb: Sandbox) -> None:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=err, environ={},
                      stdin_isatty=False, stdout_isatty=False)
    assert main(["sandbox", "--port", str(sb.port), "--tls-port", "0"], env) == 1
    assert out.getvalue() == ""
    [line] = err.getvalue().splitlines()
    assert line.startswith(f"smtpshell sandbox: cannot start on 127.0.0.1:{sb.port}")


def test_a_client_that_went_away_is_not_reported_as_a_sandbox_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reset left in a future nobody awaits (a client's close racing the server's last
    write) says nothing on stderr; any other unretrieved exception still does."""

    async def run() -> None:
        sb = Sandbox(SandboxConfig(port=0, tls_port=0, workdir=tmp_path / "sb"))
        await sb.start()
        try:
            loop = asyncio.get_running_loop()
            for exc in (ConnectionResetError(104, "Connection reset by peer"),
                        ValueError("a real bug")):
                loop.call_exception_handler(
                    {"message": "Future exception was never retrieved", "exception": exc})
        finally:
            await sb.stop()

    asyncio.run(run())
    reported = "\n".join(f"{r.getMessage()} {r.exc_info}" for r in caplog.records
                         if r.name == "asyncio")
    assert "Connection reset by peer" not in reported
    assert "a real bug" in reported
