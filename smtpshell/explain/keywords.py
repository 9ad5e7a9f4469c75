"""EHLO keywords and command verbs: what each means and the RFC it comes from, as data."""

from __future__ import annotations

from typing import Final

__all__ = ["KEYWORDS"]

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
