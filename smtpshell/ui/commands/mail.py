"""Meta-commands that compose mail: /send, /bdat, /msg and /raw.

They talk to the server only through the
``Session``; the byte work (line endings, dot-stuffing, sizes, escapes) is in
``smtpshell.compose``.

The client core follows every byte sent (a "." line inside /raw ends DATA, an accepted
``BDAT … LAST`` ends the transaction), so nothing here writes into its state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...compose import (
    DEFAULT_CHUNK_SIZE,
    DataStats,
    bdat_chunks,
    check_message_file,
    describe_bytes,
    iter_data_chunks,
    notable_sequences,
    quick_message,
    scan_message,
    size_parameter,
)
from ...escapes import parse_escapes
from ...protocol.events import Reply
from ...protocol.state import Stage
from ...status import ExitStatus
from .registry import Arg, CommandSpec, Flag, Kind, command

if TYPE_CHECKING:
    from ..core import ShellCore

_FILE = Arg("FILE", Kind.FILE)
_SEND_FLAGS = (Flag("--force"), Flag("--chunk", "N"))
SEND_SPEC = CommandSpec(name="send", args=(_FILE,), flags=(Flag("--bdat"), *_SEND_FLAGS))
SEND_USAGE = SEND_SPEC.usage
"""``/send FILE [--bdat] [--force] [--chunk N]``, from the declaration."""
PRESCAN_MAX = 4 * 1024 * 1024
"""Message files up to this size are scanned before sending, so the exact size, line
count and warnings come first.  Bigger files are read once, while they are sent (the
figures follow in the summary), unless the exact size is needed to respect SIZE."""


@dataclass(frozen=True)
class SendArgs:
    """``/send``'s parsed arguments."""

    path: str
    bdat: bool = False
    force: bool = False
    chunk_size: int = DEFAULT_CHUNK_SIZE


def parse_send_args(args: str, *, bdat: bool = False) -> SendArgs | str:
    """The arguments of /send (or /bdat), or a one-line problem."""
    import shlex

    try:
        words = shlex.split(args)
    except ValueError as exc:
        return f"/send: {exc} (usage: {SEND_USAGE})"
    paths: list[str] = []
    force = False
    chunk_size = DEFAULT_CHUNK_SIZE
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "--bdat":
            bdat = True
        elif word == "--force":
            force = True
        elif word == "--chunk" or word.startswith("--chunk="):
            if word == "--chunk":
                if i >= len(words):
                    return "/send: --chunk needs a number of bytes"
                value = words[i]
                i += 1
            else:
                value = word.partition("=")[2]
            if not value.isdigit() or int(value) < 1:
                return f"/send: --chunk needs a positive number of bytes, not {value!r}"
            chunk_size = int(value)
        elif word.startswith("--") and word != "--":
            return f"/send: unknown option {word} (usage: {SEND_USAGE})"
        else:
            paths.append(word)
    if len(paths) != 1:
        return f"/send: give exactly one message file (usage: {SEND_USAGE})"
    return SendArgs(os.path.expanduser(paths[0]), bdat, force, chunk_size)


def _positive(replies: list[Reply]) -> bool:
    return bool(replies) and replies[-1].code // 100 == 2


def _ready_for_message(core: ShellCore, *, bdat: bool) -> bool:
    """Is there a transaction with a recipient to send the message in?  Says why not."""
    s = core.session
    r = core.renderer
    if not s.connected:
        r.error("not connected (use /reconnect)")
        return False
    if s.in_data:
        if bdat:
            r.error("BDAT cannot follow DATA: end this message with '.' first")
            return False
        return True
    if bdat and (s.capabilities is None or "CHUNKING" not in s.capabilities):
        r.error("the server does not advertise CHUNKING (RFC 3030), so BDAT is not available"
                + (" (send EHLO first)" if s.capabilities is None else ""))
        return False
    if s.stage is Stage.NONE:
        r.error("no mail transaction: send MAIL FROM and RCPT TO first (or use /msg)")
        return False
    if s.stage is Stage.MAIL:
        r.error("no recipient accepted yet: send RCPT TO first")
        return False
    return True


def _size_report(core: ShellCore, name: str, stats: DataStats, force: bool) -> bool:
    """Say how big the message is against the server's SIZE; False to refuse."""
    r = core.renderer
    caps = core.session.capabilities
    limit = caps.size_limit if caps is not None else None
    size = stats.message_bytes
    if limit is None or limit == 0:  # SIZE 0: no fixed limit (RFC 1870 §4)
        r.info(f"{name}: {size} bytes, {stats.lines} lines (the server announced no SIZE limit)")
    elif size > limit:
        if not force:
            r.error(f"{name} is {size} bytes; the server's SIZE limit is {limit} (RFC 1870): "
                    "not sent (--force sends it anyway)")
            return False
        r.warn(f"{name} is {size} bytes, over the server's SIZE limit of {limit}: sending anyway")
    else:
        r.info(f"{name}: {size} bytes, {stats.lines} lines (the server accepts up to {limit})")
    if stats.long_lines:
        r.warn(f"{stats.long_lines} line(s) longer than 1000 octets: RFC 5321 §4.5.3.1.6 "
               "allows 1000, and the server may refuse the message")
    if stats.bare_line_endings:
        r.info(f"{stats.bare_line_endings} bare LF/CR line ending(s) will go out as CRLF "
               "(RFC 5321 §2.3.8)")
    return True


def _needs_prescan(core: ShellCore, on_disk: int) -> bool:
    """Scan first: a small file, or a SIZE limit the file may or may not fit under."""
    if on_disk <= PRESCAN_MAX:
        return True
    caps = core.session.capabilities
    limit = caps.size_limit if caps is not None else None
    # CRLF normalisation adds at most one octet per octet, plus a final CRLF.
    return limit is not None and 0 < limit < 2 * on_disk + 2


def _size_on_disk_report(core: ShellCore, name: str, on_disk: int) -> None:
    """A big file that surely fits: say its size now, the exact figures after sending."""
    caps = core.session.capabilities
    limit = caps.size_limit if caps is not None else None
    within = (f"the server accepts up to {limit}" if limit
              else "the server announced no SIZE limit")
    core.renderer.info(f"{name}: {on_disk} bytes on disk ({within}); streaming it")


async def send_file(core: ShellCore, args: str, *, bdat: bool = False) -> None:
    """/send and /bdat: stream a message file into DATA (or BDAT chunks).

    A message that is not sent is a failed step: batch mode exits 1 for a problem found
    before anything went out (no such file, a binary file, no CHUNKING, over SIZE...);
    a refused DATA or BDAT is the server's reply, 8, as ever.
    """
    if not await _send_file(core, args, bdat=bdat):
        core.status = ExitStatus.ERROR  # batch mode: this step failed


async def _send_file(core: ShellCore, args: str, *, bdat: bool) -> bool:
    """False when the message was not sent for a reason the shell found (said in one
    line); True when it was handed to the server (its replies judge the rest)."""
    r = core.renderer
    parsed = parse_send_args(args, bdat=bdat)
    if isinstance(parsed, str):
        r.error(parsed)
        return False
    problem = check_message_file(parsed.path)
    if problem:
        r.error(problem)
        return False
    if not _ready_for_message(core, bdat=parsed.bdat):
        return False
    name = os.path.basename(parsed.path) or parsed.path
    try:
        on_disk = os.path.getsize(parsed.path)
        scanned = scan_message(parsed.path, parsed.chunk_size) if _needs_prescan(
            core, on_disk) else None
    except OSError as exc:
        r.error(f"{parsed.path}: cannot read it ({exc.strerror or exc})")
        return False
    if scanned is None:
        _size_on_disk_report(core, name, on_disk)
    elif not _size_report(core, name, scanned, parsed.force):
        return False
    try:
        if parsed.bdat:
            await _send_bdat(core, parsed, name)
        else:
            await _send_data(core, parsed, name)
    except OSError as exc:
        r.error(f"{parsed.path}: reading failed part way ({exc.strerror or exc}); the message "
                "is incomplete: close the connection (/close) rather than end it")
        return False
    return True


async def _send_data(core: ShellCore, parsed: SendArgs, name: str) -> None:
    s = core.session
    r = core.renderer
    if not s.in_data:
        core.last_replies = await s.send("DATA", origin="shell")
        if not s.in_data:
            r.error("the server did not answer DATA with 354: message not sent")
            return
    stats = DataStats()
    shown = f"[{name}: the message, CRLF and dot-stuffed]"
    with open(parsed.path, "rb") as fileobj:
        for chunk in iter_data_chunks(fileobj, parsed.chunk_size, terminator=False, stats=stats):
            # One line on the screen for the whole body ("" marks the chunks after the
            # first); the summary follows the last chunk.
            await s.send_raw(chunk, shown=shown)
            shown = ""
            if not s.connected:
                r.error(f"the connection closed after {stats.wire_bytes} bytes of {name}")
                return
    r.info(f"sent {name}: {stats.summary()}")
    core.last_replies = await s.send(".", origin="shell")


async def _send_bdat(core: ShellCore, parsed: SendArgs, name: str) -> None:
    s = core.session
    r = core.renderer
    stats = DataStats()
    with open(parsed.path, "rb") as fileobj:
        for data, last in bdat_chunks(fileobj, parsed.chunk_size, stats=stats):
            head = f"BDAT {len(data)}" + (" LAST" if last else "")
            shown = f"{head}  [{len(data)} octets of {name}]"
            replies = await s.send_bdat(data, last=last, shown=shown)
            core.last_replies = replies
            if not _positive(replies):
                r.error(f"{head} was not accepted: the message is not delivered "
                        "(send RSET to start over)")
                return
    r.info(f"sent {name} with BDAT: {stats.summary()}")


@command("send", "send a message file: DATA, the file (CRLF, dot-stuffed), '.'; "
         "--bdat uses CHUNKING", args=SEND_SPEC.args, flags=SEND_SPEC.flags)
async def _send(core: ShellCore, args: str) -> None:
    await send_file(core, args)


@command("bdat", "send a message file with BDAT chunks (RFC 3030), like /send FILE --bdat",
         args=(_FILE,), flags=_SEND_FLAGS)
async def _bdat(core: ShellCore, args: str) -> None:
    await send_file(core, args, bdat=True)


# ---- /msg ----------------------------------------------------------------------------


def _address(text: str) -> str | None:
    """A bare address from ``a@b`` or ``<a@b>``, or None when it is not one."""
    addr = text[1:-1] if text.startswith("<") and text.endswith(">") else text
    if not addr or not addr.isascii() or any(c in addr for c in " <>\t\"") or "@" not in addr:
        return None
    return addr


@command("msg", "send a quick test message: MAIL FROM, RCPT TO, DATA, a small message, '.'",
         args=(Arg("FROM"), Arg("TO[,TO...]"), Arg("SUBJECT...", optional=True)))
async def _msg(core: ShellCore, args: str) -> None:
    r = core.renderer
    s = core.session
    words = args.split()
    if len(words) < 2:
        r.error("usage: /msg FROM TO[,TO...] [SUBJECT...]")
        return
    sender = _address(words[0])
    recipients = [_address(a) for a in words[1].split(",") if a]
    if sender is None:
        r.error(f"/msg: {words[0]!r} is not an address like user@example.org")
        return
    bad = [a for a, got in zip(words[1].split(","), recipients, strict=False) if got is None]
    if bad or not recipients:
        r.error(f"/msg: {(bad or [words[1]])[0]!r} is not an address like user@example.org")
        return
    rcpts = [a for a in recipients if a is not None]
    subject = " ".join(words[2:]) or "smtpshell test message"
    if not s.connected:
        r.error("not connected (use /reconnect)")
        return
    if s.in_data:
        r.error("in DATA: end this message with '.' first")
        return
    if s.stage is not Stage.NONE:
        r.error("a mail transaction is already open: send RSET first")
        return
    if s.capabilities is None:
        ehlo = await s.ehlo()
        if ehlo is None or ehlo.code // 100 != 2:
            r.error("EHLO was not accepted: message not sent")
            return
    message = quick_message(sender, rcpts, subject=subject)
    mail = f"MAIL FROM:<{sender}>"
    caps = s.capabilities
    if caps is not None and "SIZE" in caps:
        mail += " " + size_parameter(len(message))
    if not await core.allowed(mail):
        return
    core.last_replies = await s.send(mail, origin="shell")
    if not _positive(core.last_replies):
        r.error("MAIL FROM was not accepted: message not sent")
        return
    accepted = 0
    for rcpt in rcpts:
        core.last_replies = await s.send(f"RCPT TO:<{rcpt}>", origin="shell")
        accepted += _positive(core.last_replies)
    if not accepted:
        r.error("no recipient was accepted: message not sent (sending RSET)")
        await s.send("RSET", origin="shell")
        return
    core.last_replies = await s.send("DATA", origin="shell")
    if not s.in_data:
        r.error("DATA was not accepted: message not sent (sending RSET)")
        await s.send("RSET", origin="shell")
        return
    lines = message.decode("ascii").split("\r\n")[:-1]
    core.last_replies = await s.send_lines([*lines, "."], origin="shell")


# ---- /raw ----------------------------------------------------------------------------


@command("raw", r"send exact bytes; escapes \r \n \t \0 \\ \xNN, no CRLF added",
         args=(Arg("TEXT"),))
async def _raw(core: ShellCore, args: str) -> None:
    r = core.renderer
    s = core.session
    if not args:
        r.error(r"usage: /raw TEXT (escapes \r \n \t \0 \\ \xNN; write \r\n to end a line)")
        return
    try:
        data = parse_escapes(args)
    except ValueError as exc:
        r.error(f"/raw: {exc}")
        return
    if not s.connected:
        r.error("not connected (use /reconnect)")
        return
    in_data = s.in_data
    first = data.split(b"\n", 1)[0].removesuffix(b"\r").decode("utf-8", "surrogateescape")
    if not in_data and not await core.allowed(first):
        return
    (r.warn if notable_sequences(data) else r.info)(f"raw: {describe_bytes(data)}")
    # The core follows the bytes: each command line in them waits for its reply, and
    # CRLF "." CRLF ends a message.
    replies = await s.send_raw(data)
    if replies or not in_data:
        core.last_replies = replies
