"""One short practical hint for a common failure reply."""

from __future__ import annotations

__all__ = ["hint_for"]


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
        if "command" in low:
            return ("line too long: a command line may be at most 512 octets, CRLF included "
                    "(RFC 5321 §4.5.3.1.4)")
        if "4.5.3.1.6" in low or "text" in low or "data" in low or "message" in low:
            return ("line too long: a line of the message (a text line) may be at most 1000 "
                    "octets, CRLF included (RFC 5321 §4.5.3.1.6); wrap it, or send the "
                    "part base64 or quoted-printable encoded")
        return ("line too long: a command line may be at most 512 octets (RFC 5321 "
                "§4.5.3.1.4), a line of a message 1000 (§4.5.3.1.6), CRLF included")
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
