"""What to offer at the cursor: a pure function of the line and the session's state.

``complete(text_before_cursor, state)`` returns ``Suggestion``s; nothing here knows
prompt_toolkit (``completer.py`` wraps it).  The rules, in the order they are tried:

* AUTH exchange in progress: nothing (the line is base64 or a secret).
* DATA mode: meta-commands after ``/!``; header names while the header section is
  open and the line is still a bare word (``Sub`` -> ``Subject: ``); nothing else.
* ``/name``: meta-commands, then the arguments each DECLARES (``commands.registry``):
  its literal words (``chain``, ``on``/``off``), command names, SASL mechanisms, /explain
  topics, options.  Where it takes a file, ``file_argument`` says so and the completer
  lists the files (prompt_toolkit's ``PathCompleter``).
* the first word: SMTP verbs.  What the server can take comes first; verbs it did not
  advertise (or that make no sense now) follow with ``available=False``.  STARTTLS is
  left out once TLS is up, and when EHLO showed the server does not offer it.
* ``MAIL `` -> ``FROM:<``, ``RCPT `` -> ``TO:<``; after the address, the ESMTP
  parameters the EHLO reply allows; ``AUTH `` -> the advertised mechanisms.

Keywords follow the case the user types: ``mail f`` completes to ``from:<``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..explain import KEYWORDS
from .commands.registry import DATA_ESCAPE, PREFIX, Arg, CommandSpec, Kind
from .toolbar import human_size

if TYPE_CHECKING:
    from ..protocol.replies import Capabilities
    from ..session import Session

__all__ = [
    "EXTENSION_VERBS",
    "HEADERS",
    "CompletionState",
    "Suggestion",
    "complete",
    "file_argument",
    "state_from_session",
]


@dataclass(frozen=True, kw_only=True)
class Suggestion:
    text: str
    """What replaces the ``-start`` characters before the cursor."""
    start: int
    """Where the replaced text begins, relative to the cursor (0 or negative)."""
    display: str
    meta: str = ""
    available: bool = True
    """False: valid SMTP the server did not advertise (or that fails now); shown after."""


@dataclass(frozen=True, kw_only=True)
class CompletionState:
    """The facts completion depends on, taken from a ``Session`` at one moment."""

    capabilities: Capabilities | None = None
    """What the last EHLO advertised; None before EHLO and after STARTTLS."""
    is_tls: bool = False
    in_data: bool = False
    in_auth: bool = False
    authenticated: bool = False
    lmtp: bool = False
    ehlo_name: str | None = None
    data_headers: bool = True
    """In DATA mode: the header section is still open (no empty line sent yet)."""
    meta_commands: tuple[CommandSpec, ...] = ()


def state_from_session(
    session: Session, meta_commands: Iterable[CommandSpec] = (), *, data_headers: bool = True
) -> CompletionState:
    """Read the session's live state (``meta_commands``: e.g. ``unique_commands()``)."""
    snap = session.snapshot()
    return CompletionState(
        capabilities=snap.capabilities,
        is_tls=snap.tls,
        in_data=snap.in_data,
        in_auth=snap.in_auth,
        authenticated=snap.authenticated,
        lmtp=session.options.lmtp,
        ehlo_name=session.options.ehlo_name or None,
        data_headers=data_headers,
        meta_commands=tuple(meta_commands),
    )


# ---- knowledge ------------------------------------------------------------------------
EXTENSION_VERBS = {"STARTTLS": "STARTTLS", "AUTH": "AUTH", "BDAT": "CHUNKING", "ETRN": "ETRN"}
"""Verb -> the EHLO keyword that makes it available."""
_ORDER = ("EHLO", "LHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET",
          "NOOP", "QUIT", "VRFY", "EXPN", "HELP", "ETRN")  # fmt: skip
"""Verbs in the order a session uses them."""

HEADERS = ("From:", "To:", "Cc:", "Subject:", "Date:", "Message-ID:", "Reply-To:",
           "MIME-Version:", "Content-Type:")  # fmt: skip

_VERB_META = {
    "EHLO": "extended hello: the reply lists the server's extensions",
    "HELO": "the original hello, without extensions",
    "LHLO": "LMTP's EHLO",
    "STARTTLS": "upgrade this connection to TLS, then EHLO again",
    "AUTH": "authenticate with a SASL mechanism",
    "MAIL": "start a transaction: MAIL FROM:<sender>",
    "RCPT": "add a recipient: RCPT TO:<address>",
    "DATA": "send the message; end with a line holding only '.'",
    "BDAT": "BDAT n [LAST]: send exactly n octets of the message",
    "RSET": "abort the transaction, keep the connection",
    "NOOP": "do nothing; the server replies 250",
    "QUIT": "close the session politely (221)",
    "VRFY": "ask whether a mailbox exists (often refused)",
    "EXPN": "expand a mailing list (usually refused)",
    "HELP": "ask the server for help text",
    "ETRN": "ask the server to deliver mail queued for a domain",
}


# ---- the entry point -----------------------------------------------------------------
def complete(text_before_cursor: str, state: CompletionState) -> list[Suggestion]:
    """Suggestions for the current line (file names: ``file_argument``)."""
    text = text_before_cursor.rsplit("\n", 1)[-1]
    if state.in_auth:
        return []
    if state.in_data:
        if text.startswith(DATA_ESCAPE):
            return _meta(text, DATA_ESCAPE, state)
        if state.data_headers and re.fullmatch(r"[A-Za-z][A-Za-z-]*", text):
            return _headers(text)
        return []
    if text.startswith(PREFIX):
        return _meta(text, PREFIX, state)
    if " " not in text:
        return _verbs(text, state)
    verb, _, rest = text.partition(" ")
    verb_u = verb.upper()
    if verb_u == "MAIL":
        return _envelope(rest, verb, "FROM:<", _mail_params(state))
    if verb_u == "RCPT":
        return _envelope(rest, verb, "TO:<", _rcpt_params(state))
    if verb_u == "AUTH":
        return _auth(rest, verb, state)
    if verb_u in ("EHLO", "HELO", "LHLO") and state.ehlo_name:
        return _words(rest, [(state.ehlo_name, "the name this shell uses", True)], case=None)
    if verb_u == "HELP":
        return _words(rest, [(v, _VERB_META[v], True) for v in _ORDER], case=verb)
    return []


# ---- helpers -------------------------------------------------------------------------
def _case(typed: str, reference: str) -> str:
    """'lower' when the user is typing in lower case, else 'upper'."""
    sample = typed if any(c.isalpha() for c in typed) else reference
    letters = [c for c in sample if c.isalpha()]
    return "lower" if letters and all(c.islower() for c in letters) else "upper"


def _apply(word: str, mode: str | None) -> str:
    if mode is None:
        return word
    return word.lower() if mode == "lower" else word.upper()


def _words(
    rest: str, options: Sequence[tuple[str, str, bool]], *, case: str | None
) -> list[Suggestion]:
    """Complete the last whitespace-separated word of ``rest`` from ``options``.

    ``options``: (word, meta, available).  ``case``: the verb whose case keywords
    follow, or None to insert the words as they are.
    """
    partial = "" if not rest or rest[-1].isspace() else rest.split()[-1]
    mode = None if case is None else _case(partial, case)
    found: list[Suggestion] = []
    for word, meta, available in options:
        if not word.lower().startswith(partial.lower()) or word.lower() == partial.lower():
            continue
        text = _apply(word, mode)
        found.append(Suggestion(text=text, start=-len(partial), display=text, meta=meta,
                                available=available))  # fmt: skip
    return _ordered(found)


def _ordered(found: list[Suggestion]) -> list[Suggestion]:
    return [s for s in found if s.available] + [s for s in found if not s.available]


def _verbs(typed: str, state: CompletionState) -> list[Suggestion]:
    caps = state.capabilities
    options: list[tuple[str, str, bool]] = []
    for verb in _ORDER:
        keyword = EXTENSION_VERBS.get(verb)
        note = ""
        if verb == "STARTTLS" and (state.is_tls or caps is None or "STARTTLS" not in caps):
            continue  # useless under TLS or when not offered; before EHLO it goes last
        if keyword is not None and caps is None:
            note = "send EHLO to see if it is offered"
        elif keyword is not None and caps is not None and keyword not in caps:
            note = "not advertised"
        elif verb in ("EHLO", "HELO") and state.lmtp:
            note = "LMTP uses LHLO"
        elif verb == "LHLO" and not state.lmtp:
            note = "LMTP only"
        elif verb == "AUTH" and state.authenticated:
            note = "already authenticated"
        meta = _VERB_META[verb]
        options.append((verb, f"({note}) {meta}" if note else meta, not note))
    if caps is None and not state.is_tls:
        options.append(("STARTTLS", f"(send EHLO first) {_VERB_META['STARTTLS']}", False))
    return _words(typed, options, case="")


def _envelope(
    rest: str, verb: str, lead: str, params: list[tuple[str, str, bool]]
) -> list[Suggestion]:
    """``MAIL FROM:<`` / ``RCPT TO:<``, then parameters after ``<address> ``."""
    addr = re.match(r"\s*" + re.escape(lead[:-2]) + r":\s*<[^>]*>", rest, re.IGNORECASE)
    if addr is None:
        stripped = rest.lstrip()
        if " " in stripped or not lead.lower().startswith(stripped.lower()):
            return []
        if stripped.lower() == lead.lower():
            return []
        mode = _case(stripped, verb)
        text = _apply(lead, mode)
        return [Suggestion(text=text, start=-len(stripped), display=text,
                           meta=_VERB_META[verb.upper()])]  # fmt: skip
    tail = rest[addr.end() :]
    if not tail or not tail[0].isspace():
        return []
    done = tail.split() if tail[-1].isspace() else tail.split()[:-1]
    used = {w.split("=", 1)[0].upper() for w in done}
    fresh = [p for p in params if p[0].split("=", 1)[0].upper() not in used]
    return _words(tail, fresh, case=verb)


def _mail_params(state: CompletionState) -> list[tuple[str, str, bool]]:
    caps = state.capabilities
    if caps is None:
        return []
    out: list[tuple[str, str, bool]] = []
    if "SIZE" in caps:
        limit = caps.size_limit
        where = f"; the server takes up to {human_size(limit)}" if limit else ""
        out.append(("SIZE=", f"the message size in octets{where}", True))
    if "8BITMIME" in caps:
        out.append(("BODY=8BITMIME", "the body has 8-bit MIME text (RFC 6152)", True))
        out.append(("BODY=7BIT", "the body is plain 7-bit text", True))
    if "BINARYMIME" in caps:
        out.append(("BODY=BINARYMIME", "binary MIME body, sent with BDAT (RFC 3030)", True))
    if "SMTPUTF8" in caps:
        out.append(("SMTPUTF8", "UTF-8 addresses and headers (RFC 6531)", True))
    if "DSN" in caps:
        out.append(("RET=FULL", "a bounce returns the whole message (RFC 3461)", True))
        out.append(("RET=HDRS", "a bounce returns only the headers (RFC 3461)", True))
        out.append(("ENVID=", "an envelope id echoed in delivery reports (RFC 3461)", True))
    if "REQUIRETLS" in caps:
        out.append(("REQUIRETLS", "only relay over validated TLS (RFC 8689)", True))
    return out


def _rcpt_params(state: CompletionState) -> list[tuple[str, str, bool]]:
    caps = state.capabilities
    if caps is None or "DSN" not in caps:
        return []
    return [
        ("NOTIFY=", "SUCCESS,FAILURE,DELAY or NEVER (RFC 3461)", True),
        ("ORCPT=", "the original recipient: ORCPT=rfc822;address (RFC 3461)", True),
    ]


_SASL_MECH = re.compile(r"[A-Z0-9_-]{1,20}", re.ASCII)
"""RFC 4422 ``sasl-mech``: only such a word is ever inserted into the command line (a
server's "mechanism" with controls, spaces or non-ASCII, escaped for display, is not one)."""


def _auth(rest: str, verb: str, state: CompletionState) -> list[Suggestion]:
    if " " in rest.lstrip() or state.capabilities is None:
        return []  # after the mechanism comes the initial response: never guess it
    mechs = [(m, "SASL mechanism advertised by the server", True)
             for m in state.capabilities.auth_mechanisms if _SASL_MECH.fullmatch(m)]  # fmt: skip
    return _words(rest, mechs, case=verb)


def _headers(typed: str) -> list[Suggestion]:
    out: list[Suggestion] = []
    for name in HEADERS:
        if name.lower().startswith(typed.lower()):
            out.append(Suggestion(text=name + " ", start=-len(typed), display=name,
                                  meta="message header"))  # fmt: skip
    return out


# ---- meta-commands -------------------------------------------------------------------
def _meta(text: str, prefix: str, state: CompletionState) -> list[Suggestion]:
    body = text[len(prefix) :]
    name, space, args = body.partition(" ")
    if not space:
        return _meta_names(name, prefix, state)
    spec = _find_meta(name, state)
    if spec is None:
        return []
    return _meta_args(spec, args.lstrip(), state)


def _find_meta(name: str, state: CompletionState) -> CommandSpec | None:
    low = name.lower()
    for spec in state.meta_commands:
        if spec.name.lower() == low or low in (a.lower() for a in spec.aliases):
            return spec
    return None


def _meta_names(typed: str, prefix: str, state: CompletionState) -> list[Suggestion]:
    out: list[Suggestion] = []
    low = typed.lower()
    start = -(len(prefix) + len(typed))
    for spec in state.meta_commands:
        names = [spec.name] if spec.name.lower().startswith(low) else []
        if not names and low:
            names = [a for a in spec.aliases if a.lower().startswith(low)]
        for n in names:
            if n.lower() == low:
                continue
            meta = spec.help if n == spec.name else f"= {prefix}{spec.name}: {spec.help}"
            out.append(Suggestion(text=prefix + n, start=start, display=prefix + n, meta=meta))
    return out


@dataclass(frozen=True)
class _Cursor:
    """Where the cursor stands in a meta-command's arguments."""

    arg: Arg | None
    """The declared argument being typed (None: past the last, or a flag's value)."""
    partial: str
    done: tuple[str, ...]
    """The words before the one being typed."""
    flag_value: bool
    past_args: bool


def _cursor(spec: CommandSpec, args: str) -> _Cursor:
    words = args.split()
    partial = "" if not args or args[-1].isspace() else words.pop()
    takes_value = {f.name: f.value is not None for f in spec.flags}
    position = 0
    wants_value = False
    for word in words:
        if wants_value:
            wants_value = False
        elif word in takes_value:
            wants_value = takes_value[word]
        else:
            position += 1
    arg = spec.args[position] if position < len(spec.args) and not wants_value else None
    return _Cursor(arg, partial, tuple(words), wants_value, position >= len(spec.args))


def _meta_args(spec: CommandSpec, args: str, state: CompletionState) -> list[Suggestion]:
    cur = _cursor(spec, args)
    if cur.flag_value:
        return []  # the user types the flag's value
    options: dict[str, tuple[str, bool]] = {}
    arg = cur.arg
    if arg is not None:
        if arg.kind is Kind.MECHANISM:
            options.update(_mechanisms(state, arg.words))
        else:
            options.update((w, ("", True)) for w in arg.words)
        if arg.kind is Kind.COMMAND:
            options.update((m.name, (m.help, True)) for m in state.meta_commands)
        elif arg.kind is Kind.TOPIC:
            options.update((k, ("", True)) for k in KEYWORDS)
    if cur.partial.startswith("-") or cur.past_args:
        options.update((f.name, ("", True)) for f in spec.flags if f.name not in cur.done)
    found = [(w, meta, ok) for w, (meta, ok) in options.items()]
    return _words(cur.partial, found, case=None)


def _mechanisms(state: CompletionState, known: Sequence[str]) -> dict[str, tuple[str, bool]]:
    """The mechanisms the command declares: the advertised ones first, the others marked."""
    caps = state.capabilities
    offered = caps.auth_mechanisms if caps is not None else ()
    out = {m: ("advertised by the server", True) for m in known if m in offered}
    note = "send EHLO to see what is offered" if caps is None else "not advertised"
    out.update((m, (note, False)) for m in known if m not in offered)
    return out


def file_argument(text_before_cursor: str, state: CompletionState) -> str | None:
    """The partial file name at the cursor when a meta-command takes a file there, else None.

    The completer (``completer.py``) lists the files: prompt_toolkit's ``PathCompleter``.
    """
    text = text_before_cursor.rsplit("\n", 1)[-1]
    if state.in_auth:
        return None
    prefix = DATA_ESCAPE if state.in_data else PREFIX
    if not text.startswith(prefix):
        return None
    name, space, args = text[len(prefix) :].partition(" ")
    spec = _find_meta(name, state) if space else None
    if spec is None:
        return None
    cur = _cursor(spec, args.lstrip())
    if cur.arg is None or cur.arg.kind is not Kind.FILE:
        return None
    return cur.partial
