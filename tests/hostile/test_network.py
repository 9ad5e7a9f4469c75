"""Broken networks and servers that stall, reset, flood or stop reading.

Each case ends with one clear line from the shell, no traceback, no hang, and the
shell still usable: the next command says "not connected (use /reconnect)" and
``/reconnect`` reaches the (now polite) server.
"""

from __future__ import annotations

import asyncio
import io
import socket
import threading
from pathlib import Path

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.status import ExitStatus
from tests.hostile.more_servers import (
    Reader,
    Shell,
    Writer,
    errors,
    greet_and_answer,
    hostile,
    polite,
    reset,
    shell,
    until_eof,
)
from tests.hostile.servers import Handler, serve_in_thread

NOT_CONNECTED = "* not connected (use /reconnect)"


async def assert_recovers(sh: Shell) -> None:
    """The shell after a failure: the next command is refused in words, /reconnect works."""
    before = len(sh.output)
    await sh.type("NOOP")
    assert sh.output[before:].strip().splitlines()[-1] == NOT_CONNECTED
    await sh.type("/reconnect", "NOOP")
    after = sh.output[before:]
    assert "< 220 polite ESMTP" in after
    assert "< 250 2.0.0 ok" in after
    assert sh.core.session.connected
    assert "Traceback" not in sh.output


def test_greeting_never_comes() -> None:
    async def silent(reader: Reader, writer: Writer) -> None:
        await until_eof(reader)  # never says a word; ends when the client gives up

    async def run() -> str:
        async with hostile(silent, polite) as srv:
            async with shell(srv.port, reply_timeout=0.5) as sh:
                assert sh.connect_status is ExitStatus.CONNECT
                assert errors(sh.output) == [f"x no greeting from 127.0.0.1:{srv.port} within 0.5s"]
                await assert_recovers(sh)
        return sh.output

    asyncio.run(run())


def test_connection_refused_then_reconnect_still_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed

    async def run() -> str:
        async with shell(port) as sh:
            assert sh.connect_status is ExitStatus.CONNECT
            await sh.type("NOOP", "/reconnect")
        return sh.output

    output = asyncio.run(run())
    refused = f"x connection refused by 127.0.0.1:{port} (nothing listening on that port?)"
    assert output.splitlines() == [refused, NOT_CONNECTED, refused]


def test_reset_in_the_middle_of_a_multiline_reply() -> None:
    async def rude(reader: Reader, writer: Writer) -> None:
        await greet_and_answer(reader, writer, b"EHLO")
        writer.write(b"250-rude.example\r\n250-PIPELINING\r\n250-SIZ")
        await writer.drain()
        reset(writer)

    async def run() -> str:
        async with hostile(rude, polite) as srv:
            async with shell(srv.port) as sh:
                await sh.type("EHLO me")
                assert errors(sh.output) == [
                    "x protocol error: the connection ended in the middle of a reply; "
                    "received: 250-rude.example | 250-PIPELINING | 250-SIZ",
                    f"x connection reset by 127.0.0.1:{srv.port}",
                ]
                await assert_recovers(sh)
        return sh.output

    asyncio.run(run())


def test_a_megabyte_reply_line_without_crlf_is_refused_and_the_connection_closed() -> None:
    left = asyncio.Event()

    async def flood(reader: Reader, writer: Writer) -> None:
        await greet_and_answer(reader, writer, b"NOOP")
        try:
            writer.write(b"250 " + b"A" * 1_000_000)
            await writer.drain()
            await until_eof(reader)
        finally:
            left.set()  # the client closed the connection: EOF or reset

    async def run() -> str:
        async with hostile(flood, polite) as srv:
            async with shell(srv.port) as sh:
                await sh.type("NOOP")
                assert not sh.core.session.connected
                await asyncio.wait_for(left.wait(), 10)  # the shell closed it, not the test
                await assert_recovers(sh)
        return sh.output

    output = asyncio.run(run())
    first, second = errors(output)[:2]
    assert first.startswith("x protocol error: reply line longer than 8192 bytes with no line end")
    assert second == "x the shell closed the connection after that error"


def test_an_endless_multiline_reply_is_bounded() -> None:
    sent = 0
    left = asyncio.Event()

    async def endless(reader: Reader, writer: Writer) -> None:
        nonlocal sent
        await greet_and_answer(reader, writer, b"EHLO")
        try:
            while True:  # "250-" for ever: only the client can stop this
                writer.write(b"250-and more\r\n" * 1000)
                await writer.drain()
                sent += 14_000
        finally:
            left.set()

    async def run() -> str:
        async with hostile(endless, polite) as srv:
            async with shell(srv.port) as sh:
                await sh.type("EHLO me")
                await asyncio.wait_for(left.wait(), 10)
                await assert_recovers(sh)
        return sh.output

    output = asyncio.run(run())
    assert errors(output)[:2] == [
        "x protocol error: multi-line reply longer than 1000 lines; giving up",
        "x the shell closed the connection after that error",
    ]
    assert "250-and more" not in output  # nothing of an unbounded reply is printed
    assert sent < 64 * 1024 * 1024  # the server was stopped (socket buffers, not memory)


def test_a_server_that_never_reads_trips_the_send_timeout() -> None:
    given_up = asyncio.Event()
    async def deaf(reader: Reader, writer: Writer) -> None:
        await greet_and_answer(reader, writer, b"DATA")
        # A small receive buffer, so that the kernel cannot absorb what the client sends.
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        writer.write(b"354 go ahead\r\n")
        await writer.drain()
        await given_up.wait()  # ...and never reads again


    big = "x" * (32 * 1024 * 1024)  # one message line: far more than any socket buffer

    async def run() -> str:
        async with hostile(deaf, polite) as srv:
            async with shell(srv.port, send_timeout=0.5) as sh:
                await sh.type("MAIL FROM:<a@example.org>", "DATA", big)
                assert not sh.core.session.connected
                given_up.set()
                await assert_recovers(sh)
        return sh.output

    output = asyncio.run(run())
    assert "x send timed out after 0.5s: the server is not reading what we send" in output


def test_ten_megabytes_of_data_and_the_server_closes_halfway(tmp_path: Path) -> None:
    message = tmp_path / "big.eml"
    line = b"0123456789" * 9 + b"\n"
    message.write_bytes(b"Subject: big\n\n" + line * (10 * 1024 * 1024 // len(line)))
    got = 0
    port = 0

    async def quitter(reader: Reader, writer: Writer) -> None:
        nonlocal got
        # A small receive buffer (no autotuning to tens of MB on loopback): the client
        # cannot have pushed the whole file into the kernel when the server goes.
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        await greet_and_answer(reader, writer, b"DATA")
        writer.write(b"354 go ahead\r\n")
        await writer.drain()
        while got < 2 * 1024 * 1024:
            chunk = await reader.read(65536)
            if not chunk:
                return
            got += len(chunk)
        reset(writer)  # part way: gone

    async def run() -> str:
        nonlocal port
        async with hostile(quitter, polite) as srv:
            port = srv.port
            async with shell(srv.port) as sh:
                await sh.type("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>")
                await sh.type(f"/send {message}")
                assert not sh.core.session.connected
                await assert_recovers(sh)
        return sh.output

    output = asyncio.run(run())
    found = errors(output)
    assert len(found) == 2, output
    assert found[0] == f"x connection reset by 127.0.0.1:{port}"
    assert found[1].startswith("x the connection closed after ")
    assert found[1].endswith(" bytes of big.eml")
    assert got >= 2 * 1024 * 1024


def test_batch_input_after_the_server_went_away_is_one_line(tmp_path: Path) -> None:
    async def two_commands(reader: Reader, writer: Writer) -> None:
        writer.write(b"220 short-lived\r\n")
        for _ in range(2):
            await reader.readline()
            writer.write(b"250 ok\r\n")
        await writer.drain()  # ...and leave

    with serve_in_thread(two_commands) as srv:
        out, err = io.StringIO(), io.StringIO()
        stdin = io.StringIO("".join(f"NOOP {i}\n" for i in range(10_000)))
        env = Environment(stdin=stdin, stdout=out, stderr=err, environ={}, stdin_isatty=False,
                          stdout_isatty=False, config_dir=tmp_path, data_dir=tmp_path)
        status = main(["--ehlo", "x", "--timeout", "5", "127.0.0.1", str(srv.port)], env)
    assert status is ExitStatus.PROTOCOL
    assert err.getvalue() == ""
    found = errors(out.getvalue())
    assert found[-1].startswith("x not sent (connection closed): NOOP ")
    assert len(found) <= 3, found


def deaf_after_data(gone: threading.Event) -> Handler:
    async def deaf(reader: Reader, writer: Writer) -> None:
        await greet_and_answer(reader, writer, b"DATA")
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        writer.write(b"354 go ahead\r\n")
        await writer.drain()
        await asyncio.to_thread(gone.wait, 30)  # never reads again, until the test is done

    return deaf


def batch_into_a_deaf_server(tmp_path: Path) -> tuple[ExitStatus, str, str]:
    gone = threading.Event()
    stdin = io.StringIO("MAIL FROM:<a@example.org>\nDATA\n" + "x" * (32 * 1024 * 1024) + "\n")
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=stdin, stdout=out, stderr=err, environ={}, stdin_isatty=False,
                      stdout_isatty=False, config_dir=tmp_path, data_dir=tmp_path)
    with serve_in_thread(deaf_after_data(gone)) as srv:
        try:
            status = main(["--timeout", "0.5", "--ehlo", "x", "127.0.0.1", str(srv.port)], env)
        finally:
            gone.set()
    return status, out.getvalue(), err.getvalue()


def test_batch_send_timeout_with_a_small_timeout_option(tmp_path: Path) -> None:
    _, out, err = batch_into_a_deaf_server(tmp_path)
    assert errors(out) == ["x send timed out after 0.5s: the server is not reading what we send",
                           "x the connection closed inside DATA: the message was not sent "
                           "(no final '.')"]
    assert err == ""


def test_batch_send_timeout_exit_status(tmp_path: Path) -> None:
    status, _, _ = batch_into_a_deaf_server(tmp_path)
    assert status is ExitStatus.PROTOCOL


def test_a_line_not_sent_after_the_close_is_never_shown_as_a_secret(tmp_path: Path) -> None:
    """The server ends the AUTH exchange by leaving: the password lined up for it is not
    sent, and the one line that says so does not show it either."""

    async def leaves_after_auth(reader: Reader, writer: Writer) -> None:
        writer.write(b"220 short-lived\r\n")
        await reader.readline()  # AUTH LOGIN
        writer.write(b"334 VXNlcm5hbWU6\r\n")
        await writer.drain()
        await reader.readline()  # the user name
        writer.write(b"421 4.3.0 bye\r\n")
        await writer.drain()  # ...and leave

    with serve_in_thread(leaves_after_auth) as srv:
        out, err = io.StringIO(), io.StringIO()
        stdin = io.StringIO("AUTH LOGIN\nYWxpY2U=\nczNjcmV0IQ==\nQUIT\n")
        env = Environment(stdin=stdin, stdout=out, stderr=err, environ={}, stdin_isatty=False,
                          stdout_isatty=False, config_dir=tmp_path, data_dir=tmp_path)
        status = main(["--ehlo", "x", "--auth-in-clear", "--timeout", "5", "127.0.0.1",
                       str(srv.port)], env)
    assert status is not ExitStatus.OK
    assert "czNjcmV0IQ==" not in out.getvalue() + err.getvalue()
