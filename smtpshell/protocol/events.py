"""Events the sans-IO core hands to its driver.

Every event is a small frozen, keyword-only dataclass.  Errors a server can cause
(malformed or overlong replies) are events too, never exceptions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ReplyKind(enum.Enum):
    GREETING = "greeting"
    RESPONSE = "response"
    UNSOLICITED = "unsolicited"


@dataclass(frozen=True, kw_only=True)
class Reply:
    """One complete (possibly multi-line) server reply (RFC 5321 §4.2)."""

    code: int
    lines: tuple[str, ...]
    """Each line as received, without its line ending, decoded for display."""
    raw: tuple[bytes, ...] = ()
    """Each line's exact bytes, without the line ending."""
    enhanced: str | None = None
    kind: ReplyKind = ReplyKind.RESPONSE
    command: str | None = None
    """The verb of the command this reply answers (None for a greeting or unsolicited reply)."""
    anomalies: tuple[str, ...] = ()
    """What was odd about the reply: bare LF, mixed codes, NUL bytes, overlong lines..."""
    tls: bool = False
    """The reply came over TLS (so observers need not rebuild TLS state from events)."""

    @property
    def texts(self) -> tuple[str, ...]:
        """The text part of every line (after the code and separator)."""
        return tuple(line[4:] for line in self.lines)

    @property
    def text(self) -> str:
        return " ".join(self.texts)

    @property
    def is_positive(self) -> bool:
        return 200 <= self.code < 400


@dataclass(frozen=True, kw_only=True)
class ProtocolError:
    """The server sent something that is not SMTP.  Fatal errors close the connection."""

    message: str
    raw: bytes = b""
    fatal: bool = False


@dataclass(frozen=True, kw_only=True)
class Notice:
    """Something the user should know (not an error): kind is a stable key, message is words."""

    kind: str
    message: str
    warning: bool = False


@dataclass(frozen=True, kw_only=True)
class StartTlsReady:
    """The server said 220 to STARTTLS: the driver must run the TLS handshake now.

    ``injected`` holds bytes that followed the 220 in plaintext; they were discarded
    (STARTTLS response injection, curl CVE-2021-22947) and must never be shown as if
    they came over TLS.
    """

    injected: bytes = b""


@dataclass(frozen=True, kw_only=True)
class Closed:
    """The connection ended: the server closed it, it broke, or the client closed it
    (``unexpected`` false for a close the user asked for or an interrupt)."""

    reason: str = "connection closed by server"
    unexpected: bool = True
    pending: tuple[str, ...] = field(default=())
    """Verbs still waiting for a reply when the connection closed."""


Event = Reply | ProtocolError | Notice | StartTlsReady | Closed
