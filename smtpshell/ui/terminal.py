"""Starting the interactive shell: the connection opens while prompt_toolkit loads.

prompt_toolkit and pygments take about a third of the shell's start-up to import.
``start_repl`` imports them in a worker thread while the event loop opens the
connection, so the greeting is on the screen as soon as it arrives and the prompt
follows when the modules are ready: the start costs the longer of the two, not their
sum (which matters most with a distant server or one that delays its greeting).

Until the prompt exists, output goes straight to the terminal; ``run_repl`` then puts
prompt_toolkit's stdout patch in place.  This module imports neither library itself.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..escapes import for_terminal
from ..status import ExitStatus
from .core import ShellCore

if TYPE_CHECKING:
    from types import ModuleType

    from prompt_toolkit.input import Input
    from prompt_toolkit.output import Output


class StdoutWriter:
    """A text stream that always writes to the current ``sys.stdout``.

    The renderer is built before ``patch_stdout`` swaps ``sys.stdout``; this
    indirection sends its output through the patch, above the prompt.
    """

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()

    def isatty(self) -> bool:
        return True


class PromptSecrets:
    """The REPL's Prompter: secrets without echo, yes/no questions.

    prompt_toolkit is imported when a question is first asked (a password asked for
    while connecting waits, at most, for the loading thread to finish the import).
    """

    def __init__(self, input: Input | None = None, output: Output | None = None) -> None:
        self._input = input
        self._output = output

    async def _ask(self, message: str, *, is_password: bool = False) -> str:
        from prompt_toolkit import PromptSession

        session: PromptSession[str] = PromptSession(input=self._input, output=self._output)
        # the question may quote a user or file name: escaped like all outside text
        return await session.prompt_async(for_terminal(message), is_password=is_password)

    async def text(self, label: str) -> str | None:
        try:
            return (await self._ask(f"{label}: ")).strip() or None
        except (EOFError, KeyboardInterrupt):
            return None

    async def secret(self, label: str) -> str | None:
        try:
            return await self._ask(f"{label}: ", is_password=True)
        except (EOFError, KeyboardInterrupt):
            return None

    async def confirm(self, question: str) -> bool:
        """y/yes or n/no/empty; anything else (a command typed ahead) is asked again,
        never taken for "no" and lost."""
        label = f"{question} [y/N] "
        while True:
            try:
                answer = (await self._ask(label)).strip().lower()
            except (EOFError, KeyboardInterrupt):
                return False
            if answer in ("y", "yes", "n", "no", ""):
                return answer in ("y", "yes")
            label = "Please answer y or n (nothing was sent): [y/N] "


def load_prompt_ui() -> ModuleType:
    """Import everything the prompt needs (run in a worker thread); return ``ui.app``."""
    import pygments.formatters.terminal256  # noqa: F401  (the replies' highlighting)

    from . import app

    return app


async def start_repl(
    core: ShellCore,
    *,
    history_file: Path | None,
    colour: bool = True,
    background: str = "dark",
) -> ExitStatus:
    """Connect while the prompt's modules load, then run the REPL."""
    loading = asyncio.ensure_future(asyncio.to_thread(load_prompt_ui))
    try:
        status = await core.connect()
    except BaseException:
        loading.cancel()  # the thread finishes its import; nobody waits for the result
        raise
    app = await loading
    result: ExitStatus = await app.run_repl(
        core, history_file=history_file, colour=colour, background=background,
        connected=status,
    )
    return result
