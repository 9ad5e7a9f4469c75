"""What SMTP replies, enhanced status codes and EHLO keywords mean, kept as data.

``explain(query)`` answers a reply code (``550``), an enhanced status code
(``5.7.1``, ``X.7.1``), a whole reply line (``550 5.7.1 Relaying denied``), an EHLO
keyword or a command verb (``PIPELINING``, ``mail``), each with the RFC it comes
from.  ``hint_for(code, enhanced, text)`` gives one practical hint for common
failures.  Standard library only; nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

__all__ = ["ENHANCED_DETAILS", "KEYWORDS", "REPLY_CODES", "explain", "hint_for"]

_S = "RFC 5321 §4.2.2"  # reply codes by function group (§4.2.3 lists them in numeric order)

#: Basic reply codes: code -> (meaning, source).
REPLY_CODES: Final[dict[int, tuple[str, str]]] = {
    211: ("System status, or system help reply", _S),
    214: ("Help message, for a human reader", _S),
    220: ("<domain> Service ready (also: ready to start TLS after STARTTLS, RFC 3207)", _S),
    221: ("<domain> Service closing transmission channel (the answer to QUIT)", _S),
    235: ("Authentication successful", "RFC 4954 §6"),
    250: ("Requested mail action okay, completed", _S),
    251: ("User not local; will forward to <forward-path>", "RFC 5321 §3.4"),
    252: ("Cannot VRFY user, but will accept the message and attempt delivery",
          "RFC 5321 §3.5.3"),
    334: ("Server challenge in an AUTH exchange: base64 text; answer with a base64 line "
          "or * to cancel", "RFC 4954 §4"),
    354: ("Start mail input; end with <CRLF>.<CRLF> (a line with only a dot)", _S),
    421: ("<domain> Service not available, closing transmission channel", _S),
    432: ("A password transition is needed", "RFC 4954 §6"),
    450: ("Requested mail action not taken: mailbox unavailable (e.g. busy, or temporarily "
          "blocked for policy reasons)", _S),
    451: ("Requested action aborted: local error in processing", _S),
    452: ("Requested action not taken: insufficient system storage (also: too many "
          "recipients, §4.5.3.1.10)", _S),
    454: ("Temporary authentication failure (RFC 4954 §6), or TLS not available due to a "
          "temporary reason (RFC 3207 §4)", "RFC 4954, RFC 3207"),
    455: ("Server unable to accommodate parameters", _S),
    500: ("Syntax error, command unrecognized (may include a command line too long)", _S),
    501: ("Syntax error in parameters or arguments", _S),
    502: ("Command not implemented", _S),
    503: ("Bad sequence of commands", _S),
    504: ("Command parameter not implemented", _S),
    521: ("Host does not accept mail (a null-MX host says so at connection time)",
          "RFC 7504 §3"),
    530: ("Authentication required (or, from RFC 3207: must issue a STARTTLS command first)",
          "RFC 4954 §6"),
    534: ("Authentication mechanism is too weak", "RFC 4954 §6"),
    535: ("Authentication credentials invalid", "RFC 4954 §6"),
    538: ("Encryption required for requested authentication mechanism", "RFC 4954 §6"),
    550: ("Requested action not taken: mailbox unavailable (e.g. not found, no access, or "
          "rejected for policy reasons)", _S),
    551: ("User not local; please try <forward-path>", _S),
    552: ("Requested mail action aborted: exceeded storage allocation", _S),
    553: ("Requested action not taken: mailbox name not allowed (e.g. bad mailbox syntax)", _S),
    554: ("Transaction failed (at connection time: no SMTP service here)", _S),
    555: ("MAIL FROM/RCPT TO parameters not recognized or not implemented", _S),
    556: ("Domain does not accept mail (null MX)", "RFC 7504 §3"),
}  # fmt: skip

_REPLY_CLASSES: Final = {
    "2": "2yz positive completion: the command was accepted",
    "3": "3yz positive intermediate: send the rest (message data, AUTH response)",
    "4": "4yz transient negative completion: temporary, the same command may work later",
    "5": "5yz permanent negative completion: don't repeat the same command unchanged",
}
_REPLY_CATEGORIES: Final = {
    "0": "x0z syntax",
    "1": "x1z information",
    "2": "x2z connections",
    "3": "x3z unspecified",
    "4": "x4z unspecified",
    "5": "x5z mail system",
}

_CLASSES: Final = {
    "2": "Success",
    "4": "Persistent transient failure",
    "5": "Permanent failure",
    "X": "Any class",
}

#: RFC 3463 subjects: subject -> (name, section of RFC 3463 listing its details).
SUBJECTS: Final[dict[int, tuple[str, str]]] = {
    0: ("Other or undefined status", "§3.1"),
    1: ("Addressing status", "§3.2"),
    2: ("Mailbox status", "§3.3"),
    3: ("Mail system status", "§3.4"),
    4: ("Network and routing status", "§3.5"),
    5: ("Mail delivery protocol status", "§3.6"),
    6: ("Message content or media status", "§3.7"),
    7: ("Security or policy status", "§3.8"),
}

_R = ""  # registered by RFC 3463 itself: the subject's section is cited

#: Enhanced status code details: (subject, detail) -> (meaning, source or "" for RFC 3463).
ENHANCED_DETAILS: Final[dict[tuple[int, int], tuple[str, str]]] = {
    (0, 0): ("Other undefined status", _R),
    (1, 0): ("Other address status", _R),
    (1, 1): ("Bad destination mailbox address", _R),
    (1, 2): ("Bad destination system address", _R),
    (1, 3): ("Bad destination mailbox address syntax", _R),
    (1, 4): ("Destination mailbox address ambiguous", _R),
    (1, 5): ("Destination address valid", _R),
    (1, 6): ("Destination mailbox has moved, no forwarding address", _R),
    (1, 7): ("Bad sender's mailbox address syntax", _R),
    (1, 8): ("Bad sender's system address", _R),
    (1, 9): ("Message relayed to non-compliant mailer", "RFC 3886"),
    (1, 10): ("Recipient address has null MX", "RFC 7505"),
    (2, 0): ("Other or undefined mailbox status", _R),
    (2, 1): ("Mailbox disabled, not accepting messages", _R),
    (2, 2): ("Mailbox full", _R),
    (2, 3): ("Message length exceeds administrative limit", _R),
    (2, 4): ("Mailing list expansion problem", _R),
    (3, 0): ("Other or undefined mail system status", _R),
    (3, 1): ("Mail system full", _R),
    (3, 2): ("System not accepting network messages", _R),
    (3, 3): ("System not capable of selected features", _R),
    (3, 4): ("Message too big for system", _R),
    (3, 5): ("System incorrectly configured", _R),
    (3, 6): ("Requested priority was changed", "RFC 6710"),
    (4, 0): ("Other or undefined network or routing status", _R),
    (4, 1): ("No answer from host", _R),
    (4, 2): ("Bad connection", _R),
    (4, 3): ("Directory server failure", _R),
    (4, 4): ("Unable to route", _R),
    (4, 5): ("Mail system congestion", _R),
    (4, 6): ("Routing loop detected", _R),
    (4, 7): ("Delivery time expired", _R),
    (5, 0): ("Other or undefined protocol status", _R),
    (5, 1): ("Invalid command", _R),
    (5, 2): ("Syntax error", _R),
    (5, 3): ("Too many recipients", _R),
    (5, 4): ("Invalid command arguments", _R),
    (5, 5): ("Wrong protocol version", _R),
    (5, 6): ("Authentication exchange line is too long", "RFC 4954"),
    (6, 0): ("Other or undefined media error", _R),
    (6, 1): ("Media not supported", _R),
    (6, 2): ("Conversion required and prohibited", _R),
    (6, 3): ("Conversion required but not supported", _R),
    (6, 4): ("Conversion with loss performed", _R),
    (6, 5): ("Conversion failed", _R),
    (6, 6): ("Message content not available", "RFC 4468"),
    (6, 7): ("Non-ASCII addresses not permitted for that sender/recipient", "RFC 6531"),
    (6, 8): ("UTF-8 string reply is required, but not permitted by the SMTP client",
             "RFC 6531"),
    (6, 9): ("UTF-8 header message cannot be transferred to one or more recipients, so the "
             "message must be rejected", "RFC 6531"),
    (6, 10): ("Duplicate of X.6.8, deprecated", "RFC 6531"),
    (7, 0): ("Other or undefined security status", _R),
    (7, 1): ("Delivery not authorized, message refused", _R),
    (7, 2): ("Mailing list expansion prohibited", _R),
    (7, 3): ("Security conversion required but not possible", _R),
    (7, 4): ("Security features not supported", _R),
    (7, 5): ("Cryptographic failure", _R),
    (7, 6): ("Cryptographic algorithm not supported", _R),
    (7, 7): ("Message integrity failure", _R),
    (7, 8): ("Authentication credentials invalid", "RFC 4954"),
    (7, 9): ("Authentication mechanism is too weak", "RFC 4954"),
    (7, 10): ("Encryption needed: a privacy layer such as TLS is needed for this "
              "authentication mechanism", "RFC 5248"),
    (7, 11): ("Encryption required for requested authentication mechanism", "RFC 4954"),
    (7, 12): ("A password transition is needed", "RFC 4954"),
    (7, 13): ("User account disabled", "RFC 5248"),
    (7, 14): ("Trust relationship required", "RFC 5248"),
    (7, 15): ("Priority level is too low", "RFC 6710"),
    (7, 16): ("Message is too big for the specified priority", "RFC 6710"),
    (7, 17): ("Mailbox owner has changed", "RFC 7293"),
    (7, 18): ("Domain owner has changed", "RFC 7293"),
    (7, 19): ("RRVS test cannot be completed", "RFC 7293"),
    (7, 20): ("No passing DKIM signature found", "RFC 7372"),
    (7, 21): ("No acceptable DKIM signature found", "RFC 7372"),
    (7, 22): ("No valid author-matched DKIM signature found", "RFC 7372"),
    (7, 23): ("SPF validation failed", "RFC 7372"),
    (7, 24): ("SPF validation error", "RFC 7372"),
    (7, 25): ("Reverse DNS validation failed", "RFC 7372"),
    (7, 26): ("Multiple authentication checks failed", "RFC 7372"),
    (7, 27): ("Sender address has null MX", "RFC 7505"),
    (7, 28): ("Mail flood detected", "IANA SMTP enhanced status code registry"),
    (7, 29): ("ARC validation failure", "RFC 8617"),
    (7, 30): ("REQUIRETLS support required", "RFC 8689"),
}  # fmt: skip

#: EHLO keywords and command verbs: upper-case word -> lines.
KEYWORDS: Final[dict[str, tuple[str, ...]]] = {
    "PIPELINING": (
        "PIPELINING (EHLO keyword, RFC 2920): the client may send several commands "
        "before reading their replies; EHLO, DATA, QUIT, NOOP, STARTTLS and AUTH end a group.",
    ),
    "SIZE": (
        "SIZE [n] (EHLO keyword, RFC 1870): the largest message the server accepts, in "
        "octets (0 = no fixed limit); declare yours with MAIL FROM:<...> SIZE=n.",
    ),
    "8BITMIME": (
        "8BITMIME (EHLO keyword, RFC 6152): the server takes 8-bit MIME bodies; say so with "
        "MAIL FROM:<...> BODY=8BITMIME.",
    ),
    "SMTPUTF8": (
        "SMTPUTF8 (EHLO keyword, RFC 6531): UTF-8 allowed in addresses and headers; add "
        "SMTPUTF8 to MAIL FROM to use it.",
    ),
    "STARTTLS": (
        "STARTTLS (EHLO keyword and command, RFC 3207): upgrade this connection to TLS; "
        "after '220' the TLS handshake starts, then send EHLO again.",
    ),
    "AUTH": (
        "AUTH mech ... (EHLO keyword, RFC 4954): the SASL mechanisms offered, e.g. PLAIN LOGIN.",
        "AUTH mech [initial-response] (command, RFC 4954 §4): authenticate; '334' challenges "
        "are answered with base64 lines, '*' cancels, '235' means success.",
    ),
    "CHUNKING": (
        "CHUNKING (EHLO keyword, RFC 3030): BDAT n [LAST] sends the message in chunks of "
        "exactly n octets, with no dot-stuffing and no final dot.",
    ),
    "BINARYMIME": (
        "BINARYMIME (EHLO keyword, RFC 3030): binary MIME bodies with MAIL FROM:<...> "
        "BODY=BINARYMIME; needs CHUNKING (BDAT), not DATA.",
    ),
    "DSN": (
        "DSN (EHLO keyword, RFC 3461): delivery status notifications: RET= and ENVID= on "
        "MAIL, NOTIFY= and ORCPT= on RCPT.",
    ),
    "ENHANCEDSTATUSCODES": (
        "ENHANCEDSTATUSCODES (EHLO keyword, RFC 2034): replies carry an RFC 3463 code "
        "class.subject.detail after the reply code, e.g. '550 5.1.1'.",
    ),
    "DELIVERBY": (
        "DELIVERBY [min] (EHLO keyword, RFC 2852): MAIL FROM:<...> BY=seconds;R|N asks for "
        "delivery within a time, else return (R) or notify (N).",
    ),
    "ETRN": (
        "ETRN (EHLO keyword and command, RFC 1985): 'ETRN domain' asks the server to start "
        "delivering mail queued for that domain.",
    ),
    "REQUIRETLS": (
        "REQUIRETLS (EHLO keyword, RFC 8689): MAIL FROM:<...> REQUIRETLS means the message "
        "may only travel over validated TLS, all the way.",
    ),
    "MT-PRIORITY": (
        "MT-PRIORITY [profile] (EHLO keyword, RFC 6710): MAIL FROM:<...> MT-PRIORITY=n "
        "(-9 to 9) sets the message transfer priority.",
    ),
    "LIMITS": (
        "LIMITS name=value ... (EHLO keyword, RFC 9422): the server's limits, e.g. "
        "RCPTMAX (recipients per transaction), MAILMAX (transactions per session).",
    ),
    "VRFY": (
        "VRFY string (command, RFC 5321 §4.1.1.6): ask whether a user or mailbox exists; "
        "often disabled (252) to stop address harvesting.",
    ),
    "EXPN": (
        "EXPN string (command, RFC 5321 §4.1.1.7): expand a mailing list into its members; "
        "usually disabled.",
    ),
    "HELP": (
        "HELP [string] (command, RFC 5321 §4.1.1.8): ask for help text (reply 214).",
    ),
    "BURL": (
        "BURL (EHLO keyword and command, RFC 4468): 'BURL imap-url [LAST]' has the "
        "submission server fetch message data from an IMAP URL.",
    ),
    "FUTURERELEASE": (
        "FUTURERELEASE max-interval max-datetime (EHLO keyword, RFC 4865): hold a message "
        "for later delivery with MAIL FROM:<...> HOLDFOR=seconds or HOLDUNTIL=date-time.",
    ),
    "XCLIENT": (
        "XCLIENT (Postfix extension, XCLIENT_README): an authorized client such as a proxy "
        "overrides the client name, address and HELO that the server sees.",
    ),
    "XFORWARD": (
        "XFORWARD (Postfix extension, XFORWARD_README): a trusted client passes the original "
        "client's name and address, for logging.",
    ),
    "EHLO": (
        "EHLO domain (command, RFC 5321 §4.1.1.1): extended hello; the 250 reply lists the "
        "server's extensions, one per line.",
    ),
    "HELO": (
        "HELO domain (command, RFC 5321 §4.1.1.1): the original hello, without extensions.",
    ),
    "LHLO": (
        "LHLO domain (command, RFC 2033 §4.1): LMTP's EHLO, for local delivery.",
    ),
    "MAIL": (
        "MAIL FROM:<reverse-path> [params] (command, RFC 5321 §4.1.1.2): start a "
        "transaction; <> is the null sender used for bounces.",
    ),
    "RCPT": (
        "RCPT TO:<forward-path> [params] (command, RFC 5321 §4.1.1.3): add one recipient; "
        "repeat for more.",
    ),
    "DATA": (
        "DATA (command, RFC 5321 §4.1.1.4): after '354', send the message lines and end with "
        "a line holding only '.'; lines starting with '.' get one more '.'.",
    ),
    "BDAT": (
        "BDAT n [LAST] (command, RFC 3030): send exactly n octets of message data; LAST "
        "ends the message.",
    ),
    "RSET": (
        "RSET (command, RFC 5321 §4.1.1.5): abort the current transaction, keep the connection.",
    ),
    "NOOP": (
        "NOOP (command, RFC 5321 §4.1.1.9): do nothing, the server replies 250.",
    ),
    "QUIT": (
        "QUIT (command, RFC 5321 §4.1.1.10): the server replies 221 and closes the connection.",
    ),
}  # fmt: skip

_DIRECTION = re.compile(r"^(?:~>|<~|->|<-|[<>]|[CS]:)\s+")
_REPLY_LINE = re.compile(r"^(\d{3})(?:[ -](.*))?$", re.DOTALL)
_ENHANCED = re.compile(r"^([245Xx])\.(\d{1,3})\.(\d{1,3})$")
_ENHANCED_PREFIX = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})(?:\s|$)")


def _explain_code(code: str) -> list[str] | None:
    """Lines for a three-digit reply code, or None when its class is not 2-5."""
    klass = _REPLY_CLASSES.get(code[0])
    category = _REPLY_CATEGORIES.get(code[1])
    if klass is None or category is None:
        return None
    known = REPLY_CODES.get(int(code))
    if known is None:
        first = f"{code}: not a standard reply code; {category} (RFC 5321 §4.2.1)"
    else:
        meaning, source = known
        first = f"{code}: {meaning} ({source})"
    return [first, f"{klass} (RFC 5321 §4.2.1)"]


def _explain_enhanced(code: str) -> list[str] | None:
    """One line for an RFC 3463 code ``class.subject.detail``, or None if the subject is unknown."""
    match = _ENHANCED.match(code)
    if match is None:
        return None
    klass, subject, detail = match[1].upper(), int(match[2]), int(match[3])
    if subject not in SUBJECTS:
        return None
    subject_name, section = SUBJECTS[subject]
    known = ENHANCED_DETAILS.get((subject, detail))
    if known is None:
        meaning, source = f"detail {detail} is not registered", f"RFC 3463 {section}"
    else:
        meaning, source = known[0], known[1] or f"RFC 3463 {section}"
    shown = f"{klass}.{subject}.{detail}"
    return [f"{shown}: {_CLASSES[klass]} · {subject_name} · {meaning} ({source})"]


def _explain_reply(code: str, rest: str) -> list[str] | None:
    lines = _explain_code(code)
    if lines is None:
        return None
    rest = rest.strip()
    enhanced = _ENHANCED_PREFIX.match(rest)
    if enhanced is not None:
        lines += _explain_enhanced(enhanced[1]) or []
        rest = rest[enhanced.end() :].strip()
    word = rest.split(" ", 1)[0].split("=", 1)[0].upper()
    if code == "250" and word in KEYWORDS:
        lines += KEYWORDS[word]
    if code == "334" and rest:
        decoded = _decode_base64(rest)
        if decoded is not None:
            lines.append(f"the challenge decodes to {decoded!r}")
    return lines


def _decode_base64(text: str) -> str | None:
    """``text`` decoded from base64 when that gives printable text (NULs allowed)."""
    try:
        decoded = base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded if decoded.replace("\0", "").isprintable() else None


def explain(query: str) -> list[str] | None:
    """Explain a reply code, enhanced status code, reply line, EHLO keyword or verb.

    Case-insensitive; a transcript direction marker (``<``, ``>``…) in front is
    ignored.  Returns the lines to show, or None when there is nothing to say.
    """
    text = _DIRECTION.sub("", query.strip()).strip()
    if not text:
        return None
    reply = _REPLY_LINE.match(text)
    if reply is not None:
        return _explain_reply(reply[1], reply[2] or "")
    word = re.split(r"[\s=:]", text, maxsplit=1)[0]
    if _ENHANCED.match(word):
        return _explain_enhanced(word)
    word = word.upper()
    lines = KEYWORDS.get(word)
    return list(lines) if lines is not None else None


def hint_for(code: int, enhanced: str | None, text: str = "") -> str | None:
    """One short practical hint for a common failure reply, or None."""
    low = text.lower()
    esc = (enhanced or "").strip()
    if code == 530:
        if "tls" in low:
            return "TLS required: send STARTTLS first, then EHLO again"
        return "authentication required: AUTH (after STARTTLS) first"
    if code == 538 or esc == "5.7.11":
        return "this AUTH mechanism needs an encrypted connection: use STARTTLS first"
    if code == 535 or esc == "5.7.8":
        return "authentication failed: wrong username or password (or mechanism)"
    if code == 534 or esc == "5.7.9":
        return "mechanism too weak for this server: try another AUTH mechanism, over TLS"
    if code == 454:
        if "tls" in low:
            return "TLS not available right now: try again later (don't send secrets in clear)"
        return "temporary authentication failure: try again later"
    if code >= 500 and "relay" in low:
        return (
            "relay denied: this server does not accept mail for that domain from you — "
            "authenticate or use the recipient's MX"
        )
    if esc == "5.7.0" and "auth" in low:
        return "authentication required: AUTH (after STARTTLS) first"
    if code == 503:
        return "bad sequence of commands: the usual order is EHLO, MAIL FROM, RCPT TO, DATA"
    if code == 552 and "recipient" in low:
        return "too many recipients: send the others in another transaction"
    if code == 552 or esc in ("5.3.4", "5.2.3", "4.3.4"):
        return "message too big: compare its size with the SIZE limit in the EHLO reply"
    if code == 421:
        return "the server is closing the connection: reconnect (later) to continue"
    if esc == "5.1.1" or (code == 550 and "user unknown" in low):
        return "no such user: check the recipient address"
    if code == 500 and "too long" in low:
        return "line too long: a command line may be at most 512 octets (RFC 5321 §4.5.3.1.4)"
    if code == 500:
        return "command not recognised: check the spelling, or see EHLO for what is supported"
    if code == 502:
        return "command not implemented by this server: see its EHLO reply for what it offers"
    if code == 555:
        return "MAIL/RCPT parameters not recognised: only use parameters the EHLO reply offers"
    if code == 501:
        return "syntax error in the arguments: e.g. MAIL FROM:<user@example.com>"
    if code == 451 and ("greylist" in low or "graylist" in low):
        return "greylisted: normal for a first contact, retry in a few minutes"
    if esc == "5.7.1" or (code in (550, 554) and "policy" in low):
        return "refused by policy: the server's rules reject this sender, recipient or message"
    return None
