"""The interactive shell (prompt_toolkit).

Replies are printed by the session's observers as they arrive, also while the user
is typing (``patch_stdout`` keeps the prompt below them).  Ctrl-C clears the line at
the prompt and interrupts a wait for a reply; Ctrl-D sends QUIT and leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import HTML, FormattedText
from prompt_toolkit.history import FileHistory
from prompt_toolkit.input import Input
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.output import ColorDepth, Output
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.styles import Style, merge_styles, style_from_pygments_dict

from ..escapes import for_terminal
from ..status import ExitStatus
from .completer import shell_completer
from .core import ShellCore
from .lexer import SmtpLexer, style_for
from .toolbar import TOOLBAR_STYLE, toolbar_fragments


class PrivateFileHistory(FileHistory):
    """File history created with mode 0600, storing only the redacted form of lines."""

    def __init__(self, filename: str | Path, redact: Callable[[str], str] | None = None) -> None:
        path = Path(filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
        try:
            os.fchmod(fd, 0o600)  # an older, world-readable file is tightened too
        finally:
            os.close(fd)
        self.redact = redact
        super().__init__(str(path))

    def store_string(self, string: str) -> None:
        super().store_string(self.redact(string) if self.redact else string)


def prompt_text(core: ShellCore) -> HTML:
    s = core.session.snapshot()
    parts = [f"<b>{_esc(core.options.target)}</b>"]
    if not s.connected:
        parts.append("<ansired>closed</ansired>")
    elif s.tls:
        parts.append("<ansigreen>TLS</ansigreen>")
    else:
        parts.append("<ansiyellow>plain</ansiyellow>")
    if s.authenticated:
        parts.append(f"<ansicyan>{_esc(s.auth_user or 'authenticated')}</ansicyan>")
    if s.in_data:
        parts.append("<ansimagenta>DATA (end with a lone '.')</ansimagenta>")
    elif s.in_auth:
        parts.append("<ansimagenta>AUTH</ansimagenta>")
    return HTML(" ".join(parts) + "&gt; ")


def _esc(text: str) -> str:
    """Outside text (target, user name) for the prompt: terminal-escaped, then HTML-escaped."""
    return for_terminal(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@contextlib.contextmanager
def _sigint_cancels(task: asyncio.Task[None]) -> Iterator[None]:
    """While waiting for the server, Ctrl-C cancels the wait instead of killing the shell."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, task.cancel)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def run_repl(
    core: ShellCore,
    *,
    history_file: Path | None,
    input: Input | None = None,
    output: Output | None = None,
    colour: bool = True,
    background: str = "dark",
    connected: ExitStatus | None = None,
) -> ExitStatus:
    """The prompt loop.  ``connected``: the status of a connect already made (by
    ``terminal.start_repl``); without it, ``run_repl`` connects first."""
    history = None
    if history_file is not None:
        try:
            history = PrivateFileHistory(history_file, core.redact_for_history)
        except OSError as exc:
            core.renderer.warn(f"history disabled: cannot use {history_file} "
                               f"({exc.strerror or exc})")
    style = merge_styles(
        [style_from_pygments_dict(style_for(background)), Style.from_dict(TOOLBAR_STYLE)]
    )
    session: PromptSession[str] = PromptSession(
        history=history,
        input=input,
        output=output,
        completer=shell_completer(core),
        complete_while_typing=True,
        lexer=PygmentsLexer(SmtpLexer) if colour else None,
        style=style,
        color_depth=None if colour else ColorDepth.MONOCHROME,
        # toolbar.py stays free of prompt_toolkit; FormattedText is its list type
        bottom_toolbar=lambda: FormattedText(toolbar_fragments(
            core.session.snapshot(), core.settings, recording=core.recording_name
        )),
    )
    with patch_stdout(raw=True):
        status = await core.connect() if connected is None else connected
        if status is not ExitStatus.OK:
            core.renderer.info("type /reconnect to try again, /quit to leave")
        core.renderer.info("type /help for the shell's commands; SMTP lines go to the server")
        while not core.quit_requested:
            try:
                line = await session.prompt_async(lambda: prompt_text(core))
            except KeyboardInterrupt:
                continue
            except EOFError:
                await core.run_meta("quit", "")
                break
            task = asyncio.ensure_future(core.handle_text(line))
            with _sigint_cancels(task):
                try:
                    await task
                except asyncio.CancelledError:
                    # The session closed the connection itself when the interrupt left it
                    # in no state to go on (TLS handshake, a message sent in part) and
                    # said why; otherwise only the wait for a reply was interrupted.
                    if core.session.connected:
                        core.renderer.warn("interrupted; a reply still pending will be shown "
                                           "when it arrives")
    await core.close()
    if core.left_inside_data:
        # the message was begun and never ended with ".": the status says so, as in batch
        core.renderer.error("the shell was left inside DATA: the message was not sent "
                            "(no final '.')")
        return ExitStatus.DATA
    return ExitStatus.OK
