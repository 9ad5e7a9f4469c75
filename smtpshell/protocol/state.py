"""The client's states and the one table of transitions.

Theory of operation.  The connection is in a *mode* (``ClientState``: what the next
line the client writes means) and a mail-transaction *stage* (``Stage``: how far
MAIL, RCPT, DATA or BDAT got).  Both move on two things only:

* a line the client *sent* (reply class ``SENT``): the lone "." ends DATA the moment
  it is written (the reply that follows does not undo that: RFC 5321 §4.1.1.4 ends the
  transaction either way), and QUIT is remembered so that the close it causes is not news;
* the *reply* to a command, keyed by the verb of the command it answers (replies pair
  with commands in order, RFC 2920) and the reply's class (its first digit).

Everything the client core knows is moved by ``TABLE`` and nothing else, so the prompt,
the toolbar, hints and the transcript read one truth.  A pair that is not in the table
changes nothing (a 5xx to MAIL leaves the stage where it was).  Subtle rows:

* EHLO, HELO and LHLO accepted reset the transaction (RFC 5321 §4.1.4), as RSET does.
* ``BDAT`` and ``BDAT LAST`` are two verbs here: a chunk accepted moves to ``Stage.BDAT``
  (DATA is no longer allowed, RFC 3030 §2), the last one accepted ends the transaction.
  A refused chunk leaves the stage alone: the client must send RSET (RFC 3030 §2).
* AUTH is one exchange whoever drives it (a typed line or ``/auth``): 334 enters mode
  AUTH, where each line the client sends is a continuation answered by 334 (stay), 2xx
  (authenticated) or 4xx/5xx (back to READY).  An initial response may be answered
  with 235 straight away.
* STARTTLS answered 220 enters ``TLS_HANDSHAKE``; the driver runs the handshake and
  reports it with the pseudo-verb ``TLS_DONE`` (to READY, forgetting EHLO and AUTH,
  RFC 3207 §4.2).  A failed handshake closes the connection: never back to plain text.
* The greeting is the reply to the pseudo-verb ``GREETING``.
* DATA moves to mode DATA on its 354, not when it is sent: lines written after DATA
  before that reply (one ``/raw`` payload with the message) are held by the connection
  and followed once the reply says whether they are the message or commands.
* Any mode goes to ``CLOSED`` when the connection ends (EOF, reset, a fatal protocol
  error, the user's interrupt); that is not a row, it is ``ClientConnection.connection_lost``.
"""

from __future__ import annotations

import enum


class ClientState(enum.Enum):
    """The connection's mode: what the next line the client writes means."""

    GREETING = "greeting"
    READY = "ready"
    AUTH = "auth"
    DATA = "data"
    TLS_HANDSHAKE = "tls-handshake"
    CLOSED = "closed"


Mode = ClientState


class Stage(enum.Enum):
    """Where the mail transaction is (for the prompt, the toolbar and hints)."""

    NONE = "idle"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    BDAT = "bdat"


class Effect(enum.Enum):
    """What a move does besides changing mode and stage."""

    CAPABILITIES = "capabilities"
    """Read the EHLO/LHLO reply's keywords."""
    NO_CAPABILITIES = "no-capabilities"
    """HELO: the server advertised nothing."""
    AUTHENTICATED = "authenticated"
    RECIPIENT = "recipient"
    """One more recipient accepted (LMTP expects a reply per recipient after DATA)."""
    QUIT = "quit"
    """QUIT went out: the close that follows is expected."""
    TLS_STARTED = "tls-started"
    """Forget what EHLO advertised and who authenticated (RFC 3207 §4.2)."""


SENT = 0
"""The "reply class" of a move made when the line is sent, before any reply."""

GREETING = "GREETING"
TLS_DONE = "TLS_DONE"
BDAT_LAST = "BDAT LAST"


class Move:
    """One entry of the transition table: the new mode, stage and effects.

    A plain class, not a dataclass: the table's values are only read, and a dataclass
    costs more to build at start-up than the whole table.
    """

    __slots__ = ("effects", "mode", "stage")

    def __init__(self, mode: ClientState, stage: Stage | None = None,
                 effects: frozenset[Effect] = frozenset()) -> None:
        self.mode = mode
        self.stage = stage
        """The new stage; None keeps the stage as it was."""
        self.effects = effects


def _move(mode: ClientState, stage: Stage | None = None, *effects: Effect) -> Move:
    return Move(mode, stage, frozenset(effects))


R, A, D = ClientState.READY, ClientState.AUTH, ClientState.DATA

# (mode, verb, reply class) -> move.  Every row holds in every stage: the client follows
# what the server accepted (a 250 to RCPT before MAIL still means a recipient is in).
_ROWS: dict[tuple[ClientState, str, int], Move] = {
    # the greeting, whatever it says, opens the conversation (a 554 greeting still
    # expects QUIT, RFC 5321 §3.1)
    **{(ClientState.GREETING, GREETING, k): _move(R, Stage.NONE) for k in (2, 3, 4, 5)},
    # session resets
    (R, "EHLO", 2): _move(R, Stage.NONE, Effect.CAPABILITIES),
    (R, "LHLO", 2): _move(R, Stage.NONE, Effect.CAPABILITIES),
    (R, "HELO", 2): _move(R, Stage.NONE, Effect.NO_CAPABILITIES),
    (R, "RSET", 2): _move(R, Stage.NONE),
    # the mail transaction
    (R, "MAIL", 2): _move(R, Stage.MAIL),
    (R, "RCPT", 2): _move(R, Stage.RCPT, Effect.RECIPIENT),
    (R, "DATA", 3): _move(D, Stage.DATA),
    (D, ".", SENT): _move(R, Stage.NONE),
    (R, "BDAT", 2): _move(R, Stage.BDAT),
    (R, BDAT_LAST, 2): _move(R, Stage.NONE),
    # AUTH, typed or driven by /auth
    (R, "AUTH", 2): _move(R, None, Effect.AUTHENTICATED),
    (R, "AUTH", 3): _move(A),
    (A, "AUTH", 3): _move(A),
    (A, "AUTH", 2): _move(R, None, Effect.AUTHENTICATED),
    (A, "AUTH", 4): _move(R),
    (A, "AUTH", 5): _move(R),
    # STARTTLS: the driver runs the handshake between these two rows
    (R, "STARTTLS", 2): _move(ClientState.TLS_HANDSHAKE, Stage.NONE),
    (ClientState.TLS_HANDSHAKE, TLS_DONE, SENT): _move(R, Stage.NONE, Effect.TLS_STARTED),
    # the end
    (R, "QUIT", SENT): _move(R, None, Effect.QUIT),
}

TABLE: dict[tuple[ClientState, Stage, str, int], Move] = {
    (mode, stage, verb, klass): move
    for (mode, verb, klass), move in _ROWS.items()
    for stage in Stage
}
"""(mode, stage, verb, reply class or SENT) -> the move.  The one table."""


def next_move(mode: ClientState, stage: Stage, verb: str, klass: int) -> Move | None:
    """The move for a reply of class ``klass`` (2-5) to ``verb``, or for sending it (SENT)."""
    return TABLE.get((mode, stage, verb, klass))
