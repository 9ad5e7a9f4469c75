"""Matching recorded transcript lines against live ones: the rules of the format spec.

Pure functions: replay matches server replies with :func:`match_reply`, the mock server
matches client lines with :func:`match_client_line` / :func:`match_send`. Each returns None
on success or a :class:`Mismatch` whose :meth:`~Mismatch.render` is a small diff.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from smtpshell.protocol.sasl.redact import for_report
from smtpshell.transcript.model import (
    SECRET_PARAMS,
    VOLATILE_KINDS,
    ClientBytes,
    ClientEntry,
    ClientLine,
    Elided,
    ElidedBytes,
    Event,
    SecretRef,
    Send,
    ServerLine,
    Volatile,
    reply_parts,
)
from smtpshell.transcript.syntax import escape_text, format_entry

# The command verb, and the FROM:/TO: keyword of MAIL and RCPT, compare case-insensitively.
_VERB_RE = re.compile(r"[A-Za-z]+(?: (?:FROM|TO):)?", re.IGNORECASE | re.ASCII)
_SECRET_PATTERN = r"\S+"
# MAIL FROM:/RCPT TO: lines, whose ESMTP parameters the default rule leaves to the client.
_ENVELOPE_RE = re.compile(r"(?:MAIL +FROM|RCPT +TO):", re.IGNORECASE | re.ASCII)
_PARAMETERS_PATTERN = r"(?: +[^ ]+)* *"


@dataclass(frozen=True)
class Mismatch:
    """Why live lines did not match the transcript, with both sides for a diff."""

    reason: str
    lineno: int | None
    expected: tuple[ServerLine | ClientEntry, ...]
    got: tuple[str, ...]
    got_tls: bool | None = None  # TLS state of the got lines; None: as expected
    source: str | None = None

    def render(self) -> str:
        """``file:14: reason`` then ``-`` expected transcript lines, ``+`` got lines."""
        if self.lineno is None:
            where = self.source or "transcript"
        else:
            where = f"{self.source}:{self.lineno}" if self.source else f"line {self.lineno}"
        out = [f"{where}: {self.reason}"]
        for entry in self.expected:
            number = "" if entry.lineno is None else str(entry.lineno)
            shown = format_entry(entry)
            if isinstance(entry, ClientLine | ClientBytes):  # a credential written out
                shown = for_report(shown)
            out.append(f"- {number:>4} {shown}")
        marker = self._got_marker()
        client = marker in ("->", "~>")
        for text in self.got:
            text = for_report(text) if client else text  # AUTH PLAIN <credential redacted>
            out.append(f"+      {marker} {escape_text(text)}".rstrip())
        if not self.got:
            out.append("+      (nothing)")
        return "\n".join(out)

    def _got_marker(self) -> str:
        first = self.expected[0] if self.expected else None
        tls = self.got_tls
        if tls is None:
            tls = bool(first is not None and first.tls)
        if isinstance(first, ServerLine):
            return "<~" if tls else "<-"
        if isinstance(first, ClientBytes | ElidedBytes):
            return "~>>" if tls else "->>"
        return "~>" if tls else "->"


# --------------------------------------------------------------------------- single lines


@functools.lru_cache(maxsize=1024)
def template_regex(
    parts: tuple[str | Volatile | SecretRef, ...], command: bool = False,
    parameters: bool = False,
) -> re.Pattern[str]:
    """A regex for a line's parts: text literally, placeholders by their kind's pattern.

    With ``command``, the leading verb (and MAIL/RCPT's FROM:/TO:) is case-insensitive;
    with ``parameters``, any ESMTP parameters may follow (`` SIZE=18 BODY=8BITMIME``).
    """
    pieces: list[str] = []
    for index, part in enumerate(parts):
        if isinstance(part, str):
            verb = _VERB_RE.match(part) if command and index == 0 else None
            if verb:
                pieces.append("(?ai:" + re.escape(verb[0]) + ")")
                part = part[verb.end() :]
            pieces.append(re.escape(part))
        elif isinstance(part, Volatile):
            pieces.append("(?:" + VOLATILE_KINDS[part.kind] + ")")
        else:
            pieces.append(_SECRET_PATTERN)
    if parameters:
        pieces.append(_PARAMETERS_PATTERN)
    return re.compile("".join(pieces), re.DOTALL)


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _rule_reason(line: ServerLine | ClientLine, got: str, *, command: bool) -> str | None:
    """Reason for an explicit rule (or a text comparison) failing; None if it matches."""
    rule = line.rule
    if rule.kind == "any":
        return None
    if rule.kind == "glob":
        assert rule.pattern is not None
        return None if fnmatchcase(got, rule.pattern) else f"no match for ~glob {rule.pattern}"
    if rule.kind == "re":
        assert rule.pattern is not None
        return None if _regex(rule.pattern).fullmatch(got) else f"no match for ~re {rule.pattern}"
    command = command and rule.kind == "default"
    if template_regex(line.parts, command).fullmatch(got):
        return None
    if command and _ENVELOPE_RE.match(line.text):
        # MAIL/RCPT: ESMTP parameters (SIZE=, BODY=, SMTPUTF8, RET=, NOTIFY=...) vary by client
        head = _without_parameters(line.parts)
        if head is not None and template_regex(head, True, True).fullmatch(got):
            return None
    return "text differs" if rule.kind == "default" else "text differs (~exact)"


def _without_parameters(
    parts: tuple[str | Volatile | SecretRef, ...],
) -> tuple[str | Volatile | SecretRef, ...] | None:
    """A MAIL/RCPT line's parts up to the end of its address (``<...>``), parameters dropped;
    None if the line has no ``<...>`` address."""
    out: list[str | Volatile | SecretRef] = []
    for part in parts:
        if isinstance(part, str) and ">" in part:
            out.append(part[: part.index(">") + 1])
            return tuple(out)
        out.append(part)
    return None


def _server_reason(expected: ServerLine, got: str) -> str | None:
    if expected.rule.kind != "default":
        return _rule_reason(expected, got, command=False)
    code, final, enhanced = reply_parts(expected.text)
    if code is None:  # not a reply line when recorded: nothing but the text to go by
        return _rule_reason(expected, got, command=False)
    got_code, got_final, got_enhanced = reply_parts(got)
    if got_code != code:
        return f"expected reply code {code}, got {got_code or 'a line without one'}"
    if got_final != final:
        return (f"expected the last line of the reply ('{code} ')" if final
                else f"expected a continuation line ('{code}-')")
    if enhanced is not None and got_enhanced != enhanced:
        return f"expected enhanced status {enhanced}, got {got_enhanced or 'none'}"
    return None


def _tls_reason(recorded: bool, live: bool | None) -> str | None:
    """Why the TLS state differs (``live`` None: not checked)."""
    if live is None or live == recorded:
        return None
    return ("recorded inside TLS, but this went in the clear" if recorded
            else "recorded in the clear, but this went inside TLS")


def match_server_line(
    expected: ServerLine, got: str, *, tls: bool | None = None
) -> Mismatch | None:
    """One reply line. Default rule: same code, same kind of line (``250-``/``250 ``), and the
    same enhanced status code if the recorded line has one; the text may differ.
    With ``tls`` (the live TLS state), a line recorded in the other state is a mismatch."""
    reason = _tls_reason(expected.tls, tls) or _server_reason(expected, got)
    if reason is None:
        return None
    return Mismatch(reason, expected.lineno, (expected,), (got,), tls)


def match_client_line(
    expected: ClientLine, got: str, *, body: bool = False, tls: bool | None = None
) -> Mismatch | None:
    """One client line. Default rule: exact text except the case of the command verb (and
    of FROM:/TO:); inside a DATA body (``body=True``) exact. A secret matches any token."""
    reason = _tls_reason(expected.tls, tls) or _rule_reason(expected, got, command=not body)
    if reason is None:
        return None
    return Mismatch(reason, expected.lineno, (expected,), (got,), tls)


def match_client_bytes(
    expected: ClientBytes, got: bytes, *, tls: bool | None = None
) -> Mismatch | None:
    """Exact bytes (``->>``): the same bytes, all of them (no rule, no placeholder)."""
    reason = _tls_reason(expected.tls, tls)
    if reason is None and got != expected.data:
        reason = ("the client sent fewer bytes" if expected.data.startswith(got)
                  else "bytes differ")
    if reason is None:
        return None
    return Mismatch(reason, expected.lineno, (expected,),
                    (got.decode("utf-8", "surrogateescape"),), tls)


def match_send(send: Send, got: Sequence[str], *, tls: bool | None = None) -> Mismatch | None:
    """The client lines of one :class:`Send` step (an elision matches by count and sha256);
    a Send with exact bytes (``->>``) is matched by the mock byte by byte, not here."""
    expected = send.lines
    lineno = expected[0].lineno if expected else None
    if expected and (reason := _tls_reason(expected[0].tls, tls)):
        return Mismatch(reason, lineno, expected, tuple(got), tls)
    index = 0
    for entry in expected:
        if isinstance(entry, ClientBytes | ElidedBytes):
            return Mismatch("exact bytes are matched as bytes, not lines", entry.lineno,
                            expected, tuple(got), tls)
        if isinstance(entry, Elided):
            chunk = list(got[index : index + entry.lines])
            if not entry.matches(chunk):
                return Mismatch("the body differs from the elided lines (count, bytes or sha256)",
                                entry.lineno, expected, tuple(got), tls)
            index += entry.lines
            continue
        if index >= len(got):
            return Mismatch("the client sent fewer lines", entry.lineno, expected, tuple(got), tls)
        mismatch = match_client_line(entry, got[index], body=send.body)
        if mismatch is not None:
            return Mismatch(mismatch.reason, entry.lineno, expected, tuple(got), tls)
        index += 1
    if index < len(got):
        return Mismatch("the client sent more lines", lineno, expected, tuple(got), tls)
    return None


# --------------------------------------------------------------------------- credentials


def credentials_problem(secret: SecretRef, wanted: str, got: str) -> str | None:
    """Why the AUTH answer ``got`` carries other credentials than ``wanted`` (the transcript's
    secret, resolved); None if they agree. The words name variables, never a secret."""
    variable = next((v for k, v in secret.params if k in SECRET_PARAMS), "the secret")
    if secret.mech == "raw":
        return None if got == wanted else f"the credential differs from {variable}"
    try:
        want = base64.b64decode(wanted, validate=True)
        have = base64.b64decode(got, validate=True)
    except (binascii.Error, ValueError):
        return "the AUTH answer is not base64"
    if secret.mech == "plain":
        w, h = want.split(b"\0"), have.split(b"\0")
        if len(h) != 3:
            return "the PLAIN answer is not authzid NUL user NUL password"
        if h[1] != w[1]:
            return "the user name differs from the transcript's"
        if h[2] != w[2]:
            return f"the password differs from {variable}"
        if secret.get("authzid") is not None and h[0] != w[0]:
            return "the authorization identity differs from the transcript's"
        return None
    if have == want:
        return None
    if secret.mech == "login":
        return ("the user name differs from the transcript's" if secret.get("user") is not None
                else f"the password differs from {variable}")
    return f"the {secret.mech.upper()} answer differs (user name or {variable})"


# --------------------------------------------------------------------------- DATA bodies

SKIP = "skip"
"""``== skip`` inside a DATA body: any client lines, none or many, up to the next one that
matches (a client's own headers: Date, Message-ID, X-Mailer, MIME-Version, User-Agent)."""

BodyEntry = ClientLine | Elided | Event
MAX_ALIGNMENT = 1_000_000  # (recorded lines x received lines) beyond which a differing body
# is reported whole rather than aligned line by line (the alignment tries each pair)


def summary(lines: Sequence[str]) -> str:
    """``(500 lines, 12345 bytes, sha256=…)``: lines too many to show, as an elision counts them."""
    counted = Elided.of(lines)
    return f"({counted.lines} lines, {counted.nbytes} bytes, sha256={counted.sha256})"


def is_skip(entry: object) -> bool:
    return isinstance(entry, Event) and entry.kind == SKIP


def _literal(entry: ClientLine) -> str | None:
    """The text a body line must equal, if it has no placeholder and no rule."""
    if entry.rule.kind == "default" and all(isinstance(p, str) for p in entry.parts):
        return entry.text
    return None


def _fits(entry: ClientLine, line: str) -> bool:
    literal = _literal(entry)
    if literal is not None:
        return literal == line
    return match_client_line(entry, line, body=True) is None


def body_fits(pattern: Sequence[BodyEntry], got: Sequence[str]) -> bool:
    """True if the body lines ``got`` (the final ``.`` included) match ``pattern``: client
    lines one each, an elision its count of lines by digest, a skip any number of lines."""
    positions = {0}
    for entry in pattern:
        if isinstance(entry, Event):
            if not is_skip(entry):
                continue
            positions = set(range(min(positions), len(got) + 1))
        elif isinstance(entry, Elided):
            positions = {p + entry.lines for p in positions
                         if p + entry.lines <= len(got)
                         and entry.matches(got[p : p + entry.lines])}
        else:
            positions = {p + 1 for p in positions if p < len(got) and _fits(entry, got[p])}
        if not positions:
            return False
    return len(got) in positions


def match_body(
    pattern: Sequence[BodyEntry], got: Sequence[str], *, tls: bool | None = None
) -> list[Mismatch]:
    """Every difference between a received DATA body and the transcript's (empty: it fits).

    The lines are aligned (``difflib``), so a body with three changed headers gives three
    small diffs; lines the client adds where the transcript has ``== skip`` are no
    difference. A body with elided lines, or a very long one, that differs is one mismatch.
    """
    if body_fits(pattern, got):
        return []
    lines = [e for e in pattern if not isinstance(e, Event)]
    first = lines[0].lineno if lines else None
    elisions = [(k, e) for k, e in enumerate(lines) if isinstance(e, Elided)]
    if elisions:  # shown as the elision and a summary of the lines where it stands
        k, elision = elisions[0]
        return [Mismatch("the body differs from the elided lines (count, bytes or sha256)",
                         elision.lineno, (elision,), (summary(got[k : k + elision.lines]),),
                         tls)]
    if len(lines) * len(got) > MAX_ALIGNMENT:
        return [Mismatch("the body differs", first, tuple(lines), (summary(got),), tls)]
    client_lines = [e for e in lines if isinstance(e, ClientLine)]
    skip_at = [False] * (len(client_lines) + 1)
    k = 0
    for entry in pattern:
        if is_skip(entry):
            skip_at[k] = True
        elif isinstance(entry, ClientLine):
            k += 1
    literal: dict[str, list[int]] = {}  # most body lines: looked up, not matched one by one
    patterned: list[int] = []
    for k, entry in enumerate(client_lines):
        text = _literal(entry)
        if text is None:
            patterned.append(k)
        else:
            literal.setdefault(text, []).append(k)
    got_keys: list[int] = []
    last = -1
    for g, text in enumerate(got):
        fits = sorted(literal.get(text, []) + [k for k in patterned
                                               if _fits(client_lines[k], text)])
        later = [k for k in fits if k > last]
        key = later[0] if later else fits[0] if fits else -1 - g
        last = max(last, key)
        got_keys.append(key)
    out: list[Mismatch] = []
    matcher = difflib.SequenceMatcher(None, list(range(len(client_lines))), got_keys,
                                      autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (tag == "insert" and skip_at[i1]):
            continue
        expected = tuple(client_lines[i1:i2])
        received = tuple(got[j1:j2])
        if tag == "insert":
            reason = "the client sent lines the transcript does not have"
            lineno = client_lines[min(i1, len(client_lines) - 1)].lineno if client_lines else first
        elif tag == "delete":
            reason = "the client did not send " + ("this line" if i2 - i1 == 1 else "these lines")
            lineno = expected[0].lineno
        elif skip_at[i1] or skip_at[i2]:  # the client's lines here are skipped but for these
            reason = ("the client did not send this line (it sent these instead)" if i2 - i1 == 1
                      else "the client did not send these lines (it sent these instead)")
            lineno = expected[0].lineno
        else:
            reason = "text differs" if i2 - i1 == 1 == j2 - j1 else "lines differ"
            lineno = expected[0].lineno
        out.append(Mismatch(reason, lineno, expected, received, tls))
    if not out:  # aligned, yet no fit: an order only the alignment forgave
        out.append(Mismatch("the body differs", first, tuple(lines), tuple(got), tls))
    return out


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class _Item:
    line: ServerLine | None  # None: loose filler for continuation lines with these codes
    min: int
    many: bool
    codes: frozenset[int] = frozenset()

    def accepts(self, got: str) -> bool:
        if self.line is not None:
            return _server_reason(self.line, got) is None
        code, final, _ = reply_parts(got)
        return not final and code in self.codes


def _is_loose(line: ServerLine) -> bool:
    return (not line.final and line.rule.kind == "default" and not line.optional
            and not line.repeat)


def _items(expected: Sequence[ServerLine]) -> list[_Item]:
    loose = frozenset(line.code for line in expected if _is_loose(line) and line.code)
    items: list[_Item] = []
    for line in expected:
        if _is_loose(line):
            continue
        if loose:
            items.append(_Item(None, 0, True, loose))
        items.append(_Item(line, 0 if line.optional else 1, line.repeat))
    return items


def match_reply(
    expected: Sequence[ServerLine], got_lines: Sequence[str], *, tls: bool | None = None
) -> Mismatch | None:
    """A whole reply, by the rules of the spec's "Matching a reply":

    lines with an explicit rule or a flag are anchors, matched in order (``~optional`` may be
    absent, ``~repeat`` may match several); continuation lines without either are loose: if
    the reply has any, other continuation lines with their code may appear anywhere before
    the final line (a server that adds or drops an EHLO capability still matches).
    With ``tls`` (the live TLS state), a reply recorded in the other state is a mismatch.
    """
    items = _items(expected)
    n = len(items)
    lineno = expected[0].lineno if expected else None

    def fail(reason: str, line: ServerLine | None = None) -> Mismatch:
        where = line.lineno if line is not None and line.lineno is not None else lineno
        return Mismatch(reason, where, tuple(expected), tuple(got_lines), tls)

    def closure(states: set[tuple[int, bool]]) -> set[tuple[int, bool]]:
        todo = list(states)
        while todo:
            i, used = todo.pop()
            if i < n and (used or items[i].min == 0) and (i + 1, False) not in states:
                states.add((i + 1, False))
                todo.append((i + 1, False))
        return states

    if not got_lines:
        return fail("no reply")
    tls_reason = _tls_reason(expected[0].tls, tls) if expected else None
    if tls_reason:
        return fail(tls_reason)
    states = closure({(0, False)})
    for got in got_lines:
        live = sorted((i, used) for i, used in states if i < n and (not used or items[i].many))
        nxt = {(i, True) for i, used in live if items[i].accepts(got)}
        if not nxt:
            return fail(*_explain(items, live, got))
        states = closure(nxt)
    if (n, False) in states:
        return None
    waiting = sorted(i for i, used in states if i < n and items[i].min and not used)
    line = next((items[i].line for i in waiting if items[i].line is not None), None)
    if line is not None and line.final and line.code is not None:
        return fail(f"the reply ended early: no last line ('{line.code} ')", line)
    return fail("the reply ended early", line)


def _explain(
    items: list[_Item], live: list[tuple[int, bool]], got: str
) -> tuple[str, ServerLine | None]:
    """The reason to show when ``got`` fits none of the items that could take it."""
    candidates = [items[i] for i, _ in live]
    for item in candidates:
        if item.line is not None and item.min:
            return (_server_reason(item.line, got) or "line out of order"), item.line
    for item in candidates:
        if item.line is not None:
            return (_server_reason(item.line, got) or "line out of order"), item.line
    if candidates:
        codes = ", ".join(str(c) for c in sorted(candidates[0].codes))
        return f"unexpected line (a continuation line with code {codes} was allowed)", None
    return "the reply has more lines than the transcript", None
