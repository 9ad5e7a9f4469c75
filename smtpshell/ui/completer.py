"""prompt_toolkit glue for the completion engine.

``SmtpCompleter`` asks a callable for the current ``CompletionState`` on every
keystroke, so it always sees the live session (after EHLO, STARTTLS, /reconnect).
``HeaderTracker`` is a session observer that knows whether a message's header section
is still open.  ``shell_completer(core)`` wires both to a ``ShellCore``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from ..session import Sent, SessionEvent
from .commands import unique_commands
from .completion_engine import CompletionState, complete, state_from_session
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

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        state = self._get_state()
        cwd = self._cwd() if self._cwd is not None else None
        for s in complete(document.current_line_before_cursor, state, cwd=cwd):
            yield Completion(
                s.text,
                start_position=s.start,
                display=s.display,
                display_meta=s.meta,
                style="" if s.available else UNAVAILABLE_STYLE,
            )


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
