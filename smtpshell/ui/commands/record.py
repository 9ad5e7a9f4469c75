"""/record: start or stop writing a transcript in the middle of a session."""

from __future__ import annotations

import errno
import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from ...status import ExitStatus
from .registry import Arg, Flag, Kind, command

if TYPE_CHECKING:
    from ..core import ShellCore


_FAILED: weakref.WeakSet[ShellCore] = weakref.WeakSet()


def recording_failed(core: ShellCore) -> bool:
    """True once a transcript of this session could not be opened or written: the shell's
    exit status is then not 0 (batch mode and the REPL alike)."""
    return core in _FAILED


def start_recording(
    core: ShellCore, path: str, *, overwrite: bool = False, how: str | None = None
) -> bool:
    """Open a transcript at ``path`` and attach it to the session; False on error.

    Typed after connecting, the transcript starts with the connection so far, as the
    shell kept it (``core.backlog``: since the latest connect, long bodies as digests),
    then goes on live: it starts at ``== connect`` and replays against the same server.
    An existing file is never replaced unless ``overwrite`` (``how`` names the way to
    ask for it in the refusal); a symbolic link or a file that is not a regular one
    never is (``transcript.writer``). A refused path leaves a recording going on.
    """
    from ...transcript.backlog import write_backlog
    from ...transcript.recorder import Recorder
    from ...transcript.writer import NotRegularFile

    how = how or f"/record --force {path} replaces it"

    def failed(message: str) -> None:
        _FAILED.add(core)
        core.renderer.error(message)

    def refused(regular: bool) -> bool:
        if regular:
            failed(f"cannot record to {path}: the file exists and is kept ({how})")
        else:
            failed(f"cannot record to {path}: not a regular file (a symbolic link, FIFO,"
                   " device or directory is never written to)")
        return False

    if os.path.lexists(path):  # checked before stopping a recording going on
        regular = os.path.isfile(path) and not os.path.islink(path)
        if not (regular and overwrite):
            return refused(regular)
    stop_recording(core)
    mode = core.options.tls_mode
    if core.session.connected and core.session.is_tls and mode == "plain":
        mode = "starttls"

    try:
        recorder = Recorder(
            path,
            Recorder.header(core.options.target, mode),
            password_env=core.settings.password_env,
            elide_above=core.settings.elide_data,
            overwrite=overwrite,
            on_error=failed,
            environ=core.settings.environ,
        )
    except FileExistsError:  # put there since the check above
        return refused(os.path.isfile(path) and not os.path.islink(path))
    except NotRegularFile:
        return refused(False)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW: a symbolic link put there since
            return refused(False)
        failed(f"cannot record to {path}: {exc.strerror or exc}")
        return False
    # no await from here on: no event can come between the backlog and the live events
    write_backlog(core.backlog, recorder)
    if recorder.error is not None:  # said by ``failed``; nothing is recorded
        recorder.close()
        return False
    core.observers.append(recorder)
    core.session.subscribe(recorder)
    core.recorder = recorder
    core.recording_name = Path(path).name
    return True


def stop_recording(core: ShellCore) -> None:
    recorder = core.recorder
    if recorder is None:
        return
    core.session.unsubscribe(recorder)
    if recorder in core.observers:
        core.observers.remove(recorder)
    recorder.close()
    core.recorder = None
    core.recording_name = None
    if recorder.error is not None:
        _FAILED.add(core)
        core.renderer.error(f"transcript {recorder.path} is incomplete: {recorder.error}")
    else:
        core.renderer.info(f"transcript written to {recorder.path}")


@command("record", "record this session to a transcript file (mode 0600; an existing file"
         " only with --force), or stop recording",
         args=(Arg("FILE", Kind.FILE, words=("off",), optional=True),),
         flags=(Flag("--force"),))
async def _record(core: ShellCore, args: str) -> None:
    arg = args.strip()
    force = False
    first, _, rest = arg.partition(" ")
    head, _, last = arg.rpartition(" ")
    if first == "--force" or last == "--force":
        force, arg = True, (rest if first == "--force" else head).strip()
        if not arg or arg == "off":
            core.renderer.error("/record --force: give the FILE to replace")
            core.status = ExitStatus.ERROR
            return
    if not arg:
        if core.recorder is None:
            core.renderer.info("not recording (/record FILE starts)")
        else:
            core.renderer.info(f"recording to {core.recorder.path}")
        return
    if arg == "off":
        if core.recorder is None:
            core.renderer.info("not recording")
        stop_recording(core)
        return
    if start_recording(core, arg, overwrite=force):
        core.renderer.info(f"recording to {arg}")
    else:
        core.status = ExitStatus.ERROR  # batch mode: this step failed
