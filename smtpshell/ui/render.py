"""Turn session events into coloured lines of text: the one terminal-safe writer.

Used by the REPL (through prompt_toolkit's stdout patching) and by batch mode, so
it writes plain text with ANSI colour and imports neither prompt_toolkit nor
pygments (batch mode must start fast).

Terminal safety lives here, at one point: every string the Renderer prints goes through
``escapes.for_terminal`` first and only then gets the Renderer's own colour, so the only
control sequences that reach the terminal are the colours in ``COLOURS`` (and the
highlighter's, which colours text already escaped).  Callers hand it plain text, their own
or from outside (a reply, a host or file name, a user name, an exception message), and
never escape or colour it themselves:

* ``write(text)``: one line as it is (escaped);
* ``info``/``warn``/``error(text)``: one line with its marker (``*``, ``!``, ``x``) and colour;
* ``line(text, key)``: one line in the colour ``key`` (a reply class ``"2"``…``"5"``,
  ``"sent"``, ``"dim"``, ``"info"``, ``"warn"``, ``"error"``);
* ``paint(text, key)``: escaped and coloured text to compose a line from pieces; the
  result is ``Painted``, which ``write`` prints as it is.  Gluing a ``Painted`` to a plain
  string gives a plain string again, so its colour codes would be escaped, visibly: a
  mistake shows, it never leaks.

A line is one line: a CR or LF inside the text is escaped (``\\x0d``, ``\\x0a``), so text
from outside cannot start a line that looks like the program's own; print two lines with
two calls.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Protocol

from .. import tls
from ..escapes import for_terminal
from ..protocol.events import Closed, Notice, ProtocolError, Reply, ReplyKind, StartTlsReady
from ..session import (
    Connected,
    MailCheck,
    ObserverFailed,
    Sent,
    SessionEvent,
    TlsEstablished,
    TlsFailed,
)

RESET = "\x1b[0m"
COLOURS = {
    "2": "\x1b[32m",  # green: success
    "3": "\x1b[36m",  # cyan: intermediate
    "4": "\x1b[33m",  # yellow: transient failure
    "5": "\x1b[31m",  # red: permanent failure
    "sent": "\x1b[2m",
    "info": "\x1b[36m",
    "warn": "\x1b[1;33m",
    "error": "\x1b[1;31m",
    "dim": "\x1b[2m",
}


class Painted(str):
    """Text ready for the terminal: outside text already escaped, plus the Renderer's own
    colour codes.  Only ``Renderer.paint`` (and the highlighter path) makes one."""

    __slots__ = ()


def safe(text: str) -> str:
    """``text`` for the terminal: a ``Painted`` as it is, anything else escaped."""
    return text if isinstance(text, Painted) else for_terminal(text)


def pygments_highlighter(background: str = "dark") -> Callable[[str], str]:
    """Colour one line with the SMTP lexer (the REPL only).

    pygments is imported on the first line coloured, not here: the REPL loads it in a
    thread while connecting (``terminal.start_repl``).
    """

    @functools.cache
    def made() -> Callable[[str], str]:
        from pygments import highlight
        from pygments.formatters.terminal256 import Terminal256Formatter

        from .lexer import SmtpLexer, pygments_style_for

        formatter = Terminal256Formatter(style=pygments_style_for(background))
        lexer = SmtpLexer()
        return lambda line: str(highlight(line, lexer, formatter)).rstrip("\n")

    return lambda line: made()(line)


class Writable(Protocol):
    """Where a Renderer writes: a text stream, or anything with ``write`` and ``flush``."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


def reply_hint(reply: Reply) -> str | None:
    """The hint for a refusal from its code and text alone (no session state)."""
    from ..explain import hint_for

    return hint_for(reply.code, reply.enhanced, reply.text)


class Renderer:
    """An observer that prints events.

    ``echo`` shows the lines the user sent too (batch mode; the REPL already shows
    what was typed).  ``arrows`` prefixes lines with ``>``/``<`` as in transcripts.
    """

    def __init__(
        self,
        out: Writable,
        *,
        colour: bool = False,
        echo: bool = False,
        arrows: bool = False,
        hints: bool = True,
        highlight: Callable[[str], str] | None = None,
    ) -> None:
        self.out = out
        self.colour = colour
        self.echo = echo
        self.arrows = arrows
        self.hints = hints
        self.highlight = highlight
        self.show_chain = False
        self.hint: Callable[[Reply], str | None] = reply_hint
        """The hint under a refusal; the shell core gives one that reads the session's state."""

    def paint(self, text: str, key: str) -> Painted:
        """``text`` escaped, then in the colour ``key`` (when colour is on)."""
        shown = safe(text)
        if not self.colour or key not in COLOURS:
            return Painted(shown)
        return Painted(f"{COLOURS[key]}{shown}{RESET}")

    def _coloured(self, prefix: str, line: str, key: str) -> Painted:
        if self.colour and self.highlight is not None:
            try:
                # the highlighter colours text already escaped: its codes are the only ones
                return Painted(safe(prefix) + self.highlight(safe(line)))
            except Exception as exc:  # the reply is shown all the same
                self.highlight = None
                self.warn(f"highlighting is off: {type(exc).__name__}: {exc}")
        return self.paint(prefix + line, key)

    def write(self, text: str) -> None:
        """One line: ``text`` escaped (a ``Painted`` is printed as it is)."""
        self.out.write(safe(text) + "\n")
        self.out.flush()

    def line(self, text: str, key: str | None = None) -> None:
        """One line of ``text``, escaped, in the colour ``key``."""
        self.write(self.paint(text, key) if key else text)

    def info(self, text: str) -> None:
        self.write(self.paint(f"* {text}", "info"))

    def warn(self, text: str) -> None:
        self.write(self.paint(f"! {text}", "warn"))

    def error(self, text: str) -> None:
        self.write(self.paint(f"x {text}", "error"))

    def tls_advice(self, failure: tls.TlsFailure) -> None:
        """After a refused certificate: its fingerprint and the ways forward, and how to go
        on in this shell without restarting it."""
        for text in failure.advice:
            self.line(f"  {text}", "info")
        if failure.certificate_refused:
            pin = failure.sha256 or "SHA256"
            self.line(f"  in this shell: /reconnect --pin {pin}", "info")
            self.line("             or: /reconnect --insecure", "info")

    def __call__(self, event: SessionEvent) -> None:
        if isinstance(event, Reply):
            self.reply(event)
        elif isinstance(event, Sent):
            out = event.out  # classified once: shown is the wire line or a mask
            if event.raw and not out.shown:
                pass  # the rest of a streamed body, already announced
            elif self.echo or event.origin == "shell":
                prefix = "> " if not event.tls else "~> "
                marker = prefix if self.arrows or event.origin == "shell" else ""
                self.write(self.paint(marker + out.display, "sent"))
            elif out.teaching:
                self.write(self.paint(f"  ↳ {out.teaching}", "dim"))
        elif isinstance(event, Notice):
            message = event.message
            if event.kind == "not-connected":
                message += " (use /reconnect)"  # the session knows no shell commands
            (self.warn if event.warning else self.info)(message)
        elif isinstance(event, ObserverFailed):
            self.error(event.message)
        elif isinstance(event, ProtocolError):
            self.error(f"protocol error: {event.message}")
        elif isinstance(event, Closed):
            if event.unexpected:
                self.error(event.reason)
            else:
                self.info(event.reason)
        elif isinstance(event, TlsEstablished):
            how = "implicit TLS" if event.implicit else "STARTTLS"
            self.info(f"TLS established ({how})")
            for line in tls.render_report(event.report, show_chain=self.show_chain):
                self.write(self.paint(f"  {line}", "info"))
            if not event.implicit:
                self.info("RFC 3207 §4.2: send EHLO again now; what the server said before TLS "
                          "no longer counts")
        elif isinstance(event, TlsFailed):
            self.error(f"TLS failed: {event.message}")
            if event.failure is not None:
                self.tls_advice(event.failure)
        elif isinstance(event, Connected):
            self.info(f"connected to {event.target}")
        elif isinstance(event, MailCheck):  # what DNS or a policy said: outside text
            if event.report_line and not event.failure:
                return  # said once, in the TLS report that follows
            say = self.warn if (event.warning or event.failure) else self.info
            for index, text in enumerate(event.lines):
                if index == 0:
                    say(text)
                else:
                    self.write(self.paint(f"  {text}", "info"))
        elif isinstance(event, StartTlsReady):
            pass  # the handshake result (TlsEstablished/TlsFailed) is what the user sees

    def reply(self, reply: Reply) -> None:
        key = str(reply.code)[0]
        prefix = ("<~ " if reply.tls else "< ") if self.arrows else ""
        for line in reply.lines:
            self.write(self._coloured(prefix, line, key))
        if reply.kind is ReplyKind.UNSOLICITED:
            self.write(self.paint("  (unsolicited: no command was waiting for this reply)", "dim"))
        for anomaly in reply.anomalies:
            self.write(self.paint(f"  ⚑ {anomaly}", "warn"))
        if reply.code == 334:
            from ..explain.auth import describe_challenge

            self.write(self.paint(f"  {describe_challenge(reply.texts[0].strip())}", "dim"))
        if self.hints and reply.code >= 400 and reply.command != "AUTH":
            hint = self.hint(reply)
            if hint:
                self.write(self.paint(f"  hint: {hint}", "dim"))
