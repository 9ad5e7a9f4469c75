"""Hostile files and option values: one line, exit 2, before connecting, bounded reads.

Every case runs ``main`` against a listening socket that must never see a connection
(``untouched``): the problem is found before the shell connects. Reads are bounded by
construction (``read_small_file``): the tests assert the error line, never a time."""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtpshell.cli import main
from smtpshell.context import Environment, SmallFileError, read_small_file
from smtpshell.status import ExitStatus


@pytest.fixture
def untouched() -> Iterator[int]:
    """A port that listens; the test fails if anything connected to it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        yield listener.getsockname()[1]
        with pytest.raises(BlockingIOError):
            listener.accept()


def cli(argv: list[str], tmp_path: Path) -> tuple[ExitStatus, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO("EHLO me\nQUIT\n"), stdout=out, stderr=err,
                      environ={}, stdin_isatty=False, stdout_isatty=False,
                      config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    status = main(argv, env)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)  # nobody ever opens the writing end: a blocking open would hang
    return path


def config(tmp_path: Path) -> Path:
    path = tmp_path / "config" / "config.toml"
    path.parent.mkdir(exist_ok=True)
    return path


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "directory", "too-big"])
def test_a_config_file_that_is_not_a_small_regular_file(kind: str, tmp_path: Path,
                                                         fifo: Path, untouched: int) -> None:
    path = config(tmp_path)
    if kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        path.symlink_to(fifo)
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"# " + b"x" * (1024 * 1024) + b"\n")
    status, out, err = cli(["-p", "p"], tmp_path)
    problem = "is larger than 1048576 bytes" if kind == "too-big" else "is not a regular file"
    assert (status, out, err) == (ExitStatus.USAGE, "", f"smtpshell: {path} {problem}\n")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("timeout = -5", "timeout must be a positive number of seconds, not -5.0"),
        ("timeout = nan", "timeout must be a positive number of seconds, not nan"),
        ("reply_timeout = inf", "reply_timeout must be a positive number of seconds, not inf"),
        ("connect_timeout = 0", "connect_timeout must be a positive number of seconds, not 0.0"),
        ('ehlo = "' + "a" * 256 + '"', "ehlo is longer than 255 octets"),
        ('ehlo = "' + "a" * 1_000_000 + '"', "ehlo is longer than 255 octets"),
        ('ehlo = "a\\r\\nRSET"', "ehlo contains a control character"),
        ('ehlo = "two words"', "ehlo must be one word, not 'two words'"),
        ('cafile = "' + "c" * 5000 + '"', "cafile is longer than 4096 characters"),
    ],
    ids=["negative", "nan", "inf", "zero", "ehlo-256", "ehlo-1MB", "ehlo-crlf",
         "ehlo-space", "long-path"],
)
def test_a_bad_value_in_a_profile_is_a_usage_error_before_connecting(
        line: str, problem: str, tmp_path: Path, untouched: int) -> None:
    path = config(tmp_path)
    path.write_text(f'[profiles.p]\nhost = "127.0.0.1"\nport = {untouched}\n{line}\n')
    status, out, err = cli(["-p", "p"], tmp_path)
    assert (status, out) == (ExitStatus.USAGE, "")
    assert err == f"smtpshell: {path}: profile 'p': {problem}\n"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--ehlo", "a\r\nRSET"], "--ehlo: not one word of printable text: 'a\\r\\nRSET'"),
        (["--ehlo", "a b"], "--ehlo: not one word of printable text: 'a b'"),
        (["--ehlo", ""], "--ehlo: empty name"),
        (["--ehlo", "a" * 256], "--ehlo: longer than 255 octets or not UTF-8 text"),
        (["--cafile", "/dev/zero"], "--cafile: /dev/zero is not a regular file"),
        (["--cafile", "/nonexistent/ca.pem"], "--cafile: /nonexistent/ca.pem: no such file"),
        (["--cert", "/dev/null"], "--cert: /dev/null is not a regular file"),
        (["--password-file", "/dev/zero", "--auth", "plain", "--user", "u"],
         "--password-file: /dev/zero is not a regular file"),
    ],
    ids=["ehlo-crlf", "ehlo-space", "ehlo-empty", "ehlo-long", "cafile-device",
         "cafile-missing", "cert-device", "password-dev-zero"],
)
def test_a_bad_option_value_is_a_usage_error_before_connecting(
        args: list[str], problem: str, tmp_path: Path, untouched: int) -> None:
    status, out, err = cli([*args, "127.0.0.1", str(untouched)], tmp_path)
    assert (status, out, err) == (ExitStatus.USAGE, "", f"smtpshell: {problem}\n")


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "0"])
@pytest.mark.parametrize("option", ["--timeout", "--connect-timeout", "--reply-timeout"])
def test_a_timeout_that_is_not_finite_and_positive_is_a_usage_error(
        option: str, value: str, tmp_path: Path, untouched: int) -> None:
    status, _, err = cli([f"{option}={value}", "127.0.0.1", str(untouched)], tmp_path)
    assert status is ExitStatus.USAGE
    assert err.splitlines()[-1] == (f"smtpshell: error: argument {option}: "
                                    f"not a positive number of seconds: {value!r}")


@pytest.mark.parametrize("kind", ["fifo", "too-big", "empty", "not-utf8"])
def test_a_password_file_that_cannot_give_a_password(kind: str, tmp_path: Path, fifo: Path,
                                                     untouched: int) -> None:
    path = fifo
    if kind != "fifo":
        path = tmp_path / "password"
        path.write_bytes({"too-big": b"p" * (64 * 1024 + 1), "empty": b"\n",
                          "not-utf8": b"caf\xe9\n"}[kind])
    problem = {"fifo": "is not a regular file", "too-big": "is larger than 65536 bytes",
               "empty": "is empty", "not-utf8": "is not UTF-8 text"}[kind]
    status, out, err = cli(["--password-file", str(path), "--auth", "plain", "--user", "u",
                            "127.0.0.1", str(untouched)], tmp_path)
    assert (status, out, err) == (ExitStatus.USAGE, "",
                                  f"smtpshell: --password-file: {path} {problem}\n")


def test_read_small_file_reads_up_to_the_limit_and_no_further(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    assert read_small_file(path, 10) == b"x" * 10
    with pytest.raises(SmallFileError) as too_big:
        read_small_file(path, 9)
    assert str(too_big.value) == f"{path} is larger than 9 bytes"
    with pytest.raises(SmallFileError) as device:
        read_small_file("/dev/zero", 10)
    assert str(device.value) == "/dev/zero is not a regular file"

