"""pytest plugin: transcript files become test items.

Every ``*.smtp`` file under the transcripts directory (ini ``smtpshell_transcripts``,
default ``transcripts``) is one test, named after the file, that replays the
transcript.  The server comes from ``--smtpshell-server HOST:PORT`` or the ini
option ``smtpshell_server``; when neither is given, the built-in sandbox is
started once per test process (so ``pytest -n auto`` gives each worker its own) and
its CA is trusted and its password put in ``SMTPSHELL_PASSWORD``.  A failure shows
the transcript diff with the line number.  Only public pytest APIs are used.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .sandbox import SandboxThread
    from .transcript.replay import ReplayOptions, ReplayResult

SUFFIX = ".smtp"
_SANDBOX: pytest.StashKey[SandboxThread] = pytest.StashKey()
_OPTIONS: pytest.StashKey[ReplayOptions] = pytest.StashKey()
_IMPLICIT_PORT: pytest.StashKey[int | None] = pytest.StashKey()
_RUNNER: pytest.StashKey[asyncio.Runner] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("smtpshell", "smtpshell transcripts")
    group.addoption("--smtpshell-server", metavar="HOST:PORT",
                    help="replay transcripts against this server (default: start the sandbox)")
    group.addoption("--smtpshell-cafile", metavar="PEM", help="CA file for the server's TLS")
    group.addoption("--smtpshell-insecure", action="store_true",
                    help="do not verify the server's certificate")
    group.addoption("--smtpshell-timeout", type=float, metavar="S",
                    help="reply timeout for transcript replay (default 10)")
    parser.addini("smtpshell_transcripts", "directory whose *.smtp files are collected as tests",
                  default="transcripts")
    parser.addini("smtpshell_server", "HOST:PORT to replay transcripts against", default="")
    parser.addini("smtpshell_cafile", "CA file for the server's TLS", default="")


def _transcripts_dir(config: pytest.Config) -> Path:
    value = str(config.getini("smtpshell_transcripts") or "transcripts")
    path = Path(value)
    return path if path.is_absolute() else Path(config.rootpath) / path


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != SUFFIX:
        return None
    base = _transcripts_dir(parent.config).resolve()
    try:
        file_path.resolve().relative_to(base)
    except ValueError:
        return None
    file: TranscriptFile = TranscriptFile.from_parent(parent, path=file_path)
    return file


def pytest_unconfigure(config: pytest.Config) -> None:
    runner = config.stash.get(_RUNNER, None)
    if runner is not None:
        runner.close()
    sandbox = config.stash.get(_SANDBOX, None)
    if sandbox is not None:
        sandbox.stop()


def _runner(config: pytest.Config) -> asyncio.Runner:
    """One event loop for all the transcripts of this process (a new loop per item
    cost as much as a third of a replay)."""
    if _RUNNER not in config.stash:
        config.stash[_RUNNER] = asyncio.Runner()
    return config.stash[_RUNNER]


def _options(config: pytest.Config) -> ReplayOptions:
    """Where and how to replay; starts the sandbox the first time it is needed."""
    if _OPTIONS in config.stash:
        return config.stash[_OPTIONS]
    from .tls import TlsOptions
    from .transcript.replay import ReplayOptions, split_target, with_shared_context

    server_text = config.getoption("smtpshell_server") or config.getini("smtpshell_server")
    cafile = config.getoption("smtpshell_cafile") or config.getini("smtpshell_cafile") or None
    timeout = config.getoption("smtpshell_timeout") or 10.0
    env = dict(os.environ)
    if server_text:
        server = split_target(str(server_text))
    else:
        from .sandbox import SandboxConfig, SandboxThread

        thread = SandboxThread(SandboxConfig(port=0, tls_port=0))
        sb = thread.start()
        config.stash[_SANDBOX] = thread
        server = (sb.host, sb.port)
        cafile = str(sb.ca_file)
        env.setdefault("SMTPSHELL_PASSWORD", sb.password)
        config.stash[_IMPLICIT_PORT] = sb.tls_port
    options = with_shared_context(ReplayOptions(
        server=server,
        tls=TlsOptions(cafile=cafile, insecure=bool(config.getoption("smtpshell_insecure"))),
        timeout=float(timeout),
        env=env,
    ))
    config.stash[_OPTIONS] = options
    return options


class TranscriptFailure(Exception):
    def __init__(self, result: ReplayResult) -> None:
        super().__init__(result.message)
        self.result = result


class TranscriptFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield TranscriptItem.from_parent(self, name=self.path.stem)


class TranscriptItem(pytest.Item):
    def runtest(self) -> None:
        from dataclasses import replace

        from .transcript.model import TranscriptError
        from .transcript.replay import replay
        from .transcript.syntax import load

        options = _options(self.config)
        try:
            transcript = load(self.path)
        except TranscriptError as exc:
            raise TranscriptFailure(_error(str(self.path), str(exc))) from None
        if transcript.header.tls_mode == "implicit" and _SANDBOX in self.config.stash:
            port = self.config.stash.get(_IMPLICIT_PORT, None)
            if port is not None and options.server is not None:
                options = replace(options, server=(options.server[0], port))
        result = _runner(self.config).run(replay(transcript, options))
        if not result.passed:
            raise TranscriptFailure(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if isinstance(excinfo.value, TranscriptFailure):
            return excinfo.value.result.render()
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"transcript {self.path.name}"


def _error(source: str, message: str) -> ReplayResult:
    from .transcript.replay import ReplayResult

    return ReplayResult(source, "error", message)
