"""The one front end of the shell and the demo: the REPL on a terminal, batch mode otherwise."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..context import Environment
from ..status import ExitStatus

if TYPE_CHECKING:
    from ..session import ConnectOptions
    from ..ui.core import Settings


async def front_end(
    options: ConnectOptions,
    settings: Settings,
    env: Environment,
    *,
    colour: bool,
    show_certs: bool = False,
    record: str | None = None,
    record_overwrite: bool = False,
    history: bool = True,
    intro: Sequence[str] = (),
) -> ExitStatus:
    """Connect and run the session: prompt_toolkit when stdin and stdout are a terminal,
    batch mode (``ui.batch``) when they are not. ``intro`` lines are shown first."""
    from ..ui.commands.record import recording_failed, start_recording
    from ..ui.core import ShellCore
    from ..ui.render import Renderer

    if env.interactive:
        from ..ui.render import pygments_highlighter
        from ..ui.terminal import PromptSecrets, StdoutWriter, start_repl

        renderer = Renderer(StdoutWriter(), colour=colour, hints=settings.hints,
                            highlight=pygments_highlighter(env.background) if colour else None)
    else:
        _bytes_as_typed(env)
        renderer = Renderer(env.stdout, colour=colour, echo=True, arrows=True,
                            hints=settings.hints)
    renderer.show_chain = show_certs
    how = "--record-overwrite replaces it"
    for line in intro:
        renderer.info(line)
    if env.interactive:
        core = ShellCore(options, renderer, prompter=PromptSecrets(), settings=settings,
                         interactive=True)
        if record and not start_recording(core, record, overwrite=record_overwrite,
                                         how=how):
            return ExitStatus.ERROR  # a file that cannot be written: not a usage error
        status = await start_repl(core, history_file=env.history_file if history else None,
                                  colour=colour, background=env.background)
    else:
        from ..ui.batch import run_batch

        core = ShellCore(options, renderer, settings=settings)
        if record and not start_recording(core, record, overwrite=record_overwrite,
                                         how=how):
            return ExitStatus.ERROR
        status = await run_batch(core, env.stdin)
    if status is ExitStatus.OK and recording_failed(core):
        return ExitStatus.ERROR  # the transcript is incomplete or was never written
    return status


def _bytes_as_typed(env: Environment) -> None:
    """Batch mode: bytes that are not UTF-8 go to the server (and the screen) as they are."""
    for stream in (env.stdin, env.stdout):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="surrogateescape")
