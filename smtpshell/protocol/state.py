"""Client states and the one table of transitions.

Theory of operation: the connection moves on two things only, what the client sent
(a verb) and what the server answered (a reply code).  The table below lists the
moves that change the *mode* of the connection; everything else leaves it in READY.

    GREETING --reply--> READY
    READY    --DATA sent, 354--> DATA      (lines go out unanswered until ".")
    DATA     --"." sent-->       READY     (the final reply is then pending)
    READY    --AUTH sent, 334--> AUTH      (one client line per 334)
    AUTH     --2xx/4xx/5xx-->    READY
    READY    --STARTTLS, 220-->  TLS_HANDSHAKE   (the driver runs the handshake)
    TLS_HANDSHAKE --tls_started()--> READY
    any      --EOF/fatal error--> CLOSED
"""

from __future__ import annotations

import enum


class ClientState(enum.Enum):
    GREETING = "greeting"
    READY = "ready"
    AUTH = "auth"
    DATA = "data"
    TLS_HANDSHAKE = "tls-handshake"
    CLOSED = "closed"


class Stage(enum.Enum):
    """Where the mail transaction is (for the prompt and toolbar)."""

    NONE = "idle"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


# (state, verb of the command answered, reply class) -> next state
TRANSITIONS: dict[tuple[ClientState, str, int], ClientState] = {
    (ClientState.READY, "DATA", 3): ClientState.DATA,
    (ClientState.READY, "AUTH", 3): ClientState.AUTH,
    (ClientState.AUTH, "AUTH", 3): ClientState.AUTH,
    (ClientState.AUTH, "AUTH", 2): ClientState.READY,
    (ClientState.AUTH, "AUTH", 4): ClientState.READY,
    (ClientState.AUTH, "AUTH", 5): ClientState.READY,
    (ClientState.READY, "STARTTLS", 2): ClientState.TLS_HANDSHAKE,
}


def next_state(state: ClientState, verb: str, code: int) -> ClientState:
    return TRANSITIONS.get((state, verb, code // 100), state)
