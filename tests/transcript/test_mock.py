"""The mock server: real sockets on 127.0.0.1, real TLS (trustme), smtplib as the client."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.transcript.mock import DEVIATED_REPLY, MockResult, MockServer, plan
from smtpshell.transcript.model import Elided, Expect, Send, Transcript
from smtpshell.transcript.syntax import format_entry, parse

DOC = Path(__file__).resolve().parents[2] / "docs" / "transcript-format.md"
T = TypeVar("T")

# STARTTLS, AUTH PLAIN and one message, written to match what smtplib sends: EHLO with
# local_hostname="client.test", lowercase verbs (the default rule ignores their case), no SIZE
# advertised (smtplib would add SIZE= to MAIL FROM), AUTH PLAIN LOGIN so login() picks PLAIN.
STARTTLS_SESSION = """\
# smtpshell transcript v1
target: 127.0.0.1:2525
tls: starttls

== connect address=127.0.0.1:2525 tls=starttls
<- 220 mock.smtpshell.test ESMTP
-> EHLO client.test
<- 250-mock.smtpshell.test
<- 250-8BITMIME
<- 250-STARTTLS
<- 250 HELP
-> STARTTLS
<- 220 2.0.0 Ready to start TLS
== tls via=starttls protocol=TLSv1.3 verified=yes
~> EHLO client.test
<~ 250-mock.smtpshell.test
<~ 250-AUTH PLAIN LOGIN
<~ 250 HELP
~> AUTH PLAIN {{secret:plain user=demo password=$SMTPSHELL_PASSWORD}}
<~ 235 2.7.0 Authentication successful
~> MAIL FROM:<demo@smtpshell.test>
<~ 250 2.1.0 OK
~> RCPT TO:<alice@smtpshell.test>
<~ 250 2.1.5 OK
~> DATA
<~ 354 End data with <CR><LF>.<CR><LF>
~> From: demo@smtpshell.test
~> To: alice@smtpshell.test
~> Subject: hello from smtplib
~>
~> Hi Alice,
~> ..a line that starts with a dot.
~> .
<~ 250 2.0.0 OK: queued as {{queueid:1736937727.M512043P48211Q1.laptop}}
~> QUIT
<~ 221 2.0.0 Bye
== closed by=server
"""
RCPT_LINE = 23  # "~> RCPT TO:<alice@smtpshell.test>" above
MESSAGE = (
    "From: demo@smtpshell.test\nTo: alice@smtpshell.test\nSubject: hello from smtplib\n\n"
    "Hi Alice,\n.a line that starts with a dot.\n"
)


def lineno_of(text: str, line: str) -> int:
    return text.splitlines().index(line) + 1


# --------------------------------------------------------------------------- fixtures


def serve(
    text: str | Transcript,
    client: Callable[[int], T],
    *,
    ssl_context: ssl.SSLContext | None = None,
    connections: int = 1,
    **options: Any,
) -> tuple[T, list[MockResult]]:
    """Serve ``text`` in an event loop; run the blocking ``client(port)`` in a thread; return
    what the client returned and the results of ``connections`` finished connections."""
    transcript = parse(text, source="mock.smtp") if isinstance(text, str) else text

    async def main() -> tuple[T, list[MockResult]]:
        async with MockServer(transcript, ssl_context=ssl_context, **options) as srv:
            outcome = await asyncio.to_thread(client, srv.port)
            return outcome, await srv.wait(connections)

    return asyncio.run(main())


def only(results: list[MockResult]) -> MockResult:
    assert len(results) == 1
    return results[0]


# --------------------------------------------------------------------------- smtplib clients


def test_smtplib_starttls_login_sendmail_follows_the_transcript(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    def client(port: int) -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as s:
            s.starttls(context=client_ctx)
            code, _ = s.login("anyone", "any password: the mock cannot check it")
            assert code == 235
            refused = s.sendmail("demo@smtpshell.test", ["alice@smtpshell.test"], MESSAGE)
            assert s.sock is not None and isinstance(s.sock, ssl.SSLSocket)
            return refused

    refused, results = serve(STARTTLS_SESSION, client, ssl_context=server_ctx)
    assert refused == {}
    result = only(results)
    assert result.ok, result.render()
    assert result.render().endswith(": ok, the client followed the transcript")
    assert result.peer.startswith("127.0.0.1:")


def test_the_documented_example_serves_smtplib(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    """The spec's recorded session (STARTTLS, AUTH PLAIN, DATA), driven step by step: its EHLO
    advertises CRAM-MD5 and SIZE, so login()/sendmail() would choose otherwise."""
    block = re.search(r"```transcript\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert block is not None
    transcript = parse(block[1], source="doc-example.smtp")
    body = (b"From: demo@smtpshell.test\r\nTo: alice@smtpshell.test\r\n"
            b"Subject: hello from smtpshell\r\n\r\nHi Alice,\r\n"
            b".a line that starts with a dot is sent dot-stuffed, and recorded as sent.\r\n")

    def client(port: int) -> list[int]:
        codes = []
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.smtpshell.test",
                          timeout=30) as s:
            s.ehlo()
            codes.append(s.starttls(context=client_ctx)[0])
            s.ehlo()
            s.user, s.password = "demo", "whatever"
            codes.append(s.auth("PLAIN", s.auth_plain)[0])
            codes.append(s.mail("demo@smtpshell.test")[0])
            codes.append(s.rcpt("alice@smtpshell.test")[0])
            codes.append(s.data(body)[0])
        return codes

    codes, results = serve(transcript, client, ssl_context=server_ctx)
    assert codes == [220, 235, 250, 250, 250]
    assert only(results).ok, only(results).render()


def test_a_client_that_sends_another_command_gets_421_and_the_report_names_the_line(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    """Another verb than the transcript's (here VRFY for RCPT): the recorded replies cannot
    fit what the client does next, so the mock answers 421 and stops."""
    deviating = "VRFY <bob@smtpshell.test>"

    def client(port: int) -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as s:
            s.starttls(context=client_ctx)
            s.login("demo", "secret")
            s.mail("demo@smtpshell.test")
            return s.docmd(deviating)

    reply, results = serve(STARTTLS_SESSION, client, ssl_context=server_ctx)
    assert reply == (421, DEVIATED_REPLY[4:].encode())
    result = only(results)
    assert not result.ok and result.mismatch is not None
    assert result.mismatch.lineno == RCPT_LINE == lineno_of(
        STARTTLS_SESSION, "~> RCPT TO:<alice@smtpshell.test>")
    report = result.render()
    assert f"MISMATCH\n  mock.smtp:{RCPT_LINE}: text differs\n" in report
    assert f"  -   {RCPT_LINE} ~> RCPT TO:<alice@smtpshell.test>" in report
    assert f"  +      ~> {deviating}" in report.splitlines()  # as the client sent it


def test_differing_arguments_are_all_reported_and_the_client_goes_on(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    """Another EHLO name and another recipient: the mock answers each as recorded and
    goes on, so one run reports both (and the message still gets its 250)."""
    def client(port: int) -> tuple[int, int, dict[str, tuple[int, bytes]]]:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="other.test", timeout=30) as s:
            s.starttls(context=client_ctx)
            s.login("demo", "secret")
            refused = s.sendmail("demo@smtpshell.test", ["bob@smtpshell.test"], MESSAGE)
            assert s.sock is not None
            return s.ehlo_resp is not None, s.does_esmtp, refused

    (_, _, refused), results = serve(STARTTLS_SESSION, client, ssl_context=server_ctx)
    assert refused == {}
    result = only(results)
    assert [m.lineno for m in result.mismatches] == [
        lineno_of(STARTTLS_SESSION, "-> EHLO client.test"),
        lineno_of(STARTTLS_SESSION, "~> EHLO client.test"),
        RCPT_LINE]
    assert result.error is None
    report = result.render()
    assert "MISMATCH (3 differences)" in report
    assert "+      -> ehlo other.test" in report
    assert "+      ~> ehlo other.test" in report
    assert re.search(r"\+      ~> rcpt (TO|to):<bob@smtpshell\.test>", report)


def test_implicit_tls_with_smtp_ssl(server_ctx: ssl.SSLContext,
                                    client_ctx: ssl.SSLContext) -> None:
    text = """\
# smtpshell transcript v1
target: 127.0.0.1:465
tls: implicit

== connect address=127.0.0.1:465 tls=implicit
== tls via=implicit protocol=TLSv1.3 verified=yes
<~ 220 {{host:mock.smtpshell.test}} ESMTP
~> EHLO {{host:client.test}}
<~ 250-mock.smtpshell.test
<~ 250 AUTH PLAIN
~> AUTH PLAIN {{secret:plain user=demo password=$SMTPSHELL_PASSWORD}}
<~ 235 2.7.0 Authentication successful
~> MAIL FROM:<demo@smtpshell.test>
<~ 250 OK
~> RCPT TO:<alice@smtpshell.test>
<~ 250 OK
~> DATA
<~ 354 go ahead
~> Subject: implicit
~>
~> body  ~glob b*y
~> .
<~ 250 queued
~> QUIT
<~ 221 Bye
== closed by=server
"""

    def client(port: int) -> tuple[str, dict[str, tuple[int, bytes]]]:
        with smtplib.SMTP_SSL("127.0.0.1", port, local_hostname="any.name.test",
                              context=client_ctx, timeout=30) as s:
            s.login("demo", "pw")
            refused = s.sendmail("demo@smtpshell.test", "alice@smtpshell.test",
                                 "Subject: implicit\n\nbody\n")
            assert isinstance(s.sock, ssl.SSLSocket)
            return str(s.sock.version()), refused

    (version, refused), results = serve(text, client, ssl_context=server_ctx)
    assert version.startswith("TLS") and refused == {}
    assert only(results).ok, only(results).render()


def test_cram_md5_challenge_is_sent_back_and_any_answer_accepted(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    text = """\
# smtpshell transcript v1
tls: plain

<- 220 mock ESMTP
-> EHLO client.test
<- 250-mock
<- 250 AUTH CRAM-MD5
-> AUTH CRAM-MD5
<- 334 {{b64:PDc0OTMzNjcwNDcuMTc5NTQyNjgxN0BzYW5kYm94LnNtdHBzaGVsbC50ZXN0Pg==}}
-> {{secret:cram-md5 user=demo password=$SMTPSHELL_PASSWORD}}
<- 235 2.7.0 Authentication successful
-> QUIT
<- 221 Bye
"""

    def client(port: int) -> int:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as s:
            return s.login("demo", "pass")[0]

    code, results = serve(text, client)
    assert code == 235
    assert only(results).ok, only(results).render()


def test_a_pipelined_group_is_answered_command_by_command() -> None:
    """Recorded pipelined; smtplib waits for each reply and still follows the transcript."""
    text = """\
# smtpshell transcript v1

<- 220 mock ESMTP
-> EHLO client.test
<- 250-mock
<- 250 PIPELINING
-> MAIL FROM:<a@example.org>
-> RCPT TO:<b@example.org>
-> DATA
<- 250 2.1.0 OK
<- 250 2.1.5 OK
<- 354 go ahead
-> hello
-> .
<- 250 2.0.0 queued
-> QUIT
<- 221 Bye
== closed by=server
"""
    steps = plan(parse(text).steps())
    kinds = [type(s).__name__ for s in steps[:9]]
    assert kinds == ["Expect", "Send", "Expect", "Send", "Expect", "Send", "Expect", "Send",
                     "Expect"]

    def client(port: int) -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as s:
            return s.sendmail("a@example.org", ["b@example.org"], "hello\n")

    refused, results = serve(text, client)
    assert refused == {}
    assert only(results).ok, only(results).render()


ELIDED_TEMPLATE = """\
# smtpshell transcript v1

<- 220 mock ESMTP
-> HELO client.test
<- 250 mock
-> MAIL FROM:<a@example.org>
<- 250 OK
-> RCPT TO:<b@example.org>
<- 250 OK
-> DATA
<- 354 go ahead
-> Subject: big
->
{elided}
-> .
<- 250 queued
-> QUIT
<- 221 Bye
"""


def test_an_elided_body_matches_by_count_size_and_sha256() -> None:
    body = [f"line {i} of a long body" for i in range(500)]
    elided = Elided.of(body, file=None)
    text = ELIDED_TEMPLATE.format(elided=format_entry(elided))
    message = "Subject: big\n\n" + "\n".join(body) + "\n"

    def client(changed: bool) -> Callable[[int], tuple[int, bytes]]:
        def run(port: int) -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test",
                              timeout=30) as s:
                s.helo()
                s.mail("a@example.org")
                s.rcpt("b@example.org")
                return s.data(message.replace("line 7 ", "line 8 ") if changed else message)
        return run

    (code, _), results = serve(text, client(False))
    assert code == 250 and only(results).ok, only(results).render()

    (code, _), results = serve(text, client(True))
    assert code == 250  # the body is read to its end, the mock goes on as recorded
    mismatch = only(results).mismatch
    assert mismatch is not None
    assert mismatch.lineno == lineno_of(text, format_entry(elided))
    assert mismatch.reason == "the body differs from the elided lines (count, bytes or sha256)"
    assert "(500 lines, " in mismatch.render()


# --------------------------------------------------------------------------- raw clients


SIMPLE = """\
# smtpshell transcript v1

<- 220 mock ESMTP
-> EHLO client.test
<- 250-mock
<- 250 STARTTLS
-> STARTTLS
<- 220 go ahead
== tls via=starttls
~> EHLO client.test
<~ 250 mock
~> QUIT
<~ 221 Bye
== closed by=client
"""


def test_a_client_that_leaves_early_is_told_which_line_was_next(
    server_ctx: ssl.SSLContext,
) -> None:
    def client(port: int) -> int:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as s:
            code = s.ehlo()[0]
            s.close()  # no STARTTLS, no QUIT
            return code

    code, results = serve(SIMPLE, client, ssl_context=server_ctx)
    assert code == 250
    mismatch = only(results).mismatch
    assert mismatch is not None
    assert mismatch.lineno == lineno_of(SIMPLE, "-> STARTTLS")
    assert mismatch.reason.startswith("the client closed the connection")
    assert "+      (nothing)" in mismatch.render()


def test_a_tls_handshake_the_client_rejects_is_an_error(server_ctx: ssl.SSLContext) -> None:
    untrusting = ssl.create_default_context()  # does not know the test CA

    def client(port: int) -> str:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as s:
            with pytest.raises(ssl.SSLCertVerificationError):
                s.starttls(context=untrusting)
            s.close()
            return "refused"

    outcome, results = serve(SIMPLE, client, ssl_context=server_ctx)
    assert outcome == "refused"
    result = only(results)
    assert result.mismatch is None and result.error is not None
    assert result.error.startswith(f"line {lineno_of(SIMPLE, '== tls via=starttls')}: TLS "
                                   "handshake failed")
    assert "ERROR line " in result.render()


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    await writer.wait_closed()


def run_raw(
    text: str,
    talk: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
    **options: Any,
) -> tuple[Any, MockResult]:
    """An asyncio client in the mock's own loop: ``await talk(reader, writer)``."""

    async def main() -> tuple[Any, MockResult]:
        async with MockServer(parse(text, source="mock.smtp"), **options) as srv:
            reader, writer = await _open(srv.port)
            try:
                outcome = await talk(reader, writer)
            finally:
                await _close(writer)
            return outcome, only(await srv.wait(1))

    return asyncio.run(main())


async def _starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    starttls: bytes) -> bytes:
    """Greeting, EHLO, then ``starttls`` as given; returns the rest the mock sends."""
    await reader.readline()
    writer.write(b"EHLO client.test\r\n")
    while not (await reader.readline()).startswith(b"250 "):
        pass
    writer.write(starttls)
    return await reader.read()


def test_bytes_sent_after_starttls_before_the_handshake_are_reported(
    server_ctx: ssl.SSLContext,
) -> None:
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        # one segment: the CVE-2011-0411 probe shape
        return await _starttls(reader, writer, b"STARTTLS\r\nNOOP\r\n")

    rest, result = run_raw(SIMPLE, talk, ssl_context=server_ctx)
    assert rest.startswith(b"220 go ahead\r\n")
    assert rest.endswith(DEVIATED_REPLY.encode() + b"\r\n")
    assert result.mismatch is not None
    assert result.mismatch.lineno == lineno_of(SIMPLE, "== tls via=starttls")
    assert "instead of waiting for the 220 reply" in result.mismatch.reason
    assert result.mismatch.got == ("NOOP",)


def test_a_client_that_never_starts_the_handshake_times_out(
    server_ctx: ssl.SSLContext,
) -> None:
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        return await _starttls(reader, writer, b"STARTTLS\r\n")  # and no ClientHello

    rest, result = run_raw(SIMPLE, talk, ssl_context=server_ctx, timeout=0.2)
    assert rest == b"220 go ahead\r\n"
    assert result.error == (f"line {lineno_of(SIMPLE, '== tls via=starttls')}: TLS handshake "
                            "failed: not finished within 0.2 s")


def test_closed_by_client_waits_for_the_client_to_close(server_ctx: ssl.SSLContext) -> None:
    async def polite(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        await reader.readline()
        writer.write(b"QUIT\r\n")
        return await reader.readline()

    plain = "# smtpshell transcript v1\n\n<- 220 hi\n-> QUIT\n<- 221 Bye\n== closed by=client\n"
    reply, result = run_raw(plain, polite)
    assert reply == b"221 Bye\r\n" and result.ok, result.render()

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        await reader.readline()
        writer.write(b"quit\r\nNOOP\r\n")
        return await reader.read()

    rest, result = run_raw(plain, chatty)
    assert rest == b"221 Bye\r\n" + DEVIATED_REPLY.encode() + b"\r\n"
    assert result.mismatch is not None
    assert result.mismatch.reason == "expected the client to close the connection"
    assert result.mismatch.lineno == 6 and result.mismatch.got == ("NOOP",)


def test_more_than_the_transcript_has_is_a_mismatch() -> None:
    cut = "# smtpshell transcript v1\n\n<- 220 hi\n-> EHLO x\n<- 250 ok\n"

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        writer.write(b"EHLO x\r\nMAIL FROM:<a@b>\r\n")
        return await reader.read()

    rest, result = run_raw(cut, talk)
    assert rest == b"220 hi\r\n250 ok\r\n" + DEVIATED_REPLY.encode() + b"\r\n"
    assert result.mismatch is not None
    assert result.mismatch.reason == "the client sent more than the transcript has"
    assert result.mismatch.got == ("MAIL FROM:<a@b>",)


def test_a_silent_client_times_out_with_421() -> None:
    text = "# smtpshell transcript v1\n\n<- 220 hi\n-> EHLO x\n<- 250 ok\n"

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        writer.write(b"EHLO x\n")  # a bare LF: the mock waits for CRLF
        return await reader.read()

    rest, result = run_raw(text, talk, timeout=0.05)
    assert rest == b"220 hi\r\n421 4.4.2 smtpshell mock: timed out waiting for the client\r\n"
    assert result.mismatch is not None
    assert result.mismatch.lineno == 4
    assert "(lines must end in CRLF)" in result.mismatch.reason
    assert result.mismatch.got == ("EHLO x\n",)
    assert "+      -> EHLO x\\n" in result.render()


def test_a_tls_transcript_needs_a_server_context() -> None:
    with pytest.raises(ValueError, match="ssl_context"):
        MockServer(parse(SIMPLE))


def test_plan_keeps_steps_that_are_not_a_simple_pipelined_group() -> None:
    steps = parse(SIMPLE).steps()
    assert plan(steps) == steps
    assert isinstance(steps[0], Expect) and isinstance(steps[1], Send)


# --------------------------------------------------------------------------- mock_main


def mock_main(argv: list[str], out: io.StringIO, err: io.StringIO) -> int:
    """``smtpshell mock ARGV`` with these streams (no terminal, an empty environment)."""
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=err, environ={},
                      stdin_isatty=False, stdout_isatty=False,
                      config_dir=Path("/nonexistent"), data_dir=Path("/nonexistent"))
    return main(["mock", *argv], env)


class _Out(io.StringIO):
    """stdout for mock_main in another thread; ``ready`` once the banner is written."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = threading.Event()
        self._lock = threading.Lock()

    def write(self, s: str) -> int:
        with self._lock:
            n = super().write(s)
            if "waiting for one client" in super().getvalue():
                self.ready.set()
            return n

    def text(self) -> str:
        with self._lock:
            return super().getvalue()


def run_main(argv: list[str], client: Callable[[int], object]) -> tuple[int, str, str]:
    out, err = _Out(), io.StringIO()
    box: dict[str, int] = {}
    thread = threading.Thread(target=lambda: box.setdefault("status", mock_main(argv, out, err)))
    thread.start()
    port = None
    try:
        assert out.ready.wait(60), err.getvalue()
        found = re.search(r" on 127\.0\.0\.1:(\d+) ", out.text())
        assert found is not None, out.text()
        port = int(found[1])
        client(port)
    except BaseException:
        if port is not None and thread.is_alive():  # let a --once mock finish
            socket.create_connection(("127.0.0.1", port)).close()
        raise
    finally:
        thread.join(60)
    return box["status"], out.text(), err.getvalue()


@pytest.fixture
def session_file(tmp_path: Path) -> Path:
    path = tmp_path / "session.smtp"
    path.write_text(STARTTLS_SESSION, encoding="utf-8")
    return path


def test_mock_main_once_exits_0_for_a_client_that_follows(session_file: Path,
                                                        tmp_path: Path) -> None:
    ca_file = tmp_path / "mock-ca.pem"

    def client(port: int) -> None:
        ctx = ssl.create_default_context(cafile=str(ca_file))
        with smtplib.SMTP("localhost", port, local_hostname="client.test", timeout=30) as s:
            s.starttls(context=ctx)
            s.login("demo", "pw")
            s.sendmail("demo@smtpshell.test", ["alice@smtpshell.test"], MESSAGE)

    status, out, err = run_main(
        [str(session_file), "--once", "--port", "0", "--ca-out", str(ca_file), "--timeout", "30"],
        client)
    assert (status, err) == (0, ""), out
    assert f"smtpshell mock: serving {session_file} on 127.0.0.1:" in out
    assert f"CA certificate  {ca_file}" in out
    assert re.search(r"connection 1 from 127\.0\.0\.1:\d+: ok", out)


def test_mock_main_once_exits_1_for_a_client_that_deviates(session_file: Path) -> None:
    def client(port: int) -> None:
        # default certificate; its temporary CA file is named in the banner
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="other.test", timeout=30)
        assert s.ehlo()[0] == 250  # another name: noted, answered as recorded
        assert s.docmd("QUIT")[0] == 421  # where the transcript has STARTTLS
        s.close()

    status, out, err = run_main([str(session_file), "--once", "--port", "0"], client)
    assert (status, err) == (1, "")
    assert "MISMATCH (2 differences)" in out
    assert f"{session_file}:{lineno_of(STARTTLS_SESSION, '-> EHLO client.test')}: text differs" \
        in out
    assert "+      -> ehlo other.test" in out
    assert f"{session_file}:{lineno_of(STARTTLS_SESSION, '-> STARTTLS')}: text differs" in out
    assert "+      -> QUIT" in out


def test_mock_main_reports_a_hostile_command_it_went_on_after_escaped(
    session_file: Path,
) -> None:
    """An EHLO name with terminal escapes differs in its argument only: the mock goes on,
    and the report of both differences reaches the terminal escaped."""
    def client(port: int) -> None:
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="\x1b]0;pwned\x07\x1b[2J",
                         timeout=30)
        assert s.ehlo()[0] == 250
        assert s.docmd("QUIT")[0] == 421
        s.close()

    status, out, err = run_main([str(session_file), "--once", "--port", "0"], client)
    assert (status, err) == (1, "")
    assert "MISMATCH (2 differences)" in out
    assert "\x1b" not in out and "\x07" not in out
    assert "+      -> ehlo \\x1b]0;pwned\\x07\\x1b[2J" in out


def test_a_drop_before_the_first_connect_applies_at_its_start() -> None:
    text = ("# smtpshell transcript v1\n\n== drop\n== connect address=127.0.0.1:1\n"
            "<- 220 hi\n")

    def client(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            return sock.recv(100)

    got, results = serve(text, client)
    assert got == b"" and only(results).ok and only(results).note is not None


def test_mock_main_rejects_a_bad_transcript_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.smtp"
    bad.write_text("# smtpshell transcript v1\n\n-> EHLO x\n<- 250 ok  ~bogus\n")
    out, err = io.StringIO(), io.StringIO()
    assert mock_main([str(bad), "--port", "0", "--once"], out, err) == 2
    assert out.getvalue() == ""
    assert err.getvalue() == f"smtpshell mock: {bad}:4: unknown annotation ~bogus " \
                             "(known: ~exact ~any ~glob ~re ~optional ~repeat)\n"

    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    err = io.StringIO()
    assert mock_main([str(other), "--port", "0"], io.StringIO(), err) == 2
    assert err.getvalue().startswith(f"smtpshell mock: {other}:1: ")
    assert err.getvalue().count("\n") == 1

    err = io.StringIO()
    assert mock_main([str(tmp_path / "missing.smtp")], io.StringIO(), err) == 2
    assert err.getvalue().startswith("smtpshell mock: ") and "cannot read" in err.getvalue()


def test_mock_main_reports_a_busy_port(session_file: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out, err = io.StringIO(), io.StringIO()
        status = mock_main([str(session_file), "--port", str(port), "--once"], out, err)
    assert status == 2
    assert err.getvalue().startswith(f"smtpshell mock: cannot listen on 127.0.0.1:{port}: ")
    assert err.getvalue().count("\n") == 1


def test_mock_main_usage_errors(session_file: Path, tmp_path: Path) -> None:
    for argv in ([], [str(session_file), "--port", "http"], [str(session_file), "--timeout", "0"]):
        out, err = io.StringIO(), io.StringIO()
        assert mock_main(argv, out, err) == 2
        assert "usage: smtpshell mock" in err.getvalue()
    err = io.StringIO()
    assert mock_main([str(session_file), "--key", "k.pem"], io.StringIO(), err) == 2
    assert err.getvalue() == "smtpshell mock: --key needs --cert\n"
    err = io.StringIO()
    missing = tmp_path / "none.pem"
    assert mock_main([str(session_file), "--cert", str(missing)], io.StringIO(), err) == 2
    assert err.getvalue().startswith(f"smtpshell mock: cannot load the certificate {missing}")
    out = io.StringIO()
    assert mock_main(["--help"], out, io.StringIO()) == 0
    assert "--once" in out.getvalue()


@pytest.fixture
def cert_files(ca: trustme.CA, tmp_path: Path) -> Path:
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    return pem


def test_mock_main_with_a_given_certificate(session_file: Path, cert_files: Path,
                                            client_ctx: ssl.SSLContext) -> None:
    def client(port: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as s:
            s.starttls(context=client_ctx)
            s.login("demo", "pw")
            s.sendmail("demo@smtpshell.test", ["alice@smtpshell.test"], MESSAGE)

    status, out, _ = run_main(
        [str(session_file), "--once", "--port", "0", "--cert", str(cert_files)], client)
    assert status == 0, out
    assert f"certificate     {cert_files}" in out


def test_stopping_the_mock_ends_a_session_in_progress_with_an_error() -> None:
    text = "# smtpshell transcript v1\n\n<- 220 hi\n-> EHLO x\n<- 250 ok\n"

    async def main() -> tuple[bytes, list[MockResult]]:
        srv = MockServer(parse(text))
        await srv.start()
        reader, writer = await _open(srv.port)
        try:
            greeting = await reader.readline()
            await srv.stop()
            assert await reader.read() == b""
        finally:
            await _close(writer)
        return greeting, srv.results

    greeting, results = asyncio.run(main())
    assert greeting == b"220 hi\r\n"
    assert only(results).error == "the mock was stopped during the session"


# ---------------------------------------------------------------- AUTH forms, credentials

AUTH_TEMPLATE = """\
# smtpshell transcript v1

<- 220 mock.smtpshell.test ESMTP
-> EHLO client.test
<- 250-mock.smtpshell.test
<- 250 AUTH {mechs}
{exchange}
-> QUIT
<- 221 2.0.0 Bye
== closed by=server
"""
LOGIN_TWO_STEP = AUTH_TEMPLATE.format(mechs="LOGIN", exchange="""\
-> AUTH LOGIN
<- 334 VXNlcm5hbWU6
-> {{secret:login user=demo}}
<- 334 UGFzc3dvcmQ6
-> {{secret:login password=$SMTPSHELL_MOCK_PW}}
<- 235 2.7.0 Authentication successful""")
LOGIN_INITIAL = AUTH_TEMPLATE.format(mechs="LOGIN", exchange="""\
-> AUTH LOGIN {{secret:login user=demo}}
<- 334 UGFzc3dvcmQ6
-> {{secret:login password=$SMTPSHELL_MOCK_PW}}
<- 235 2.7.0 Authentication successful""")
PLAIN_INITIAL = AUTH_TEMPLATE.format(mechs="PLAIN", exchange="""\
-> AUTH PLAIN {{secret:plain user=demo password=$SMTPSHELL_MOCK_PW}}
<- 235 2.7.0 Authentication successful""")
PLAIN_TWO_STEP = AUTH_TEMPLATE.format(mechs="PLAIN", exchange="""\
-> AUTH PLAIN
<- 334\\x20
-> {{secret:plain user=demo password=$SMTPSHELL_MOCK_PW}}
<- 235 2.7.0 Authentication successful""")


def smtplib_auth(mech: str, user: str, password: str, *, initial: bool
                 ) -> Callable[[int], tuple[int, bytes]]:
    """smtplib's own AUTH: ``initial`` sends the initial response with the command."""
    def run(port: int) -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as s:
            s.ehlo()
            s.user, s.password = user, password
            method = s.auth_login if mech == "LOGIN" else s.auth_plain
            try:
                return s.auth(mech, method, initial_response_ok=initial)
            except smtplib.SMTPAuthenticationError as exc:
                error = exc.smtp_error
                return exc.smtp_code, error if isinstance(error, bytes) else error.encode()
    return run


@pytest.mark.parametrize("text", [LOGIN_TWO_STEP, LOGIN_INITIAL, PLAIN_INITIAL, PLAIN_TWO_STEP],
                         ids=["login-two-step", "login-initial", "plain-initial",
                              "plain-two-step"])
@pytest.mark.parametrize("initial", [True, False], ids=["client-initial", "client-two-step"])
def test_auth_with_and_without_initial_response_match_each_other(text: str,
                                                                  initial: bool) -> None:
    mech = "LOGIN" if "AUTH LOGIN" in text else "PLAIN"
    (code, _), results = serve(text, smtplib_auth(mech, "demo", "right", initial=initial),
                               env={"SMTPSHELL_MOCK_PW": "right"})
    assert code == 235
    assert only(results).ok, only(results).render()


@pytest.mark.parametrize("text", [LOGIN_TWO_STEP, PLAIN_INITIAL], ids=["login", "plain"])
def test_a_wrong_password_gets_535_when_the_secret_resolves(text: str) -> None:
    mech = "LOGIN" if "AUTH LOGIN" in text else "PLAIN"
    (code, message), results = serve(text, smtplib_auth(mech, "demo", "wrong-pw", initial=True),
                                     env={"SMTPSHELL_MOCK_PW": "right"})
    assert code == 535 and b"credentials invalid" in message
    result = only(results)
    assert result.mismatch is not None and len(result.mismatches) == 1
    assert result.mismatch.reason == "the password differs from $SMTPSHELL_MOCK_PW (answered 535)"
    assert result.mismatch.lineno == lineno_of(text, next(
        line for line in text.splitlines() if line.startswith("-> AUTH")))
    report = result.render()
    assert "<credential redacted>" in report
    for secret in (b"wrong-pw", b"\0demo\0wrong-pw"):
        assert secret.decode() not in report
        assert base64.b64encode(secret).decode() not in report


def test_credentials_are_checked_only_when_the_variable_is_set() -> None:
    for env in (None, {}, {"OTHER": "x"}):
        (code, _), results = serve(PLAIN_INITIAL, smtplib_auth("PLAIN", "eve", "anything",
                                                               initial=True), env=env)
        assert code == 235 and only(results).ok
    (code, _), results = serve(LOGIN_INITIAL, smtplib_auth("LOGIN", "eve", "right",
                                                           initial=False),
                               env={"SMTPSHELL_MOCK_PW": "right"})
    assert code == 535
    assert only(results).mismatch is not None
    assert only(results).mismatch.reason.startswith("the user name differs")  # type: ignore[union-attr]


def test_after_535_the_client_may_try_again_and_quit() -> None:
    def client(port: int) -> list[int]:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as s:
            s.ehlo()
            codes = [s.docmd("AUTH PLAIN", base64.b64encode(b"\0demo\0bad").decode())[0],
                     s.docmd("AUTH PLAIN")[0], s.docmd("NOOP")[0],
                     s.docmd("MAIL FROM:<a@b.test>")[0]]
            codes.append(s.docmd("QUIT")[0])
            return codes

    codes, results = serve(PLAIN_INITIAL, client, env={"SMTPSHELL_MOCK_PW": "right"})
    assert codes == [535, 535, 250, 530, 221]
    assert not only(results).ok


CRAM_MD5 = AUTH_TEMPLATE.format(mechs="CRAM-MD5", exchange="""\
-> AUTH CRAM-MD5
<- 334 {{b64:PDc0OTMzNjcwNDcuMTc5NTQyNjgxN0BzYW5kYm94LnNtdHBzaGVsbC50ZXN0Pg==}}
-> {{secret:cram-md5 user=demo password=$SMTPSHELL_MOCK_PW}}
<- 235 2.7.0 Authentication successful""")


def test_cram_md5_is_checked_against_the_challenge_the_mock_sent() -> None:
    def client(password: str) -> Callable[[int], int]:
        def run(port: int) -> int:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test",
                              timeout=30) as s:
                try:
                    return s.login("demo", password)[0]
                except smtplib.SMTPAuthenticationError as exc:
                    return exc.smtp_code
        return run

    code, results = serve(CRAM_MD5, client("right"), env={"SMTPSHELL_MOCK_PW": "right"})
    assert code == 235 and only(results).ok, only(results).render()
    code, results = serve(CRAM_MD5, client("wrong"), env={"SMTPSHELL_MOCK_PW": "right"})
    assert code == 535
    mismatch = only(results).mismatch
    assert mismatch is not None
    assert mismatch.reason == ("the CRAM-MD5 answer differs (user name or $SMTPSHELL_MOCK_PW) "
                               "(answered 535)")


def test_a_different_mechanism_is_a_deviation() -> None:
    (code, _), results = serve(PLAIN_INITIAL, smtplib_auth("LOGIN", "demo", "x", initial=True))
    assert code == 421
    mismatch = only(results).mismatch
    assert mismatch is not None and mismatch.reason == "text differs"
    assert "AUTH LOGIN <credential redacted>" in only(results).render()


# --------------------------------------------------------- bodies: skip, every difference

SKIPPING = """\
# smtpshell transcript v1

<- 220 mock.smtpshell.test ESMTP
-> EHLO client.test
<- 250-mock.smtpshell.test
<- 250-SIZE 1000000
<- 250 8BITMIME
-> MAIL FROM:<demo@smtpshell.test>
<- 250 2.1.0 OK
-> RCPT TO:<alice@smtpshell.test>
<- 250 2.1.5 OK
-> DATA
<- 354 go ahead
== skip
-> Subject: hello
== skip
->
-> Hi Alice,
-> see you
-> Bye
-> .
<- 250 2.0.0 queued
-> QUIT
<- 221 2.0.0 Bye
== closed by=server
"""


def smtplib_send(message: str) -> Callable[[int], dict[str, tuple[int, bytes]]]:
    def run(port: int) -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as s:
            return s.sendmail("demo@smtpshell.test", ["alice@smtpshell.test"], message)
    return run


def test_smtplib_with_size_and_its_own_headers_follows_a_skipping_transcript() -> None:
    message = ("Date: Mon, 30 Nov 2026 03:00:00 +0000\nMessage-ID: <1@client.test>\n"
               "Subject: hello\nMIME-Version: 1.0\nX-Mailer: app 1.0\n\nHi Alice,\nsee you\nBye\n")
    refused, results = serve(SKIPPING, smtplib_send(message))
    assert refused == {}
    assert only(results).ok, only(results).render()


def test_every_difference_of_a_connection_in_one_report() -> None:
    message = "Subject: hello\n\nHi Bob,\nsee you\nBye!\n"
    refused, results = serve(SKIPPING, smtplib_send(message))
    assert refused == {}  # the mock went on as recorded after the body
    result = only(results)
    assert [m.lineno for m in result.mismatches] == [
        lineno_of(SKIPPING, "-> Hi Alice,"), lineno_of(SKIPPING, "-> Bye")]
    report = result.render()
    assert "MISMATCH (2 differences)" in report
    assert "+      -> Hi Bob," in report and "+      -> Bye!" in report


def test_a_skip_outside_a_body_is_refused() -> None:
    text = SKIPPING.replace("-> RCPT TO:", "== skip\n-> RCPT TO:")
    with pytest.raises(ValueError, match=r"'== skip' is for the lines of a DATA body only"):
        MockServer(parse(text))


# ---------------------------------------------------------- mock --once: signals, timeout


def test_mock_once_gives_up_waiting_for_a_client_after_the_timeout(session_file: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    status = mock_main(["--once", "--port", "0", "--timeout", "0.5", str(session_file)],
                       out, err)
    assert status == 1, err.getvalue()
    assert "mock stopped: no client connected within 0.5 s (--timeout)." in out.getvalue()


def test_mock_once_stops_on_sigterm_while_it_waits(session_file: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "smtpshell", "mock", "--once", "--port", "0",
                             str(session_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        seen = ""
        while "waiting for one client" not in seen:
            line = proc.stdout.readline()
            assert line, f"the mock exited early: {seen!r}"
            seen += line
        proc.send_signal(signal.SIGTERM)
        rest, errors = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, errors
    assert "mock stopped: 0 connection(s)" in rest and errors == ""


def test_mock_main_refuses_a_misplaced_skip_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.smtp"
    path.write_text(SKIPPING.replace("-> RCPT TO:", "== skip\n-> RCPT TO:"))
    out, err = io.StringIO(), io.StringIO()
    assert mock_main(["--once", "--port", "0", str(path)], out, err) == 2
    line = lineno_of(path.read_text(), "== skip")
    assert f":{line}: '== skip' is for the lines of a DATA body only" in err.getvalue()
    assert "Traceback" not in err.getvalue()


def test_the_guides_exim_example_replays_against_the_mock_serving_it(tmp_path: Path) -> None:
    """docs/transcripts.md, "Coming from Exim test scripts": the translated client script is
    both sides at once; replay plays its client lines to the mock that plays its server lines."""
    guide = (DOC.parent / "transcripts.md").read_text()
    section = guide[guide.index("## Coming from Exim"):]
    text = re.search(r"```text\n(# smtpshell transcript v1\n.*?)```", section, re.DOTALL)
    assert text is not None
    path = tmp_path / "exim.smtp"
    path.write_text(text[1])

    def client(port: int) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        env = Environment(stdin=io.StringIO(""), stdout=out, stderr=err, environ={},
                          stdin_isatty=False, stdout_isatty=False,
                          config_dir=tmp_path / "config", data_dir=tmp_path / "data")
        status = int(main(["replay", "--server", f"127.0.0.1:{port}", str(path)], env))
        return status, out.getvalue() + err.getvalue()

    (status, out), results = serve(text[1], client)
    assert status == 0 and "1 passed, 0 failed" in out, out
    result = only(results)
    assert result.ok, result.render()


# --------------------------------------------------------------------------- several connections

TWO_CONNECTIONS = Path(__file__).resolve().parents[2] / "transcripts" / "two-connections.smtp"


def serve_two(text: str | Transcript, client: Callable[[int, int | None], T], *,
              ssl_context: ssl.SSLContext | None, connections: int = 2,
              **options: Any) -> tuple[T, list[MockResult], MockServer]:
    """Like ``serve``, for a transcript with several connections: ``client(port, tls_port)``."""
    transcript = parse(text, source="mock.smtp") if isinstance(text, str) else text

    async def main() -> tuple[T, list[MockResult], MockServer]:
        async with MockServer(transcript, ssl_context=ssl_context, **options) as srv:
            outcome = await asyncio.to_thread(client, srv.port, srv.tls_port)
            return outcome, await srv.wait(connections), srv

    return asyncio.run(main())


def two_connection_client(client_ctx: ssl.SSLContext, *, second_rcpt: str = "bob@example.org"
                          ) -> Callable[[int, int | None], list[int]]:
    """What the recorded sample did: STARTTLS, a recipient checked, RSET, QUIT; then implicit
    TLS (SMTP_SSL) and the message."""
    def client(port: int, tls_port: int | None) -> list[int]:
        assert tls_port is not None and tls_port != port
        codes = []
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.smtpshell.test",
                          timeout=30) as s:
            codes.append(s.starttls(context=client_ctx)[0])
            s.ehlo()
            codes.append(s.mail("alice@example.org")[0])
            codes.append(s.rcpt("bob@example.org")[0])
            codes.append(s.rset()[0])
        with smtplib.SMTP_SSL("127.0.0.1", tls_port, local_hostname="client.smtpshell.test",
                              context=client_ctx, timeout=30) as s:
            refused = s.sendmail("alice@example.org", [second_rcpt],
                                 "Subject: second connection\r\n\r\nHello again.\r\n")
            codes.append(len(refused))
        return codes

    return client


def test_two_connections_starttls_then_implicit_tls_with_smtplib(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    """The recorded sample: connection 1 (STARTTLS) on the plain port, connection 2
    (implicit TLS) on the TLS port, each walking its own block of the transcript."""
    transcript = parse(TWO_CONNECTIONS.read_text(), source="two-connections.smtp")
    codes, results, srv = serve_two(transcript, two_connection_client(client_ctx),
                                    ssl_context=server_ctx)
    assert codes == [220, 250, 250, 250, 0]
    assert [r.number for r in results] == [1, 2]
    assert all(r.ok for r in results), "\n".join(r.render() for r in results)
    assert [(c.number, c.implicit) for c in srv.connections] == [(1, False), (2, True)]


def test_a_difference_in_the_second_connection_names_its_line(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    text = TWO_CONNECTIONS.read_text()
    transcript = parse(text, source="two-connections.smtp")
    _, results, _ = serve_two(
        transcript, two_connection_client(client_ctx, second_rcpt="carol@example.org"),
        ssl_context=server_ctx)
    first, second = results
    assert first.ok
    rcpt = [i for i, line in enumerate(text.splitlines(), 1)
            if line == "~> RCPT TO:<bob@example.org>"]
    assert second.mismatch is not None and second.mismatch.lineno == rcpt[1]
    assert "+      ~> rcpt" in second.render() and "carol@example.org" in second.render()


def test_a_client_at_the_wrong_port_for_its_connection_is_an_error(
    server_ctx: ssl.SSLContext,
) -> None:
    """Connection 1 of the sample is STARTTLS: coming to the implicit-TLS port first is an
    error result that names both ports, and the connection is closed."""
    transcript = parse(TWO_CONNECTIONS.read_text(), source="two-connections.smtp")

    def client(port: int, tls_port: int | None) -> bytes:
        assert tls_port is not None
        with socket.create_connection(("127.0.0.1", tls_port), timeout=30) as sock:
            return sock.recv(100)

    got, results, srv = serve_two(transcript, client, ssl_context=server_ctx, connections=1)
    assert got == b""
    assert only(results).error == (
        f"the transcript's connection 1 (line 8) is plain/STARTTLS: the client connected to "
        f"implicit-TLS port {srv.tls_port} instead of port {srv.port}")


def test_a_one_connection_transcript_serves_every_client_and_has_no_tls_port() -> None:
    def client(port: int, tls_port: int | None) -> list[int]:
        assert tls_port is None
        codes = []
        for _ in range(2):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                codes.append(s.noop()[0])
        return codes

    text = "# smtpshell transcript v1\n\n<- 220 hi\n-> NOOP\n<- 250 ok\n-> QUIT\n<- 221 bye\n"
    codes, results, _ = serve_two(text, client, ssl_context=None)
    assert codes == [250, 250] and all(r.ok for r in results)


def test_mock_main_serves_a_mixed_transcript_on_two_ports(tmp_path: Path) -> None:
    """``smtpshell mock --once`` with --tls-port: the banner names both ports, smtplib and
    SMTP_SSL follow the sample's two connections, exit 0 after the second."""
    path = tmp_path / "two.smtp"
    path.write_text(TWO_CONNECTIONS.read_text())
    ca_file = tmp_path / "ca.pem"
    out, err = _Out(), io.StringIO()
    box: dict[str, int] = {}
    argv = [str(path), "--once", "--port", "0", "--tls-port", "0", "--ca-out", str(ca_file),
            "--timeout", "30"]
    thread = threading.Thread(target=lambda: box.setdefault("status", mock_main(argv, out, err)))
    thread.start()
    try:
        assert out.ready.wait(60), err.getvalue()
        found = re.search(r" on 127\.0\.0\.1:(\d+) \(plain/STARTTLS\) and "
                          r"127\.0\.0\.1:(\d+) \(implicit TLS\)", out.text())
        assert found is not None, out.text()
        ctx = ssl.create_default_context(cafile=str(ca_file))
        codes = two_connection_client(ctx)(int(found[1]), int(found[2]))
    finally:
        thread.join(60)
    assert codes == [220, 250, 250, 250, 0]
    assert (box["status"], err.getvalue()) == (0, ""), out.text()
    assert "waiting for one client: 2 connections (--once)" in out.text()
    assert out.text().count(": ok, the client followed the transcript") == 2


def test_mock_main_names_a_busy_tls_port(tmp_path: Path) -> None:
    """A mixed transcript whose --tls-port is taken: the line names that port, and the
    plain listener it opened first is closed again."""
    path = tmp_path / "two.smtp"
    path.write_text(TWO_CONNECTIONS.read_text())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out, err = io.StringIO(), io.StringIO()
        status = mock_main([str(path), "--port", "0", "--tls-port", str(port), "--once"],
                           out, err)
    assert status == 2
    assert err.getvalue().startswith(f"smtpshell mock: cannot listen on 127.0.0.1:{port}: ")
    assert err.getvalue().count("\n") == 1
