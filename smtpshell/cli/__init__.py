"""Command line: ``main(argv, env) -> ExitStatus``, one module per sub-command.

    smtpshell HOST [PORT]          the shell: interactive, or batch when stdin is not a terminal
    smtpshell sandbox              run the local test server
    smtpshell demo                 sandbox + shell in one process, CA trusted
    smtpshell replay FILE|DIR      replay transcripts against a server
    smtpshell mock FILE            serve a transcript's server side to a client
    smtpshell show FILE            print a transcript highlighted, or as HTML

Each sub-command module (``cli/shell.py``, ``cli/sandbox.py``…) has ``build_parser()`` and
``run(args, env) -> ExitStatus``. ``main`` picks the module by the first word (argparse's
own sub-parsers cannot sit beside the shell's optional ``HOST`` positional), parses, runs,
and is the one place where ``SystemExit``, usage errors, a closed pipe, output that cannot
be written (a full disk, ``>/dev/full``) and Ctrl-C become an exit status.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ..context import Environment
from ..escapes import for_terminal
from ..status import ExitStatus
from .common import UsageError, parse_target

__all__ = ["SUBCOMMANDS", "UsageError", "main", "parse_target", "run"]

SUBCOMMANDS = ("sandbox", "demo", "replay", "mock", "show")


class _Watched:
    """A standard stream that remembers the first write or flush that failed.

    The error is raised as before (a sub-command stops there); but a caller that swallows
    it (the session keeps going when an observer such as the renderer fails) cannot hide
    it: ``main`` looks at ``failed`` when the command returns."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.failed: OSError | None = None

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            self.failed = self.failed or exc
            raise

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            self.failed = self.failed or exc
            raise

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, reconfigure, encoding…
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> ExitStatus:
    env = env or Environment()
    out, err = _Watched(env.stdout), _Watched(env.stderr)
    env = dataclasses.replace(env, stdout=out, stderr=err)  # type: ignore[arg-type]
    status = _main(argv, env)
    failed = out.failed or err.failed
    if failed is None:
        return status
    if isinstance(failed, BrokenPipeError):  # `smtpshell replay … | head`: the reader has gone
        _quiet_broken_pipe(env)
    else:
        which = "standard output" if out.failed else "standard error"
        _say(env, f"smtpshell: cannot write to {which}: {failed.strerror or failed}")
        if out.failed:
            _quiet_broken_pipe(env)  # what is still buffered is not written again at exit
    return status if status is not ExitStatus.OK else ExitStatus.ERROR


def _main(argv: Sequence[str] | None, env: Environment) -> ExitStatus:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv[0] if argv and argv[0] in SUBCOMMANDS else "shell"
    if name != "shell":
        argv = argv[1:]
    module = importlib.import_module(f"{__name__}.{name}")
    parser = module.build_parser()
    try:
        with contextlib.redirect_stdout(env.stdout), contextlib.redirect_stderr(env.stderr):
            args = parser.parse_args(argv)
        status: ExitStatus = module.run(args, env)
        return status
    except SystemExit as exc:  # argparse: --help, --version (0) or a usage error (2)
        return ExitStatus.OK if exc.code in (0, None) else ExitStatus.USAGE
    except UsageError as exc:
        _say(env, f"{parser.prog}: {exc}")
        return exc.status
    except BrokenPipeError:  # `smtpshell replay … | head`: the reader has gone
        _quiet_broken_pipe(env)
        return ExitStatus.ERROR
    except OSError:
        if not (_failed(env.stdout) or _failed(env.stderr)):
            raise
        return ExitStatus.ERROR  # main says it in one line
    except KeyboardInterrupt:
        _say(env, f"{parser.prog}: interrupted")
        return ExitStatus.INTERRUPTED


def _failed(stream: object) -> bool:
    return isinstance(stream, _Watched) and stream.failed is not None


def _say(env: Environment, line: str) -> None:
    """One error line; it may quote a host, a file, a profile value or a server's words,
    so it is escaped for the terminal."""
    with contextlib.suppress(OSError, ValueError):
        env.stderr.write(for_terminal(line) + "\n")
        env.stderr.flush()


def _quiet_broken_pipe(env: Environment) -> None:
    """Stop Python from reporting the closed pipe again when it flushes stdout at exit."""
    import os

    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, env.stdout.fileno())
        os.close(devnull)


def run() -> None:
    """Console-script entry point."""
    sys.exit(int(main()))
