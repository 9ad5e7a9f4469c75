"""prompt_toolkit glue for the completion engine.

``SmtpCompleter`` asks a callable for the current ``CompletionState`` on every
keystroke, so it always sees the live session (after EHLO, STARTTLS, /reconnect).
Where a meta-command takes a file, prompt_toolkit's ``PathCompleter`` lists them.
``HeaderTracker`` is a session observer that knows whether a message's header section
is still open.  ``shell_completer(core)`` wires both to a ``ShellCore``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from ..session import Sent, SessionEvent
from .commands import unique_commands
from .completion_engine import CompletionState, complete, file_argument, state_from_session

if TYPE_CHECKING:
    from .core import ShellCore

__all__ = ["UNAVAILABLE_STYLE", "HeaderTracker", "SmtpCompleter", "shell_completer"]

UNAVAILABLE_STYLE = "class:completion-menu.completion.unavailable fg:ansibrightblack"
"""How suggestions the server did not advertise look in the menu."""


class SmtpCompleter(Completer):
    """Completes SMTP verbs, their arguments, meta-commands and file names."""

    def __init__(
        self,
        get_state: Callable[[], CompletionState],
        *,
        cwd: Callable[[], str | None] | None = None,
    ) -> None:
        self._get_state = get_state
        self._cwd = cwd
        self._paths = PathCompleter(expanduser=True, get_paths=self._search_paths)

    def _search_paths(self) -> list[str]:
        cwd = self._cwd() if self._cwd is not None else None
        return [cwd or "."]

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        state = self._get_state()
        before = document.current_line_before_cursor
        for s in complete(before, state):
            yield Completion(
                s.text,
                start_position=s.start,
                display=s.display,
                display_meta=s.meta,
                style="" if s.available else UNAVAILABLE_STYLE,
            )
        partial = file_argument(before, state)
        if partial is not None:
            yield from self._files(partial, complete_event)

    def _files(self, partial: str, complete_event: CompleteEvent) -> Iterable[Completion]:
        """File names for ``partial``; hidden ones only when a "." is typed."""
        hidden = os.path.basename(partial).startswith(".")
        for c in self._paths.get_completions(Document(partial), complete_event):
            if not c.text or (c.display_text.startswith(".") and not hidden):
                continue
            is_dir = c.display_text.endswith("/")
            yield Completion(c.text + ("/" if is_dir else ""), start_position=0,
                             display=c.display_text,
                             display_meta="directory" if is_dir else "file")  # fmt: skip


class HeaderTracker:
    """Observer: True while the lines sent in DATA mode are still message headers.

    An empty line ends the header section; any line sent outside DATA (the DATA
    command itself included) opens a new one for the next message.
    """

    def __init__(self) -> None:
        self.in_headers = True

    def __call__(self, event: SessionEvent) -> None:
        if isinstance(event, Sent):
            if not event.in_data:
                self.in_headers = True
            elif event.text == "":
                self.in_headers = False


def shell_completer(core: ShellCore) -> SmtpCompleter:
    """A completer reading ``core.session`` live; installs a ``HeaderTracker`` on ``core``."""
    tracker = HeaderTracker()
    core.observers.append(tracker)  # sessions made by /reconnect get it too
    core.session.subscribe(tracker)

    def state() -> CompletionState:
        return state_from_session(
            core.session, unique_commands(), data_headers=tracker.in_headers
        )

    return SmtpCompleter(state)
