"""Reply codes (RFC 5321 §4.2) and enhanced status codes (RFC 3463), kept as data."""

from __future__ import annotations

from typing import Final

__all__ = ["ENHANCED_CLASSES", "ENHANCED_DETAILS", "REPLY_CATEGORIES", "REPLY_CLASSES",
           "REPLY_CODES", "SUBJECTS"]

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

REPLY_CLASSES: Final = {
    "2": "2yz positive completion: the command was accepted",
    "3": "3yz positive intermediate: send the rest (message data, AUTH response)",
    "4": "4yz transient negative completion: temporary, the same command may work later",
    "5": "5yz permanent negative completion: don't repeat the same command unchanged",
}
REPLY_CATEGORIES: Final = {
    "0": "x0z syntax",
    "1": "x1z information",
    "2": "x2z connections",
    "3": "x3z unspecified",
    "4": "x4z unspecified",
    "5": "x5z mail system",
}

ENHANCED_CLASSES: Final = {
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
