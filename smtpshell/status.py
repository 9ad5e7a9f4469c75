"""Exit statuses: each names the stage that failed (docs/user-guide.md has the table)."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1
    """The last reply was a failure (batch mode), or another error."""
    USAGE = 2
    """Bad command line or configuration."""
    CONNECT = 3
    """Could not connect, or no greeting."""
    TLS = 4
    """STARTTLS not offered or refused, handshake or verification failed."""
    AUTH = 5
    """Authentication failed, or no secret was available."""
    MAIL = 6
    RCPT = 7
    DATA = 8
    PROTOCOL = 9
    """The server broke the protocol or closed the connection unexpectedly."""
    INTERRUPTED = 130


STAGE_STATUS = {
    "connect": ExitStatus.CONNECT,
    "tls": ExitStatus.TLS,
    "auth": ExitStatus.AUTH,
    "mail": ExitStatus.MAIL,
    "rcpt": ExitStatus.RCPT,
    "data": ExitStatus.DATA,
    "protocol": ExitStatus.PROTOCOL,
}

VERB_STATUS = {
    "AUTH": ExitStatus.AUTH,
    "MAIL": ExitStatus.MAIL,
    "RCPT": ExitStatus.RCPT,
    "DATA": ExitStatus.DATA,
    "BDAT": ExitStatus.DATA,
    ".": ExitStatus.DATA,
    "STARTTLS": ExitStatus.TLS,
}
