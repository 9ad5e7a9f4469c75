"""pytest plugin: transcript files become test items; ``smtp_mock`` tests an SMTP client.

Every ``*.smtp`` file under the transcripts directory (ini ``smtpshell_transcripts``,
default ``transcripts``), or named on the command line, is one test, named after the
file, that replays the transcript.  The server comes from ``--smtpshell-server HOST:PORT``
or the ini option ``smtpshell_server`` (for ``tls: implicit`` transcripts: from
``--smtpshell-tls-server`` or ``smtpshell_tls_server`` when given); when none is given,
the built-in sandbox (CHUNKING on) is started once per test process (so ``pytest -n auto``
gives each worker its own) and its CA is trusted and its password put in
``SMTPSHELL_PASSWORD``.
A failure shows the transcript diff with the line number.

The fixture ``smtp_mock`` is the other direction: it serves a transcript's server side
on 127.0.0.1 (a free port) to the client under test, and the test fails with the diff
of every difference if the client did not follow the transcript.  Only public pytest
APIs are used.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
from collections.abc import Callable, Coroutine, Generator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from .escapes import for_terminal_lines

if TYPE_CHECKING:
    from .sandbox import SandboxThread
    from .transcript.mock import MockResult, MockServer
    from .transcript.model import Transcript
    from .transcript.replay import ReplayOptions, ReplayResult

SUFFIX = ".smtp"
T = TypeVar("T")
_SANDBOX: pytest.StashKey[SandboxThread] = pytest.StashKey()
_OPTIONS: pytest.StashKey[ReplayOptions] = pytest.StashKey()
_RUNNER: pytest.StashKey[asyncio.Runner] = pytest.StashKey()
_MOCKS: pytest.StashKey[list[SmtpMock]] = pytest.StashKey()
_MOCK_TLS: pytest.StashKey[tuple[ssl.SSLContext, Path]] = pytest.StashKey()
_SKIPPED: pytest.StashKey[list[Path]] = pytest.StashKey()
_COLLECTED: pytest.StashKey[int] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("smtpshell", "smtpshell transcripts")
    group.addoption("--smtpshell-server", metavar="HOST:PORT",
                    help="replay transcripts against this server (default: start the sandbox); "
                         "with --smtpshell-tls-server, the plain and STARTTLS ones")
    group.addoption("--smtpshell-tls-server", metavar="HOST:PORT",
                    help="replay implicit-TLS transcripts (tls: implicit) against this server")
    group.addoption("--smtpshell-cafile", metavar="PEM", help="CA file for the server's TLS")
    group.addoption("--smtpshell-insecure", action="store_true",
                    help="do not verify the server's certificate")
    group.addoption("--smtpshell-timeout", type=float, metavar="S",
                    help="reply timeout for transcript replay (default 10)")
    parser.addini("smtpshell_transcripts", "directory whose *.smtp files are collected as tests",
                  default="transcripts")
    parser.addini("smtpshell_server", "HOST:PORT to replay transcripts against", default="")
    parser.addini("smtpshell_tls_server", "HOST:PORT to replay implicit-TLS transcripts against",
                  default="")
    parser.addini("smtpshell_cafile", "CA file for the server's TLS", default="")
    group.addoption("--smtpshell-secret-env", action="append", default=[], metavar="NAME",
                    help="let transcripts' secrets read this environment variable too "
                         "(repeatable; SMTPSHELL_* variables are always allowed)")
    parser.addini("smtpshell_secret_env", "environment variables transcripts' secrets may "
                  "read besides SMTPSHELL_* ones (replay and smtp_mock)", type="linelist",
                  default=[])


def pytest_configure(config: pytest.Config) -> None:
    """A malformed server address is a usage error before anything runs."""
    _servers(config)


def _servers(config: pytest.Config) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
    """``--smtpshell-server`` and ``--smtpshell-tls-server`` (or their ini options)."""
    return (
        _address("--smtpshell-server",
                 config.getoption("smtpshell_server") or config.getini("smtpshell_server")),
        _address("--smtpshell-tls-server",
                 config.getoption("smtpshell_tls_server")
                 or config.getini("smtpshell_tls_server")),
    )


def _transcripts_dirs(config: pytest.Config) -> list[Path]:
    """The transcripts directory, relative to the root directory and, for a relative value,
    also to where pytest was started: ``pytest transcripts/`` without an ini file makes that
    folder the root directory, and ``transcripts`` must still mean it."""
    value = str(config.getini("smtpshell_transcripts") or "transcripts")
    path = Path(value)
    if path.is_absolute():
        return [path.resolve()]
    return [(Path(config.rootpath) / path).resolve(),
            (Path(config.invocation_params.dir) / path).resolve()]


def _named(config: pytest.Config) -> list[Path]:
    """The paths given on the command line (``x.smtp::x`` as ``x.smtp``)."""
    start = Path(config.invocation_params.dir)
    return [(start / arg.split("::")[0]).resolve() for arg in config.args]


def _within(path: Path, base: Path) -> bool:
    return path == base or base in path.parents


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != SUFFIX:
        return None
    config = parent.config
    path = file_path.resolve()
    named = _named(config)
    if path not in named and not any(_within(path, base) for base in _transcripts_dirs(config)):
        # not a transcript test: remember it, in case a named folder yields nothing (below)
        if any(_within(path, arg) for arg in named):
            config.stash.setdefault(_SKIPPED, []).append(file_path)
        return None
    file: TranscriptFile = TranscriptFile.from_parent(parent, path=file_path)
    return file


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[_COLLECTED] = len(session.items)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say why *.smtp files under a folder named on the command line did not run, when
    nothing ran (otherwise ``pytest mail-tests/`` would silently run nothing)."""
    config = terminalreporter.config
    skipped = config.stash.get(_SKIPPED, [])
    if not skipped or config.stash.get(_COLLECTED, 0):
        return
    dirs = " or ".join(sorted({str(d) for d in _transcripts_dirs(config)}))
    terminalreporter.write_line(
        f"smtpshell: {len(skipped)} *.smtp file(s) found but not collected as transcript tests "
        f"(e.g. {skipped[0]}): transcripts are collected under {dirs} (ini option "
        "smtpshell_transcripts) or when the file itself is named on the command line")


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
    from .transcript.replay import ReplayOptions, with_shared_context

    server, tls_server = _servers(config)
    cafile = config.getoption("smtpshell_cafile") or config.getini("smtpshell_cafile") or None
    timeout = config.getoption("smtpshell_timeout") or 10.0
    env = dict(os.environ)
    if server is None and tls_server is None:
        from .sandbox import SandboxConfig, SandboxThread

        # CHUNKING on, so that BDAT transcripts (transcripts/bdat-chunks.smtp) replay too; an
        # EHLO reply with one more capability still matches every recorded one by default
        thread = SandboxThread(SandboxConfig(port=0, tls_port=0, chunking=True))
        sb = thread.start()
        config.stash[_SANDBOX] = thread
        server = (sb.host, sb.port)
        cafile = str(sb.ca_file)
        env.setdefault("SMTPSHELL_PASSWORD", sb.password)
        tls_server = None if sb.tls_port is None else (sb.host, sb.tls_port)
    options = with_shared_context(ReplayOptions(
        server=server,
        tls_server=tls_server,
        tls=TlsOptions(cafile=cafile, insecure=bool(config.getoption("smtpshell_insecure"))),
        timeout=float(timeout),
        env=env,
        trust_advice=_TRUST_ADVICE,
        tls_server_option="--smtpshell-tls-server",
        secret_env=_secret_env(config),
        secret_env_option=_SECRET_ENV_OPTION,
    ))
    config.stash[_OPTIONS] = options
    return options


_SECRET_ENV_OPTION = "--smtpshell-secret-env"  # or ini smtpshell_secret_env


def _secret_env(config: pytest.Config) -> frozenset[str]:
    """The variables secrets may read besides ``SMTPSHELL_*`` (option and ini)."""
    names = [*(config.getoption("smtpshell_secret_env") or []),
             *(config.getini("smtpshell_secret_env") or [])]
    return frozenset(str(n) for n in names)


_TRUST_ADVICE = ("ways forward: trust the server's CA with --smtpshell-cafile FILE (ini "
                 "smtpshell_cafile; for the sandbox: the CA file `smtpshell sandbox` prints), "
                 "or replay without checking the certificate with --smtpshell-insecure")


def _address(option: str, value: object) -> tuple[str, int] | None:
    from .transcript.replay import split_target

    if not value:
        return None
    try:
        return split_target(str(value))
    except ValueError as exc:
        raise pytest.UsageError(f"{option} (or its ini option): {exc}") from None


class TranscriptFailure(Exception):
    def __init__(self, result: ReplayResult) -> None:
        super().__init__(result.message)
        self.result = result


class TranscriptFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield TranscriptItem.from_parent(self, name=self.path.stem)


class TranscriptItem(pytest.Item):
    """The replay runs in the setup phase, so that a setup problem (an unreadable
    transcript, no server, a refused certificate: ``smtpshell replay``'s exit status 2) is
    reported as an error; a difference from the transcript fails the test itself."""

    _result: ReplayResult | None = None

    def setup(self) -> None:
        self._result = self._replay()
        if self._result.status == "error":
            pytest.fail(for_terminal_lines(self._result.render()), pytrace=False)

    def runtest(self) -> None:
        result = self._result if self._result is not None else self._replay()
        if not result.passed:
            raise TranscriptFailure(result)

    def _replay(self) -> ReplayResult:
        from .transcript.model import TranscriptError
        from .transcript.replay import replay
        from .transcript.syntax import load

        options = _options(self.config)
        try:
            transcript = load(self.path)
        except TranscriptError as exc:
            return _error(str(self.path), str(exc))
        return _runner(self.config).run(replay(transcript, options))

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if isinstance(excinfo.value, TranscriptFailure):
            return for_terminal_lines(excinfo.value.result.render())  # quotes the server
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"transcript {self.path.name}"


def _error(source: str, message: str) -> ReplayResult:
    from .transcript.replay import ReplayResult

    return ReplayResult(source, "error", message)


# --------------------------------------------------------------------------- smtp_mock


class SmtpMock:
    """A transcript served by the mock on 127.0.0.1 for one test: point the client under test
    at ``host``:``port``; trust ``cafile`` (or use ``client_context()``) when the transcript
    has STARTTLS or implicit TLS. A transcript with several ``== connect`` is served one
    connection per block, in order; when it mixes implicit TLS with plain/STARTTLS
    connections, the implicit-TLS ones are served on ``tls_port`` (``port`` serves the
    others; for an all-implicit transcript both are the same port, for one without
    implicit TLS ``tls_port`` is None). The test fails at its end if the client did not
    follow."""

    def __init__(self, server: MockServer, cafile: Path | None, connections: int,
                 timeout: float) -> None:
        self.server = server
        self.transcript: Transcript = server.transcript
        self.host: str = server.host
        self.cafile: str | None = None if cafile is None else str(cafile)
        self.connections = connections
        self.timeout = timeout
        self._report: str | None = None
        self._finished = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="smtp_mock",
                                        daemon=True)
        self._thread.start()
        try:
            self._call(server.start())
        except BaseException:
            self.close()
            raise

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def tls_port(self) -> int | None:
        """The port of the transcript's implicit-TLS connections (see the class)."""
        return self.server.tls_port

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def results(self) -> list[MockResult]:
        """One result per finished connection (see ``MockResult.render()``)."""
        return list(self.server.results)

    def client_context(self) -> ssl.SSLContext:
        """A client-side TLS context that trusts the mock's certificate."""
        return ssl.create_default_context(cafile=self.cafile)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def finish(self) -> str | None:
        """Wait for the connections the client opened to end (at most ``timeout`` s each),
        stop the mock and return the report of what went wrong, or None if nothing did."""
        if self._finished:
            return self._report
        self._finished = True
        self._call(_settle())  # a connection the client made just now is accepted first
        expected = min(self.connections, self.server.accepted)
        if expected:
            try:
                self._call(asyncio.wait_for(self.server.wait(expected), self.timeout))
            except TimeoutError:
                pass  # stop() below ends the session with an error result
        self._call(self.server.stop())
        results = self.server.results
        problems = [r.render() for r in results if not r.ok]
        if len(results) < self.connections:
            problems.append(
                f"the client made {len(results)} connection(s) to the mock, the test expects "
                f"{self.connections} (it served {self._where()} at {self.host}:{self.port})")
        self._report = for_terminal_lines(  # the problems quote what the client sent
            "smtp_mock: the client did not follow " + self._where() + "\n" + "\n".join(problems)
        ) if problems else None
        return self._report

    def _where(self) -> str:
        source = self.transcript.source
        return "the transcript" if source == "<string>" else source

    def close(self) -> None:
        """Stop the mock (if running) and its thread."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            if not self._finished:
                self._call(self.server.stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()


async def _settle() -> None:
    """Let the event loop run the callbacks already due (no waiting on a clock)."""
    for _ in range(8):
        await asyncio.sleep(0)


def _mock_tls(config: pytest.Config, factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext,
                                                                              Path]:
    """One throw-away CA and server certificate per test process (trustme)."""
    if _MOCK_TLS not in config.stash:
        from .cli.serving import make_server_context

        ca_file = factory.mktemp("smtp_mock") / "ca.pem"
        context = make_server_context(["localhost", "127.0.0.1", "::1"], ca_file)
        config.stash[_MOCK_TLS] = (context, ca_file)
    return config.stash[_MOCK_TLS]


@pytest.fixture
def smtp_mock(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., SmtpMock]]:
    """``smtp_mock("welcome.smtp")`` serves that transcript (a path relative to the test
    file's folder) on 127.0.0.1 and returns an :class:`SmtpMock` with ``host``, ``port``
    and ``cafile`` (and ``tls_port`` for the implicit-TLS connections of a transcript that
    mixes kinds). Keywords: ``connections`` (how many the client makes, default one per
    ``== connect`` of the transcript),
    ``timeout`` (seconds to wait for the client, default 10), ``env`` (variables for the
    transcript's secrets, default ``os.environ``: a secret whose variable is set is
    checked, and a wrong password gets ``535``; only ``SMTPSHELL_*`` variables and those
    allowed with ``--smtpshell-secret-env NAME`` or ini ``smtpshell_secret_env``). At the
    end of the test, the test fails with the transcript diff if the client did not follow
    the transcript."""
    started: list[SmtpMock] = []
    request.node.stash[_MOCKS] = started

    def start(transcript: str | os.PathLike[str], *, connections: int | None = None,
              timeout: float = 10.0, env: Mapping[str, str] | None = None) -> SmtpMock:
        from .transcript.mock import MockServer, needs_tls
        from .transcript.mock import connections as served
        from .transcript.model import TranscriptError
        from .transcript.syntax import load

        path = Path(transcript)
        if not path.is_absolute():
            path = Path(request.path).parent / path
        try:
            loaded = load(path)
            context, cafile = (_mock_tls(request.config, tmp_path_factory)
                               if needs_tls(loaded) else (None, None))
            count = len(served(loaded)) if connections is None else connections
            server = MockServer(loaded, "127.0.0.1", 0, ssl_context=context, timeout=timeout,
                                max_connections=count,
                                env=dict(os.environ if env is None else env),
                                secret_env=_secret_env(request.config),
                                secret_env_option=_SECRET_ENV_OPTION)
        except (TranscriptError, ValueError) as exc:
            pytest.fail(f"smtp_mock: {exc}", pytrace=False)
        mock = SmtpMock(server, cafile, count, timeout)
        started.append(mock)
        return mock

    yield start
    for mock in started:
        mock.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """After the test function: the test fails if a client did not follow an ``smtp_mock``
    transcript (when the test failed on its own, the mock's report is added as a note)."""
    try:
        outcome = yield
    except Exception as exc:
        report = _mock_report(item)
        if report is not None:
            exc.add_note(report)
        raise
    report = _mock_report(item)
    if report is not None:
        pytest.fail(report, pytrace=False)
    return outcome


def _mock_report(item: pytest.Item) -> str | None:
    reports = [r for r in (m.finish() for m in item.stash.get(_MOCKS, [])) if r is not None]
    return "\n".join(reports) if reports else None
