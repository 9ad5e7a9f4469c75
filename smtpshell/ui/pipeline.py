"""The one pipelining policy (RFC 2920), for lines pasted into the REPL and batch input.

When the server advertised PIPELINING, a client may send several commands before it
reads their replies.  RFC 2920 §3.1: RSET, MAIL FROM and RCPT TO may stand anywhere in
a group; EHLO, DATA, VRFY, EXPN, TURN, QUIT and NOOP may only END a group, because
their outcome changes what the client must do next.  This shell is stricter in three
places: STARTTLS (the TLS switch), AUTH (secrets) and BDAT (raw octets) are sent on
their own, as are the shell's own commands, empty lines, lines with a bare CR, lines
that carry a known secret, and MAIL on a plain connection under require-TLS (so the
core can refuse it with its reason).

``group(first, policy, more, push_back)`` takes ``first`` and as many following lines
as may go out with it in one write; ``more()`` gives the next line that is already
there (or None) and ``push_back(line)`` returns one that must wait.  ``interleave``
puts a group's events back in the order one-by-one sending would show them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

from ..protocol.events import Reply, ReplyKind
from ..session import Sent, SessionEvent
from .commands.registry import split_meta

__all__ = ["ANYWHERE", "GROUP_ENDERS", "Policy", "Role", "group", "interleave", "verb_role"]

ANYWHERE = frozenset({"MAIL", "RCPT", "RSET"})
"""Commands that may stand anywhere in a pipelined group (RFC 2920 §3.1)."""

GROUP_ENDERS = frozenset({"EHLO", "HELO", "LHLO", "DATA", "VRFY", "EXPN", "TURN", "QUIT",
                          "NOOP"})  # fmt: skip
"""Commands that may only be the last of a group (RFC 2920 §3.1; HELO and LMTP's LHLO
as EHLO)."""


class Role(enum.Enum):
    MEMBER = "member"
    """May stand anywhere in a group."""
    LAST = "last"
    """Ends the group it joins."""
    ALONE = "alone"
    """Is sent on its own, waiting for the replies before it."""


def verb_role(verb: str) -> Role:
    """The role RFC 2920 (and this shell's stricter rules) give a command verb."""
    verb = verb.upper()
    if verb in ANYWHERE:
        return Role.MEMBER
    return Role.LAST if verb in GROUP_ENDERS else Role.ALONE


class Policy:
    """The facts the decision depends on, taken once per group.

    A plain class, not a dataclass: only read, and one fewer class to build at start-up.
    """

    __slots__ = ("has_secret", "is_tls", "pipelining", "require_tls")

    def __init__(self, *, pipelining: bool, is_tls: bool = False, require_tls: bool = False,
                 has_secret: Callable[[str], bool] = lambda line: False) -> None:
        self.pipelining = pipelining
        """The server advertised PIPELINING, and no message or AUTH exchange is open."""
        self.is_tls = is_tls
        self.require_tls = require_tls
        self.has_secret = has_secret

    def role(self, line: str) -> Role:
        if not self.pipelining or not line or "\r" in line:
            return Role.ALONE
        if split_meta(line, in_data=False) is not None:
            return Role.ALONE
        verb = line.split(" ", 1)[0].upper()
        role = verb_role(verb)
        if role is Role.ALONE:
            return role
        if self.require_tls and not self.is_tls and verb == "MAIL":
            return Role.ALONE  # the core says why it is not sent
        return Role.ALONE if self.has_secret(line) else role


def group(
    first: str,
    policy: Policy,
    more: Callable[[], str | None],
    push_back: Callable[[str], None],
) -> list[str]:
    """``first`` and the lines after it that go out in the same write.

    A group starts with a command that may stand anywhere and ends with the first
    group-ender, before a line that must go alone, or when no more lines are there.
    """
    if policy.role(first) is not Role.MEMBER:
        return [first]
    lines = [first]
    while (line := more()) is not None:
        role = policy.role(line)
        if role is Role.ALONE:
            push_back(line)
            break
        lines.append(line)
        if role is Role.LAST:
            break
    return lines


def interleave(events: Sequence[SessionEvent]) -> list[SessionEvent]:
    """A pipelined group's events in the order one-by-one sending would show them.

    On the wire the commands go first and the replies follow; on screen each command is
    followed by its reply.  Notices stay with the command or reply they followed; what
    came after the last reply when some replies are missing (a close) comes last.
    """
    before: list[SessionEvent] = []
    sends: list[list[SessionEvent]] = []
    replies: list[list[SessionEvent]] = []
    for event in events:
        if isinstance(event, Sent):
            sends.append([event])
        elif isinstance(event, Reply) and event.kind is ReplyKind.RESPONSE:
            replies.append([event])
        elif replies:
            replies[-1].append(event)
        elif sends:
            sends[-1].append(event)
        else:
            before.append(event)
    tail: list[SessionEvent] = []
    if replies and len(replies) < len(sends):
        last = replies[-1]
        replies[-1], tail = last[:1], last[1:]
    ordered = before
    for i in range(max(len(sends), len(replies))):
        if i < len(sends):
            ordered += sends[i]
        if i < len(replies):
            ordered += replies[i]
    return ordered + tail
