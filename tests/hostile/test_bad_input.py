"""Bad input from the user and from files: one line in words, never a traceback.

Covered elsewhere and listed in docs/reliability.md: /send with a missing file, a
directory, an empty or binary file, bad options (tests/ui/test_mail_commands.py
``test_send_refuses_bad_files_in_one_line``) and a file over the server's SIZE limit
(``test_size_limit_refuses_unless_forced``); bad base64 typed in an AUTH exchange
(tests/ui/test_auth.py).
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.status import ExitStatus
from smtpshell.ui.app import PrivateFileHistory, run_repl
from smtpshell.ui.core import ShellCore
from smtpshell.ui.render import Renderer
from tests.hostile.more_servers import (
    Reader,
    Writer,
    drive,
    errors,
    hostile,
    polite,
    shell_options,
    wait_for_text,
)
from tests.hostile.servers import serve_in_thread


def offline(lines: list[str]) -> str:
    """Meta-commands typed into a shell that is not connected to anything."""
    out = io.StringIO()
    core = ShellCore(shell_options(1), Renderer(out))

    async def run() -> None:
        for line in lines:
            await core.handle_line(line)

    asyncio.run(run())
    return out.getvalue()


# ---- /unb64 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not*base64", "invalid character '*' at position 4"),
        ("AGRlbW8AcHc", "missing padding: expected '=' at the end"),
        ("A", "impossible length: 1 characters before padding leave one over"),
        ("====", "unexpected padding '===='"),
        ("=abc", "data after padding '=' at position 2"),
        ("Zm9v YmFy", "whitespace (space) at position 5"),
        ("Zm9vé", "invalid character 'é' at position 5"),
    ],
)
def test_invalid_base64_for_unb64(text: str, problem: str) -> None:
    [line] = offline([f"/unb64 {text}"]).splitlines()
    assert line.startswith(f"x not valid base64: {problem}")


# ---- unknown meta-commands ----------------------------------------------------------------


def test_unknown_meta_command_offline_and_in_data_mode() -> None:
    assert offline(["/nonsense", "/ALSO-nonsense with args"]).splitlines() == [
        "x unknown command /nonsense (try /help)",
        "x unknown command /ALSO-nonsense (try /help)",
    ]

    async def run() -> str:
        async with hostile(polite) as srv:
            sh = await drive(srv.port, ["DATA", "/!nonsense", "/nonsense is message text",
                                        ".", "NOOP"])
        return sh.output

    output = asyncio.run(run())
    assert errors(output) == ["x unknown command /nonsense (try /help)"]
    assert "> /nonsense is message text" in output  # in DATA, "/" lines are message text
    assert "< 250 2.0.0 message accepted" in output
    assert output.splitlines()[-1] == "< 250 2.0.0 ok"  # the message ended, the session went on


def test_unknown_meta_command_in_batch_mode(tmp_path: Path) -> None:
    with serve_in_thread(polite) as srv:
        out, err = io.StringIO(), io.StringIO()
        env = Environment(stdin=io.StringIO("/frobnicate\nNOOP\n"), stdout=out, stderr=err,
                          environ={}, stdin_isatty=False, stdout_isatty=False,
                          config_dir=tmp_path, data_dir=tmp_path)
        status = main(["--ehlo", "x", "--timeout", "5", "127.0.0.1", str(srv.port)], env)
    assert status is ExitStatus.OK
    assert errors(out.getvalue()) == ["x unknown command /frobnicate (try /help)"]
    assert err.getvalue() == ""


# ---- message files ------------------------------------------------------------------------

ENVELOPE = ["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>"]


def test_send_a_device_is_refused() -> None:
    async def run() -> str:
        async with hostile(polite) as srv:
            sh = await drive(srv.port, [*ENVELOPE, "/send /dev/zero", "NOOP"])
        return sh.output

    output = asyncio.run(run())
    [error] = errors(output)
    assert error.startswith("x /dev/zero: not a regular file")
    assert output.splitlines()[-1] == "< 250 2.0.0 ok"


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A named pipe.  A writer thread keeps any ``open()`` of it from blocking for ever."""
    path = tmp_path / "message.fifo"
    os.mkfifo(path)

    def writer() -> None:
        fd = os.open(path, os.O_WRONLY)  # blocks until somebody opens it for reading
        os.close(fd)  # ...who then reads end-of-file at once

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    yield path
    # Release the writer if nobody opened the pipe. The reader stays open until the writer
    # is done: the writer thread may not have reached its open() yet, and an open() for
    # writing that comes after the last reader closed would block again (a 10 s teardown).
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        thread.join(10)
    finally:
        os.close(reader)
    assert not thread.is_alive()


def test_send_a_named_pipe_is_refused_without_opening_it(fifo: Path) -> None:
    async def run() -> str:
        async with hostile(polite) as srv:
            sh = await drive(srv.port, [*ENVELOPE, f"/send {fifo}"])
        return sh.output

    [error] = errors(asyncio.run(run()))
    assert error.startswith(f"x {fifo}: ") and "not a regular file" in error


# ---- bytes that are not UTF-8 on standard input -------------------------------------------


def test_non_utf8_bytes_on_stdin_in_batch_mode_are_sent_as_is(tmp_path: Path) -> None:
    received: list[bytes] = []

    async def recorder(reader: Reader, writer: Writer) -> None:
        writer.write(b"220 recorder\r\n")
        while line := await reader.readline():
            received.append(line)
            writer.write(b"221 bye\r\n" if line.startswith(b"QUIT") else b"250 ok\r\n")
            await writer.drain()

    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        # A desktop's UTF-8 locale: Python then decodes stdin strictly (C.UTF-8 does not).
        "PYTHONIOENCODING": "utf-8:strict",
    }
    with serve_in_thread(recorder) as srv:
        proc = subprocess.run(
            [sys.executable, "-m", "smtpshell", "--no-history", "--ehlo", "x", "127.0.0.1",
             str(srv.port)],
            input=b"NOOP caf\xe9 \xff\r\nNOOP\nQUIT\n",
            capture_output=True,
            env=env,
            timeout=30,
        )
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    assert proc.returncode == 0
    assert received == [b"NOOP caf\xe9 \xff\r\n", b"NOOP\r\n", b"QUIT\r\n"]


# ---- the history file ---------------------------------------------------------------------


def test_history_file_is_created_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "new" / "history"
    old = os.umask(0)
    try:
        PrivateFileHistory(path).store_string("EHLO me")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "+EHLO me" in path.read_text()


def test_an_existing_world_readable_history_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "history"
    path.write_text("\n# old\n+NOOP\n")
    path.chmod(0o644)
    PrivateFileHistory(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def repl_with_history(history: Path) -> str:
    async def run() -> str:
        out = io.StringIO()
        async with hostile(polite) as srv:
            with create_pipe_input() as pipe:
                core = ShellCore(shell_options(srv.port), Renderer(out))
                repl = asyncio.create_task(
                    run_repl(core, history_file=history, input=pipe, output=DummyOutput())
                )
                pipe.send_text("NOOP\r")
                await wait_for_text(out, "250 2.0.0 ok", task=repl)
                pipe.send_text("/quit\r")
                await asyncio.wait_for(repl, 10)
        return out.getvalue()

    return asyncio.run(run())


def test_history_file_with_bytes_that_are_not_utf8_still_loads(tmp_path: Path) -> None:
    history = tmp_path / "history"
    history.write_bytes(b"\n# 2024-01-01 00:00:00\n+NOOP caf\xe9 \xff\xfe\n")
    history.chmod(0o600)
    output = repl_with_history(history)
    assert "250 2.0.0 ok" in output
    content = history.read_bytes()
    assert content.startswith(b"\n# 2024-01-01 00:00:00\n+NOOP caf\xe9 \xff\xfe\n")
    assert b"\n+NOOP\n" in content


def test_unusable_history_path_is_one_warning_not_a_crash(tmp_path: Path) -> None:
    history = tmp_path / "history"
    history.mkdir()  # a directory where the file should be
    output = repl_with_history(history)
    assert "250 2.0.0 ok" in output
    assert any("history" in line for line in output.splitlines() if line.startswith("! "))


# ---- hostile files and arguments: one line, the documented status, bounded work ---------


def cli(argv: list[str], tmp_path: Path, stdin: str = "") -> tuple[ExitStatus, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(stdin), stdout=out, stderr=err, environ={},
                      stdin_isatty=False, stdout_isatty=False,
                      config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    status = main(argv, env)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'[profiles.p]\nhost = "caf\xe9"\n', "not UTF-8 text (byte 25 is not)"),
        (b"[profiles.p]\nx = " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
         "not valid TOML: nested too deeply"),
        (b'[profiles.p]\nhost = "127.0.0.1"\npin = [1, 2]\n',
         "profile 'p': pin must be a string or a list of strings, not [1, 2]"),
    ],
    ids=["not-utf8", "deeply-nested", "pin-numbers"],
)
def test_a_hostile_profile_is_one_line_and_status_2(tmp_path: Path, content: bytes,
                                                    problem: str) -> None:
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir()
    config.write_bytes(content)
    status, out, err = cli(["-p", "p"], tmp_path)
    assert status is ExitStatus.USAGE
    assert err == f"smtpshell: {config}: {problem}\n"
    assert out == ""


def test_a_user_name_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    status, _, err = cli(["--auth", "login", "--user", "caf\udce9", "127.0.0.1", "1"],
                         tmp_path)
    assert status is ExitStatus.USAGE
    assert err == "smtpshell: --user: not UTF-8 text (SASL sends user names as UTF-8)\n"


TRANSCRIPT_HEAD = """\
# smtpshell transcript v1
target: {target}
tls: plain

== connect address={target} tls=plain
<- 220 polite ESMTP
"""


def transcript(tmp_path: Path, body: str, target: str = "127.0.0.1:25") -> Path:
    path = tmp_path / "t.smtp"
    path.write_text(TRANSCRIPT_HEAD.format(target=target) + body, encoding="utf-8")
    return path


def elided(lines: int, nbytes: int, extra: str = "") -> str:
    return (f"-> DATA\n<- 354 go\n== elided lines={lines} bytes={nbytes} sha256={'0' * 64} "
            f"tls=no{extra}\n-> .\n<- 250 2.0.0 message accepted\n")


def test_a_transcript_target_port_out_of_range_is_an_error_not_a_traceback(
        tmp_path: Path) -> None:
    path = transcript(tmp_path, "-> NOOP\n<- 250 ok\n", target="127.0.0.1:999999")
    status, out, err = cli(["replay", str(path)], tmp_path)
    assert status is ExitStatus.USAGE, out + err
    assert (f"ERROR {path}: the transcript's target is not HOST:PORT (port 1-65535): "
            "'127.0.0.1:999999'; give --server") in out
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (elided(10**12, 2 * 10**12), "9: elided: bytes= is at most 1073741824 (1 GiB)"),
        ("-> NOOP\n" + "<- 250 " + "x" * (5 << 20) + "\n", "8: line longer than 4194304 bytes"),
    ],
    ids=["huge-elided", "huge-line"],
)
def test_a_hostile_transcript_line_is_one_parse_error(tmp_path: Path, body: str,
                                                      problem: str) -> None:
    path = transcript(tmp_path, body)
    for argv in (["replay", str(path)], ["mock", "--port", "0", "--once", str(path)]):
        status, out, err = cli(argv, tmp_path)
        assert status is ExitStatus.USAGE, out + err
        assert f"{path}:{problem}" in out + err, out + err


def test_a_lone_surrogate_in_a_transcript_is_not_sent(tmp_path: Path) -> None:
    path = transcript(tmp_path, "-> NOOP \\u{d800}\n<- 250 2.0.0 ok\n")
    with serve_in_thread(polite) as srv:
        status, out, err = cli(["replay", "--server", f"127.0.0.1:{srv.port}", str(path)],
                               tmp_path)
        show_status, shown, _ = cli(["show", str(path)], tmp_path)
    assert status is ExitStatus.USAGE, out + err
    assert (f"ERROR {path}:7: \\u{{d800}} is a lone surrogate, not a character: it "
            "cannot be sent (write bytes as \\xHH)") in out
    assert show_status is ExitStatus.OK and "-> NOOP \\u{d800}" in shown


@pytest.mark.parametrize(
    ("file", "problem"),
    [
        ("/dev/zero", "file=/dev/zero: must be a path inside the transcript's folder"),
        ("../t.smtp", "file=../t.smtp: must be a path inside the transcript's folder"),
        ("zero", "file=zero: must be a path inside the transcript's folder"),  # -> /dev/zero
        ("pipe", "file=pipe: not a regular file"),
        ("away", "file=away: must be a path inside the transcript's folder"),
        ("big.eml", "file=big.eml: 4096 bytes, more than the 20 bytes it stands for"),
    ],
)
def test_elided_file_is_read_only_inside_the_folder_regular_and_bounded(
        tmp_path: Path, file: str, problem: str) -> None:
    (tmp_path / "zero").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "away").symlink_to("/etc/hostname")
    (tmp_path / "big.eml").write_bytes(b"x" * 4096)
    path = transcript(tmp_path, elided(2, 20, f" file={file}"))
    with serve_in_thread(polite) as srv:
        status, out, err = cli(["replay", "--server", f"127.0.0.1:{srv.port}", str(path)],
                               tmp_path)
    assert status is ExitStatus.USAGE, out + err
    assert f"ERROR {path}:9: {problem}" in out


def test_replay_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """``smtpshell replay … | head``: the reader goes away; no traceback, status 1."""
    paths = [str(transcript(tmp_path, "-> NOOP\n<- 250 ok\n", target="127.0.0.1:0"))] * 50
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "smtpshell", "replay", *paths],
                              stdout=write_end, stderr=subprocess.PIPE, timeout=60,
                              env={"PATH": "", "HOME": str(tmp_path)})
    finally:
        os.close(write_end)
    assert proc.stderr == b""
    assert proc.returncode == ExitStatus.ERROR


@pytest.mark.parametrize("command", [["show"], ["replay"], ["mock", "--port", "0"]])
def test_a_device_or_a_pipe_as_a_transcript_is_refused_without_reading_it(
        tmp_path: Path, command: list[str]) -> None:
    os.mkfifo(tmp_path / "pipe.smtp")  # nobody writes: opening it for reading must not wait
    for name in ("/dev/zero", str(tmp_path / "pipe.smtp")):
        status, out, err = cli([*command, name], tmp_path)
        assert status is ExitStatus.USAGE, out + err
        assert "not a regular file" in out + err
