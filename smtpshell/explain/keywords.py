"""EHLO keywords and command verbs: what each means and the RFC it comes from, as data."""

from __future__ import annotations

from typing import Final

__all__ = ["KEYWORDS"]

#: EHLO keywords and command verbs: upper-case word -> lines.
KEYWORDS: Final[dict[str, tuple[str, ...]]] = {
    "PIPELINING": (
        "PIPELINING (EHLO keyword, RFC 2920): the client may send several commands "
        "before reading their replies.",
        "RFC 2920 §3.1: RSET, MAIL FROM and RCPT TO may stand anywhere in a group; EHLO, "
        "DATA, VRFY, EXPN, TURN, QUIT and NOOP may only end one (their outcome changes what "
        "comes next); STARTTLS (RFC 3207) and AUTH (RFC 4954) end one too.",
    ),
    "PIPECONNECT": (
        "PIPECONNECT (EHLO keyword, Exim; draft-harris-early-pipe): on a later connection "
        "the client may send EHLO and the next commands before the greeting arrives, "
        "trusting what this server advertised last time.",
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
    "AUTH=": (
        "AUTH=mech ... (EHLO keyword, no RFC): the SASL mechanisms in a pre-standard form "
        "that some old clients need; servers often send it beside the standard 'AUTH mech' "
        "line.",
        "AUTH=<mailbox> (MAIL FROM parameter, RFC 4954 §5): who submitted the message, "
        "between trusted servers; <> means unknown.",
    ),
    "PRDR": (
        "PRDR (EHLO keyword, Exim; draft-hall-prdr): MAIL FROM:<...> PRDR asks for one "
        "reply per recipient after the message data, so each recipient can refuse it.",
    ),
    "ATRN": (
        "ATRN domain (EHLO keyword and command, RFC 2645): on-demand mail relay; an "
        "authenticated client asks to receive the mail queued for it on this connection.",
    ),
    "TURN": (
        "TURN (command, RFC 821): swap the client and server roles; unsafe without "
        "authentication and not part of RFC 5321. Ends a pipelined group (RFC 2920 §3.1).",
    ),
    "UTF8SMTP": (
        "UTF8SMTP (EHLO keyword, RFC 5336, experimental): the forerunner of SMTPUTF8 "
        "(RFC 6531), which replaced it.",
    ),
    "RRVS": (
        "RRVS (EHLO keyword, RFC 7293): RCPT TO:<...> RRVS=date-time refuses delivery if "
        "the mailbox changed owner since then.",
    ),
    "NO-SOLICITING": (
        "NO-SOLICITING [keywords] (EHLO keyword, RFC 3865): the server states which "
        "solicitation classes it refuses.",
    ),
    "SUBMITTER": (
        "SUBMITTER (EHLO keyword, RFC 4405): MAIL FROM:<...> SUBMITTER=address names the "
        "responsible submitter (Sender ID).",
    ),
    "CHECKPOINT": (
        "CHECKPOINT (EHLO keyword, RFC 1845): a message sent again after a broken "
        "connection resumes where it stopped (MAIL FROM:<...> TRANSID=id).",
    ),
    "VERB": (
        "VERB (EHLO keyword and command, Sendmail): verbose mode; the server reports each "
        "delivery step to the client.",
    ),
    "ONEX": (
        "ONEX (EHLO keyword and command, Sendmail): only one transaction on this connection.",
    ),
    "XVERP": (
        "XVERP (EHLO keyword, Postfix VERP_README): MAIL FROM:<...> XVERP asks for a "
        "variable envelope return path per recipient, to tell bounces apart.",
    ),
    "X-EXPS": (
        "X-EXPS mech ... (EHLO keyword, Microsoft Exchange): Exchange Server "
        "authentication (e.g. GSSAPI NTLM) between Exchange servers, not for users.",
    ),
    "XEXCH50": (
        "XEXCH50 (EHLO keyword, Microsoft Exchange): passes Exchange's own message "
        "properties between Exchange servers (legacy).",
    ),
    "X-ANONYMOUSTLS": (
        "X-ANONYMOUSTLS (EHLO keyword, Microsoft Exchange): TLS between Exchange servers "
        "of one organization without certificate names.",
    ),
    "X-LINK2STATE": (
        "X-LINK2STATE (EHLO keyword, Microsoft Exchange 2000/2003): exchanges routing "
        "link-state information between Exchange servers.",
    ),
    "XSHADOW": (
        "XSHADOW (EHLO keyword, Microsoft Exchange): shadow redundancy; a server keeps a "
        "copy of a message until the next hop confirms delivery.",
    ),
    "XSHADOWREQUEST": (
        "XSHADOWREQUEST (EHLO keyword, Microsoft Exchange): asks the peer to keep a shadow "
        "copy of the message (shadow redundancy).",
    ),
    "XOORG": (
        "XOORG (EHLO keyword, Microsoft Exchange): MAIL FROM:<...> XOORG=domain names the "
        "organization the message comes from.",
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
