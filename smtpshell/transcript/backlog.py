"""The session so far, kept for a ``/record`` typed after connecting.

``Backlog`` is a session observer, subscribed by the shell for every connection. It keeps
the events a ``Recorder`` writes (Connected, TLS, every Sent line, every Reply, warnings,
the close), since the latest connect, so that ``/record`` can feed them to a new
``Recorder`` first and the transcript starts at its ``== connect``, replayable against
the same server. Nothing else of the session is kept, and nothing a transcript would not
hold:

* a line that carries a credential is kept as the redaction point classified it
  (``Outgoing.text``, its credential's description), never its wire bytes;
* a DATA body larger than ``body_limit`` bytes is kept as its message header lines and a
  digest (``BodyElided``: line count, size, SHA-256), which the transcript writes as one
  ``== elided`` line: a body is never held whole past the limit;
* the whole is bounded by ``limit`` bytes: past it, the oldest events after the first
  ``head`` bytes (the connect, greeting, EHLO, STARTTLS, AUTH…) are dropped, whole
  transactions where it can, and the transcript says where and how many (``Dropped``).
  A body on its way adds at most ``body_limit`` bytes, or ``HEADER_LIMIT`` while no
  blank line has ended its message header.

It is cheap on purpose: it runs for every session, also when nothing is recorded, so it
keeps the events themselves (formatting waits for ``/record``) and hashes a long body in
blocks, not line by line.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..protocol.events import Closed, Notice, Reply, StartTlsReady
from ..protocol.sasl.redact import Outgoing
from ..session import Connected, ObserverFailed, Sent, SessionEvent

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = ["BODY_LIMIT", "LIMIT", "Backlog", "BodyElided", "Dropped", "Item",
           "backlog_body_limit", "write_backlog"]

BODY_LIMIT = 64 * 1024
"""A DATA body larger than this is kept as an elision (unless --elide-data says less)."""
LIMIT = 1024 * 1024
"""The most the backlog of one connection holds; past it the middle is dropped."""
HEAD = 256 * 1024
"""What is always kept of the beginning when the middle is dropped."""
HEADER_LIMIT = 64 * 1024
"""A message header longer than this is elided with its body (no blank line found)."""
_EVENT_COST = 160
"""What one kept event costs beyond its bytes (the objects around them), roughly."""

_BETWEEN = 32
"""Events kept from between two connections."""

_CRLF = b"\r\n"
_END = b"\r\n.\r\n"


@dataclass(frozen=True)
class BodyElided:
    """Body lines the backlog did not keep: the ``== elided`` line's fields."""

    lines: int
    nbytes: int
    sha256: str
    tls: bool
    limit: int
    """The limit the body was over (for the comment above the elision)."""


@dataclass(frozen=True)
class Dropped:
    """Events dropped from the middle of a long backlog (the memory bound)."""

    events: int
    nbytes: int
    limit: int


Item = SessionEvent | BodyElided | Dropped


def _sanitized(out: Outgoing) -> Outgoing:
    """``out`` without its wire form: the classified text stands in for the line."""
    return replace(out, line=out.text, raw=None,
                   parts=tuple(_sanitized(part) for part in out.parts))


_FRESH_START = frozenset({b"MAIL", b"RSET", b"QUIT", b"EHLO", b"HELO", b"LHLO"})


def _starts_over(item: Item) -> bool:
    """Is ``item`` a command after which the session does not depend on what came just
    before it (a new transaction, a reset, the end)?"""
    return (isinstance(item, Sent) and not item.in_data and not item.raw
            and item.data[:4].upper() in _FRESH_START)


def _starts_transaction(item: Item) -> bool:
    return (isinstance(item, Sent) and not item.in_data and not item.raw
            and item.data[:4].upper() == b"MAIL")


def _body_event(data: bytes, tls: bool) -> Sent:
    """Body bytes as the session would have published them (a raw chunk inside DATA)."""
    return Sent(out=Outgoing("", None, "user", data), data=data, tls=tls, in_data=True)


class _Body:
    """One DATA body on its way: its bytes while small, then a digest.

    Lines end with CRLF; the line ``.`` ends the body. While the body is at most
    ``limit`` bytes its bytes are kept as sent; past it the message header (up to its
    blank line) stays and the rest is hashed as it comes (``BodyElided``).
    """

    def __init__(self, tls: bool, limit: int) -> None:
        self.tls = tls
        self.limit = limit
        self.kept = bytearray()
        self.header_end = -1  # where the blank line after the header ends, once seen
        self.digest: hashlib._Hash | None = None
        self.lines = 0
        self.nbytes = 0
        self.tail = b""  # digest mode: an unfinished line (or the start of the end line)
        self.mid_line = False  # part of an unfinished (very long) line is in the digest
        self.checkpoint: tuple[hashlib._Hash, int, int] | None = None
        """The digest, line count and size before that line."""
        self.done = False

    @property
    def size(self) -> int:
        return len(self.kept) + len(self.tail)

    def add(self, data: bytes) -> bytes:
        """Take body bytes; return what follows the body's ``.`` line (b"" mostly)."""
        if self.digest is None:
            return self._keep(data)
        return self._hash(data)

    def _keep(self, data: bytes) -> bytes:
        start = max(0, len(self.kept) - 4)  # the end line may begin in what came before
        self.kept += data
        if self.kept.startswith(b".\r\n"):
            end = 3
        else:
            at = self.kept.find(_END, start)
            end = at + len(_END) if at >= 0 else -1
        rest = b""
        if end >= 0:
            rest = bytes(self.kept[end:])
            del self.kept[end:]
            self.done = True
        if self.header_end < 0:
            if self.kept.startswith(_CRLF):
                self.header_end = 2
            else:
                at = self.kept.find(b"\r\n\r\n", start)
                if at >= 0:
                    self.header_end = at + 4
        if not self.done and len(self.kept) > self.limit and (
            self.header_end >= 0 or len(self.kept) > max(self.limit, HEADER_LIMIT)
        ):
            self._start_digest()
        return rest

    def _start_digest(self) -> None:
        split = max(self.header_end, 0)
        rest = bytes(self.kept[split:])
        del self.kept[split:]
        self.digest = hashlib.sha256()
        self._hash(rest)

    def _hash(self, data: bytes) -> bytes:
        assert self.digest is not None
        data = self.tail + data
        if not self.mid_line and data.startswith(b".\r\n"):
            end = 0
        else:
            at = data.find(_END)
            end = at + 2 if at >= 0 else -1
        if end >= 0:
            self._digest(data[:end])
            self.tail = b""
            self.done = True
            return data[end + 3:]
        cut = data.rfind(_CRLF) + 2
        if cut >= 2:
            self._digest(data[:cut])
            data = data[cut:]
        if len(data) > HEADER_LIMIT:
            # a line with no end in sight: hash it now (its last bytes may start the end
            # line), count it when its CRLF comes
            if not self.mid_line:
                self.mid_line = True
                self.checkpoint = (self.digest.copy(), self.lines, self.nbytes)
            self.digest.update(data[:-4])
            self.nbytes += len(data) - 4
            data = data[-4:]
        self.tail = data
        return b""

    def _digest(self, data: bytes) -> None:
        assert self.digest is not None
        self.digest.update(data)
        self.lines += data.count(_CRLF)
        self.nbytes += len(data)
        self.mid_line = False
        self.checkpoint = None

    def items(self) -> Iterator[Item]:
        """The body as the backlog keeps it (``.`` line included when it came)."""
        if self.digest is None:
            if self.kept:
                yield _body_event(bytes(self.kept), self.tls)
            return
        if self.kept:
            yield _body_event(bytes(self.kept), self.tls)
        digest, lines, nbytes = self.digest, self.lines, self.nbytes
        if self.mid_line and self.checkpoint is not None:
            digest, lines, nbytes = self.checkpoint
        if lines:
            yield BodyElided(lines, nbytes, digest.hexdigest(), self.tls, self.limit)
        if self.done:
            yield _body_event(b".\r\n", self.tls)
        elif self.mid_line:
            unfinished = self.nbytes - nbytes + len(self.tail)
            yield Notice(kind="backlog", warning=True, message=(
                f"the shell did not keep an unfinished line of {unfinished} bytes at the end "
                "of this message body: it is not in the transcript"))
        elif self.tail:
            yield _body_event(self.tail, self.tls)


class Backlog:
    """Observer: the session since the latest connect, for ``/record`` (module docstring).

    ``items()`` is what a ``Recorder`` is fed: session events (credentials as classified),
    ``BodyElided`` for a long body and ``Dropped`` where the middle was dropped.
    """

    def __init__(self, *, body_limit: int = BODY_LIMIT, limit: int = LIMIT,
                 head: int = HEAD) -> None:
        self.body_limit = body_limit
        self.limit = limit
        self.head_limit = min(head, limit)
        self.connections = 0
        """Connections seen; only the latest is kept."""
        self._reset()

    def _reset(self) -> None:
        self._head: list[tuple[Item, int]] = []
        self._head_size = 0
        self._head_full = False
        self._tail: deque[tuple[Item, int]] = deque()
        self._tail_size = 0
        self._dropped = 0
        self._dropped_bytes = 0
        self._body: _Body | None = None
        self._before: list[tuple[SessionEvent, int]] = []
        self._open = False

    @property
    def size(self) -> int:
        """What the kept events cost, roughly, in bytes (bounded by ``limit``)."""
        body = self._body.size if self._body is not None else 0
        return self._head_size + self._tail_size + body

    @property
    def in_body(self) -> bool:
        """A message body is on its way (lines after 354, no "." yet)."""
        return self._body is not None

    @property
    def empty(self) -> bool:
        return not self._head and not self._tail and self._body is None and not self._before

    def __call__(self, event: SessionEvent) -> None:
        if isinstance(event, (ObserverFailed, StartTlsReady)) or (
            isinstance(event, Notice) and not event.warning
        ):
            return  # nothing a transcript holds
        if isinstance(event, Connected):
            self.connections += 1
            before = self._before
            self._reset()
            for item, cost in before:
                self._keep(item, cost)
            self._keep(event, _EVENT_COST)
            self._open = True
        elif not self._open and not isinstance(event, Sent):
            # what comes between connections (a failed attempt's warnings, what DNS said
            # before the next connect) goes with the next one; a few of them at most
            self._before.append((event, 4 * _EVENT_COST))
            del self._before[:-_BETWEEN]
        elif isinstance(event, Sent):
            self._sent(event)
        elif isinstance(event, Reply):
            self._end_body()
            self._keep(event, _EVENT_COST + sum(len(line) for line in event.raw))
        else:  # TLS, a warning, a protocol error, the close, what DNS said…
            self._end_body()
            self._keep(event, 4 * _EVENT_COST)
            if isinstance(event, Closed):
                self._open = False

    def _sent(self, event: Sent) -> None:
        out = event.out
        if out.secret or out.credential is not None:
            self._end_body()
            clean = Sent(out=_sanitized(out), data=b"", tls=event.tls, in_data=event.in_data)
            self._keep(clean, _EVENT_COST + len(out.text))
            return
        if not event.in_data:
            self._end_body()
            self._keep(event, _EVENT_COST + len(event.data))
            return
        data = event.data
        if not event.raw:
            data = data if data.endswith(_CRLF) else data + _CRLF
        if self._body is None:
            self._body = _Body(event.tls, self.body_limit)
        rest = self._body.add(data)
        if self._body.done:
            self._end_body()
            if rest:  # what followed the "." in the same write: commands again
                after = Sent(out=Outgoing("", None, "user", rest), data=rest, tls=event.tls)
                self._keep(after, _EVENT_COST + len(rest))

    def _end_body(self) -> None:
        body, self._body = self._body, None
        if body is None:
            return
        for item in body.items():
            cost = _EVENT_COST + (len(item.data) if isinstance(item, Sent) else 0)
            self._keep(item, cost)

    def _keep(self, item: Item, cost: int) -> None:
        if not self._head_full:
            if self._head_size + cost <= self.head_limit:
                self._head.append((item, cost))
                self._head_size += cost
                return
            self._close_head()
        self._tail.append((item, cost))
        self._tail_size += cost
        if self._head_size + self._tail_size <= self.limit:
            return
        while self._tail and self._head_size + self._tail_size > self.limit:
            self._drop()
        # and on to the next command that starts a transaction (or ends the session):
        # what is left then replays from there, like the transactions before it
        while self._tail and not _starts_over(self._tail[0][0]):
            self._drop()

    def _close_head(self) -> None:
        """The head is full: it ends before its last transaction (which goes on in the
        tail), so that it and whatever is kept after a drop replay one after the other."""
        self._head_full = True
        last = next((i for i in range(len(self._head) - 1, -1, -1)
                     if _starts_transaction(self._head[i][0])), None)
        if last is None:
            return
        moved = self._head[last:]
        del self._head[last:]
        for entry in reversed(moved):
            self._tail.appendleft(entry)
            self._head_size -= entry[1]
            self._tail_size += entry[1]

    def _drop(self) -> None:
        _, cost = self._tail.popleft()
        self._tail_size -= cost
        self._dropped += 1
        self._dropped_bytes += cost

    def items(self) -> Iterator[Item]:
        """What ``/record`` writes first, in order; a body on its way is included as far
        as it went (the recording goes on with the rest of it)."""
        for item, _ in self._head:
            yield item
        if self._dropped:
            yield Dropped(self._dropped, self._dropped_bytes, self.limit)
        for item, _ in self._tail:
            yield item
        if self._body is not None:
            yield from self._body.items()
        for item, _ in self._before:
            yield item


def write_backlog(backlog: Backlog, recorder: Recorder) -> bool:
    """Feed ``backlog`` to ``recorder`` (new, not yet subscribed), with comments that say
    where the session so far ends and what was left out; False when there was nothing.

    The recorder handles the events as if they came now, so it writes what it would have
    written had it been there (credentials as placeholders) and ends in the same state
    (a CRAM-MD5 challenge pending, a message body half sent). Errors stop the recorder,
    as for live events (``recorder.error``).
    """
    from .model import Comment, Elided, Event

    items = list(backlog.items())
    if not items:
        return False
    recorder.write_entry(Comment(
        "recording started in the middle of a session: the lines up to the comment "
        "'/record typed here' are the session before it, as the shell kept it"))
    if backlog.connections > 1:
        earlier = backlog.connections - 1
        recorder.write_entry(Comment(
            f"{earlier} earlier connection{'s' if earlier > 1 else ''} of this shell "
            f"{'are' if earlier > 1 else 'is'} not in this transcript: it starts at the "
            "latest connect"))
    for item in items:
        if isinstance(item, BodyElided):
            recorder.write_entry(Comment(
                f"before /record, the shell kept only the digest of this body (longer than "
                f"{item.limit} bytes): replay sends filler of the same size"))
            recorder.write_entry(Elided(item.lines, item.nbytes, item.sha256, item.tls))
        elif isinstance(item, Dropped):
            message = (f"before /record, the shell kept at most {item.limit} bytes of this "
                       f"connection: {item.events} events ({item.nbytes} bytes) were dropped "
                       "here, so a replay may differ from this point on")
            recorder.write_entry(Event.make("warning", message=message))
        else:
            recorder(item)
    if not backlog.in_body:  # (in a body, a comment would come before lines it follows)
        recorder.write_entry(Comment("/record typed here"))
    return True


def backlog_body_limit(elide_data: int | None) -> int:
    """The backlog's body limit: ``--elide-data`` when it says less than ``BODY_LIMIT``."""
    if elide_data is None:
        return BODY_LIMIT
    return max(0, min(elide_data, BODY_LIMIT))
