"""The command line: targets, profiles, batch mode and its exit statuses, LMTP, UNIX sockets."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtpshell.cli import UsageError, main, parse_target
from smtpshell.context import Environment
from smtpshell.sandbox import Sandbox, SandboxConfig, SandboxThread
from smtpshell.status import ExitStatus
from smtpshell.transport import describe_os_error
from tests.hostile.servers import no_starttls, serve_in_thread


def run(argv: list[str], stdin: str = "", tmp: Path | None = None,
        environ: dict[str, str] | None = None) -> tuple[ExitStatus, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdin=io.StringIO(stdin), stdout=out, stderr=err, environ=environ or {},
        stdin_isatty=False, stdout_isatty=False,
        config_dir=(tmp / "config") if tmp else Path("/nonexistent"),
        data_dir=(tmp / "data") if tmp else Path("/nonexistent"),
    )
    status = main(argv, env)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("target", "port", "expected"),
    [
        ("mx.example.org", None, ("mx.example.org", 25)),
        ("mx.example.org", "587", ("mx.example.org", 587)),
        ("mx.example.org:2525", None, ("mx.example.org", 2525)),
        ("[::1]:2525", None, ("::1", 2525)),
        ("[::1]", None, ("::1", 25)),
        ("::1", None, ("::1", 25)),
        ("127.0.0.1", "26", ("127.0.0.1", 26)),
    ],
)
def test_parse_target(target: str, port: str | None, expected: tuple[str, int]) -> None:
    assert parse_target(target, port, 25) == expected


@pytest.mark.parametrize("bad", ["host:99999", "host:abc", ":25"])
def test_parse_target_errors(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_target(bad, None, 25)


def cafile_args(sb: Sandbox) -> list[str]:
    return ["--cafile", str(sb.ca_file), "--ehlo", "cli.test", "--timeout", "10"]


SESSION = """EHLO me
MAIL FROM:<a@example.org>
RCPT TO:<b@example.org>
DATA
Subject: batch

.dot first
.
QUIT
"""


def test_batch_starttls_session_exit_ok(sandbox: Sandbox, tmp_path: Path) -> None:
    status, out, _ = run(["--starttls", *cafile_args(sandbox), f"127.0.0.1:{sandbox.port}"],
                         SESSION, tmp_path)
    assert status is ExitStatus.OK, out
    assert "TLS established (STARTTLS)" in out
    assert "~> MAIL FROM:<a@example.org>" in out
    assert "<~ 221" in out
    [message] = sandbox.messages()
    assert b"\r\n.dot first\r\n" in message


def test_batch_send_shows_one_line_for_a_many_chunk_body(sandbox: Sandbox, tmp_path: Path
                                                         ) -> None:
    """Batch mode echoes what it sends; a streamed file is one line, not one per chunk."""
    message = tmp_path / "big.eml"
    message.write_bytes(b"Subject: chunks\r\n\r\n" + b"0123456789\r\n" * 2000)  # 24 KB
    status, out, _ = run(
        ["127.0.0.1", str(sandbox.port)],
        f"EHLO me\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\n"
        f"/send {message} --chunk 100\nQUIT\n",
        tmp_path,
    )
    assert status is ExitStatus.OK, out
    assert out.count("> [big.eml: the message, CRLF and dot-stuffed]") == 1
    assert "sent big.eml: 2002 lines" in out
    assert len(out.splitlines()) < 30, out
    [stored] = sandbox.messages()
    assert stored.endswith(b"0123456789\r\n" * 2000)


def test_batch_last_reply_failure_sets_status(sandbox: Sandbox, tmp_path: Path) -> None:
    status, out, _ = run(
        [*cafile_args(sandbox), "127.0.0.1", str(sandbox.port)],
        "EHLO me\nMAIL FROM:<a@example.org>\nRCPT TO:<reject@sandbox.test>\n",
        tmp_path,
    )
    assert "550" in out
    assert status is ExitStatus.RCPT


def test_connection_refused_is_one_line_with_the_address(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    status, out, _ = run(["127.0.0.1", str(port)], "", tmp_path)
    assert status is ExitStatus.CONNECT
    assert f"connection refused by 127.0.0.1:{port}" in out


def test_dns_failure_message_names_the_target() -> None:
    msg = describe_os_error(socket.gaierror(-2, "Name or service not known"), "nowhere.test:25")
    assert msg == "cannot resolve host name for nowhere.test:25: Name or service not known"


def test_starttls_required_but_not_offered(tmp_path: Path) -> None:
    with serve_in_thread(no_starttls) as srv:
        status, out, _ = run(["--starttls", "--ehlo", "x", "127.0.0.1", str(srv.port)], "",
                             tmp_path)
    assert status is ExitStatus.TLS
    assert "does not offer STARTTLS" in out


def test_profile_selected_and_overridden(sandbox: Sandbox, tmp_path: Path) -> None:
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f"""
[profiles.sb]
host = "127.0.0.1"
port = 1   # wrong on purpose: the command line overrides it
tls = "starttls"
cafile = "{sandbox.ca_file}"
ehlo = "profile.test"
"""
    )
    status, out, _ = run(["-p", "sb", "127.0.0.1", str(sandbox.port)], "QUIT\n", tmp_path)
    assert status is ExitStatus.OK, out
    assert "EHLO profile.test" in out and "TLS established" in out
    status, _, err = run(["-p", "nope"], "", tmp_path)
    assert status is ExitStatus.USAGE and "no profile 'nope'" in err


def test_lmtp_one_reply_per_recipient(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(port=0, tls_port=None, lmtp=True,
                                     workdir=tmp_path / "lmtp")) as sb:
        status, out, _ = run(
            ["--lmtp", "--ehlo", "x", "127.0.0.1", str(sb.port)],
            "LHLO x\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\n"
            "RCPT TO:<reject@sandbox.test>\nRCPT TO:<c@example.org>\nDATA\nSubject: l\n\nhi\n.\n",
            tmp_path,
        )
    after_dot = out.split("> .")[1]
    assert after_dot.count("< 250") == 2, out
    assert status is ExitStatus.RCPT  # the refused recipient is the first failed step


@pytest.fixture
def unix_lmtp(tmp_path: Path) -> Iterator[Path]:
    from aiosmtpd.lmtp import LMTP

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 delivered"

    path = tmp_path / "lmtp.sock"
    ready = threading.Event()
    stop: list[asyncio.AbstractEventLoop] = []
    done = asyncio.Event

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop.append(loop)
        finished = done()
        server = await loop.create_unix_server(lambda: LMTP(Handler(), loop=loop), str(path))
        ready.set()
        stop.append(finished)  # type: ignore[arg-type]
        await finished.wait()
        server.close()
        await server.wait_closed()

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    ready.wait(10)
    yield path
    loop, finished = stop[0], stop[1]
    loop.call_soon_threadsafe(finished.set)  # type: ignore[attr-defined]
    thread.join(10)


def test_unix_socket_lmtp(unix_lmtp: Path, tmp_path: Path) -> None:
    status, out, _ = run(["--unix", str(unix_lmtp), "--lmtp", "--ehlo", "x"],
                         "LHLO x\nQUIT\n", tmp_path)
    assert status is ExitStatus.OK, out
    assert "< 221" in out


def test_bind_source_address(sandbox: Sandbox, tmp_path: Path) -> None:
    status, out, _ = run(["--bind", "127.0.0.1:0", "-4", *cafile_args(sandbox), "127.0.0.1",
                          str(sandbox.port)], "NOOP\n", tmp_path)
    assert status is ExitStatus.OK, out


# ---- batch mode: rules a script can trust -------------------------------------------------


def test_refused_data_sends_no_message_line_and_the_first_failure_is_the_status(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """A body line that looks like a command must never be executed after DATA got 503."""
    status, out, _ = run(
        [*cafile_args(sandbox), "127.0.0.1", str(sandbox.port)],
        "EHLO me\nMAIL FROM:<a@example.org>\nRCPT TO:<reject@sandbox.test>\nDATA\n"
        "Subject: not sent\n\nRCPT TO:<bob@example.org>\n.\nQUIT\n",
        tmp_path,
    )
    assert "< 503" in out
    assert out.count('DATA was refused: the message lines up to the lone "." are not sent') == 1
    assert "RCPT TO:<bob@example.org>" not in out and "Subject" not in out
    assert "> QUIT" in out and "< 221" in out  # the script goes on after the "."
    assert status is ExitStatus.RCPT, out  # the first failure, though QUIT succeeded
    assert sandbox.messages() == []


def test_the_first_failure_stays_the_status_after_later_successes(sandbox: Sandbox,
                                                                  tmp_path: Path) -> None:
    status, out, _ = run(
        [*cafile_args(sandbox), "127.0.0.1", str(sandbox.port)],
        "EHLO me\nRCPT TO:<b@example.org>\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\n"
        "DATA\nSubject: ok\n\nhi\n.\nQUIT\n",
        tmp_path,
    )
    assert "< 503" in out and "< 221" in out
    assert status is ExitStatus.RCPT, out  # RCPT before MAIL: refused, then all went well
    assert len(sandbox.messages()) == 1


def test_expect_turns_a_refusal_into_a_check(sandbox: Sandbox, tmp_path: Path) -> None:
    """A script that tests a 550 says so with /expect (and /!expect inside a message)."""
    status, out, _ = run(
        [*cafile_args(sandbox), "127.0.0.1", str(sandbox.port)],
        "EHLO me\nMAIL FROM:<a@example.org>\n/expect 550\nRCPT TO:<reject@sandbox.test>\n"
        "/expect 2xx 3xx\nRCPT TO:<b@example.org>\nDATA\nSubject: e\n\nhi\n/!expect 25x\n.\n"
        "QUIT\n",
        tmp_path,
    )
    assert status is ExitStatus.OK, out
    assert "* 550 as expected" in out and "* 250 as expected" in out
    assert "/expect" not in out.replace("/!expect", "")  # never sent to the server
    [message] = sandbox.messages()
    assert b"expect" not in message


@pytest.mark.parametrize(
    ("script", "expected", "line"),
    [
        ("/expect 550\nRCPT TO:<b@example.org>\n", ExitStatus.ERROR, "x expected 550, got 250"),
        ("/expect 5xx\n", ExitStatus.ERROR, "x expected 5xx, but no reply came"),
        ("/expect 5\nNOOP\n", ExitStatus.USAGE, "x usage: /expect CODE"),
    ],
)
def test_an_unmet_or_bad_expect_fails(sandbox: Sandbox, tmp_path: Path, script: str,
                                      expected: ExitStatus, line: str) -> None:
    status, out, _ = run([*cafile_args(sandbox), "127.0.0.1", str(sandbox.port)],
                         "EHLO me\nMAIL FROM:<a@example.org>\n" + script, tmp_path)
    assert status is expected, out
    assert any(got.startswith(line) for got in out.splitlines()), out


async def _cut_reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 cut.test ESMTP\r\n")
    await reader.readline()
    writer.write(b"250-cut.test\r\n250-PIPELI")  # the reply ends in the middle
    await writer.drain()


def test_a_reply_cut_in_the_middle_is_a_protocol_error(tmp_path: Path) -> None:
    with serve_in_thread(_cut_reply) as srv:
        status, out, _ = run(["--ehlo", "x", "--timeout", "10", "127.0.0.1", str(srv.port)],
                             "EHLO x\n", tmp_path)
    assert "the connection ended in the middle of a reply" in out, out
    assert status is ExitStatus.PROTOCOL


RECORD_SCRIPT = """
import resource, signal, sys
sys.dont_write_bytecode = True  # a .pyc cut short by the limit would break later runs
from smtpshell.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
sys.exit(main(sys.argv[2:]))
"""


def test_a_transcript_that_cannot_be_written_fails_and_says_so(sandbox: Sandbox,
                                                              tmp_path: Path) -> None:
    """The disk fills up mid-session (a file size limit stands in for a full disk: it works
    without privileges): no "transcript written", and a status that is not 0."""
    import subprocess
    import sys

    path = tmp_path / "full.smtp"
    proc = subprocess.run(
        [sys.executable, "-c", RECORD_SCRIPT, "300", "--no-history", *cafile_args(sandbox),
         "--record", str(path), "127.0.0.1", str(sandbox.port)],
        input="EHLO me\nNOOP\nNOOP\nNOOP\nQUIT\n", capture_output=True, text=True,
        timeout=60,
        env={"PATH": "", "HOME": str(tmp_path), "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "transcript written" not in proc.stdout
    assert f"recording to {path} stopped: File too large" in proc.stdout, proc.stdout
    assert f"transcript {path} is incomplete: File too large" in proc.stdout
    assert proc.returncode == ExitStatus.ERROR
    assert "< 221" in proc.stdout  # the session itself went on
