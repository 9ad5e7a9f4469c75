"""The mock as a scriptable fake server: ``== pause``, ``== split`` and ``== drop`` in a
transcript, against real clients (smtplib, a raw socket) on 127.0.0.1. Pauses are tens of
milliseconds and client timeouts smaller, so these tests stay fast."""

from __future__ import annotations

import asyncio
import io
import re
import smtplib
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.sandbox import Sandbox
from smtpshell.transcript.mock import MAX_PAUSE, MockResult, MockServer
from smtpshell.transcript.model import Event, Expect
from smtpshell.transcript.syntax import dump, parse

T = TypeVar("T")
SAMPLES = Path(__file__).resolve().parents[2] / "transcripts"
HEAD = "# smtpshell transcript v1\n\n"
EHLO = """\
-> EHLO client.test
<- 250-mock.test
<- 250-SIZE 1000
<- 250-8BITMIME
<- 250 HELP
"""


def serve(text: str, client: Callable[[int], T]) -> tuple[T, MockResult]:
    """Serve ``text``; run the blocking ``client(port)`` in a thread; return what it returned
    and the connection's result."""
    transcript = parse(text, source="fake.smtp")

    async def go() -> tuple[T, MockResult]:
        async with MockServer(transcript, timeout=10) as srv:
            outcome = await asyncio.to_thread(client, srv.port)
            results = await srv.wait(1)
            assert len(results) == 1
            return outcome, results[0]

    return asyncio.run(go())


def read_all(port: int, *, first: int | None = None) -> list[bytes]:
    """Connect, send nothing, and return what arrives in each read until the mock closes.
    With ``first``, the first read asks for at most that many bytes."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        size = first or 4096
        while data := sock.recv(size):
            chunks.append(data)
            size = 4096
    return chunks


def lineno_of(text: str, line: str) -> int:
    return text.splitlines().index(line) + 1


# --------------------------------------------------------------------------- pause


def test_a_client_timeout_shorter_than_a_pause_times_out() -> None:
    text = HEAD + "== pause seconds=0.2\n<- 220 slow.test ESMTP\n-> QUIT\n<- 221 bye\n"

    def client(port: int) -> str:
        # smtplib reports its socket timeout while it reads the greeting as a disconnect
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            smtplib.SMTP("127.0.0.1", port, timeout=0.02)
        return "timed out"

    outcome, result = serve(text, client)
    assert outcome == "timed out"
    # the client left before the greeting: the mock says where the transcript was
    assert result.mismatch is not None
    assert result.mismatch.lineno == lineno_of(text, "-> QUIT")


def test_a_client_that_waits_longer_than_the_pause_follows() -> None:
    text = HEAD + "== pause seconds=0.02\n<- 220 slow.test ESMTP\n-> QUIT\n<- 221 bye\n"

    def client(port: int) -> tuple[int, bytes]:
        s = smtplib.SMTP("127.0.0.1", port, timeout=10)
        return s.quit()

    (code, _), result = serve(text, client)
    assert code == 221 and result.ok, result.render()


def test_a_pause_inside_a_line_sends_its_first_bytes_first() -> None:
    """``after-bytes=4``: the first read gets exactly ``220 `` (the rest comes after the
    pause), and the whole line arrives."""
    text = HEAD + "== pause seconds=0.3 after-bytes=4\n<- 220 slow.test ESMTP\n== drop\n"
    chunks, result = serve(text, read_all)
    assert chunks[0] == b"220 "
    assert b"".join(chunks) == b"220 slow.test ESMTP\r\n"
    assert result.ok


# --------------------------------------------------------------------------- split


def test_smtplib_gets_a_reply_split_across_writes_whole() -> None:
    text = (HEAD + "<- 220 mock.test ESMTP\n-> EHLO client.test\n<- 250-mock.test\n== split\n"
            "== split after-bytes=3\n<- 250-SIZE 1000\n<- 250-8BITMIME\n"
            "== split after-bytes=6\n<- 250 HELP\n-> QUIT\n<- 221 bye\n")

    def client(port: int) -> tuple[int, dict[str, str]]:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=10) as s:
            code, _ = s.ehlo()
            return code, dict(s.esmtp_features)

    (code, features), result = serve(text, client)
    assert code == 250
    assert features == {"size": "1000", "8bitmime": "", "help": ""}
    assert result.ok, result.render()


def test_the_slow_sample_serves_smtplib_whole() -> None:
    """transcripts/mock-slow-server.smtp (the suite also replays it against the sandbox,
    which sends no pauses: replay ignores the script events)."""
    text = (SAMPLES / "mock-slow-server.smtp").read_text()

    def client(port: int) -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.smtpshell.test",
                          timeout=10) as s:
            return s.sendmail("alice@example.org", ["bob@example.org"],
                              "From: alice@example.org\r\nTo: bob@example.org\r\n"
                              "Subject: sample\r\n\r\nHello.\r\n.a line that starts with a dot"
                              "\r\n")

    refused, result = serve(text, client)
    assert refused == {} and result.ok, result.render()


# --------------------------------------------------------------------------- drop


def test_a_drop_between_lines_of_a_reply_gives_smtplib_server_disconnected() -> None:
    text = (SAMPLES / "mock-drop-mid-reply.smtp").read_text()

    def client(port: int) -> str:
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.smtpshell.test",
                         timeout=10)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            s.ehlo()
        s.close()
        return "disconnected"

    outcome, result = serve(text, client)
    assert outcome == "disconnected"
    assert result.ok and result.note == (
        f"dropped the connection at line {lineno_of(text, '== drop')}, as scripted")
    assert result.render().endswith(
        f": ok, the client followed the transcript (dropped the connection at line "
        f"{lineno_of(text, '== drop')}, as scripted)")


def test_a_drop_inside_a_continuation_line_gives_smtplib_server_disconnected() -> None:
    text = (HEAD + "<- 220 mock.test ESMTP\n-> EHLO client.test\n<- 250-mock.test\n"
            "== drop after-bytes=6\n<- 250-SIZE 1000\n<- 250 HELP\n")

    def client(port: int) -> str:
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=10)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            s.ehlo()
        s.close()
        return "disconnected"

    assert serve(text, client)[0] == "disconnected"


def test_a_drop_after_some_bytes_of_the_last_line_sends_exactly_those() -> None:
    text = HEAD + "== drop after-bytes=5\n<- 220 mock.test ESMTP\n-> QUIT\n<- 221 bye\n"
    chunks, result = serve(text, read_all)
    assert b"".join(chunks) == b"220 m"
    assert result.ok


def test_a_server_that_closes_after_the_greeting() -> None:
    text = HEAD + "<- 220 mock.test ESMTP\n== drop\n" + EHLO + "-> QUIT\n<- 221 bye\n"

    def client(port: int) -> tuple[int, str]:
        s = smtplib.SMTP(local_hostname="client.test", timeout=10)
        code, _ = s.connect("127.0.0.1", port)  # reads the greeting
        with pytest.raises(smtplib.SMTPServerDisconnected):
            s.ehlo()
        s.close()
        return code, "closed"

    (code, outcome), result = serve(text, client)
    assert (code, outcome) == (220, "closed") and result.ok


# --------------------------------------------------------------------------- replay ignores them


def test_replay_ignores_the_script_events_mid_reply() -> None:
    """The steps leave the script events out: a reply cut by ``== split``/``== drop`` is
    still one reply (replay expects it whole)."""
    text = (SAMPLES / "mock-drop-mid-reply.smtp").read_text()
    steps = parse(text).steps()
    assert not any(isinstance(s, Event) and s.kind in ("pause", "split", "drop") for s in steps)
    ehlo = next(s for s in steps if isinstance(s, Expect) and s.code == 250)
    assert [line.text for line in ehlo.lines][-1] == "250 HELP" and ehlo.complete


def cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=err, environ={},
                      stdin_isatty=False, stdout_isatty=False,
                      config_dir=Path("/nonexistent"), data_dir=Path("/nonexistent"))
    return int(main(argv, env)), out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", ["mock-slow-server.smtp", "mock-drop-mid-reply.smtp"])
def test_the_scripted_samples_replay_against_a_real_server(name: str, sandbox: Sandbox) -> None:
    status, out, err = cli(["replay", "--server", f"127.0.0.1:{sandbox.port}",
                            str(SAMPLES / name)])
    assert status == 0, out + err


# --------------------------------------------------------------------------- bad scripts


@pytest.mark.parametrize(("event", "before", "message"), [
    ("== pause seconds=-1", "<- 220 hi", "'== pause' seconds=-1 is not between 0 and 300"),
    ("== pause seconds=nan", "<- 220 hi", "'== pause' seconds=nan is not between 0 and 300"),
    ("== pause seconds=inf", "<- 220 hi", "'== pause' seconds=inf is not between 0 and 300"),
    ("== pause seconds=301", "<- 220 hi", "'== pause' seconds=301 is not between 0 and 300"),
    ("== pause seconds=soon", "<- 220 hi",
     "'== pause' seconds='soon' is not a number of seconds"),
    ("== pause", "<- 220 hi", "'== pause' needs seconds= (how long the mock waits: "
     "seconds=0.2)"),
    ("== pause secs=1", "<- 220 hi",
     "'== pause' has no field 'secs' (its fields: seconds, after-bytes)"),
    ("== drop after-bytes=x", "<- 220 hi", "'== drop' after-bytes='x' is not a number of bytes"),
    ("== split after-bytes=9", "<- 220 hi",
     "'== split' after-bytes=9 is beyond the next server line (8 bytes with its CRLF)"),
    ("== drop after-bytes=2", "-> QUIT", "'== drop after-bytes=…' goes right before the "
     "server line it cuts (the mock sends that many bytes of it first)"),
    ("== split", "-> QUIT", "'== split' goes between server lines (the lines before and "
     "after it go in separate writes)"),
    ("== pause seconds=1", "-> QUIT", "'== pause' goes before a server line or an event: "
     "here the client sends, the mock has nothing to wait with"),
])
def test_a_bad_script_event_is_refused_with_its_line(event: str, before: str,
                                                     message: str) -> None:
    text = HEAD + "<- 220 hi\n-> NOOP\n<- 250 ok\n" + event + "\n" + before + "\n"
    with pytest.raises(ValueError) as info:
        MockServer(parse(text))
    assert str(info.value) == f"line 6: {message}"
    assert MAX_PAUSE == 300


def test_a_script_event_in_a_message_body_is_refused() -> None:
    text = (HEAD + "<- 220 hi\n-> DATA\n<- 354 go\n-> Subject: x\n== drop\n-> .\n"
            "<- 250 ok\n")
    with pytest.raises(ValueError, match=r"^line 7: '== drop' is not for the lines of a DATA "
                       "body"):
        MockServer(parse(text))


def test_the_command_line_refuses_a_bad_event_in_one_escaped_line(tmp_path: Path) -> None:
    """A hostile field value (an escape sequence) is quoted in the refusal, never sent to
    the terminal raw; exit 2."""
    path = tmp_path / "bad.smtp"
    path.write_text(HEAD + '== pause seconds="\\x1b[2J\\x1b]0;pwned\\x07"\n<- 220 hi\n')
    status, out, err = cli(["mock", str(path), "--port", "0", "--once"])
    assert (status, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(f"smtpshell mock: {path}:3: ")
    assert "\x1b" not in err and "\x07" not in err
    assert "is not a number of seconds" in err


# --------------------------------------------------------------------------- the spec's example

DOC = Path(__file__).resolve().parents[2] / "docs" / "transcript-format.md"


def spec_example() -> str:
    section = DOC.read_text("utf-8").split("### The mock as a scriptable fake server", 1)[1]
    block = re.search(r"^```transcript\n(.*?)^```$", section, re.S | re.M)
    assert block is not None
    return block[1]


def test_the_spec_example_is_canonical_and_does_what_the_spec_says() -> None:
    text = spec_example()
    assert dump(parse(text)) == text

    def impatient(port: int) -> str:
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            smtplib.SMTP("127.0.0.1", port, timeout=0.05)
        return "timed out"

    assert serve(text, impatient)[0] == "timed out"

    def patient(port: int) -> int:
        s = smtplib.SMTP(local_hostname="client.smtpshell.test", timeout=10)
        code, _ = s.connect("127.0.0.1", port)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            s.ehlo()
        s.close()
        return code

    code, result = serve(text, patient)
    assert code == 220 and result.ok, result.render()
    drop = lineno_of(text, "== drop after-bytes=6")
    assert result.note == f"dropped the connection at line {drop}, as scripted"
