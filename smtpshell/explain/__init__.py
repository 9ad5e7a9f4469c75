"""What SMTP replies, enhanced status codes and EHLO keywords mean, and hints.

``explain(query)`` answers a reply code (``550``), an enhanced status code
(``5.7.1``, ``X.7.1``), a whole reply line (``550 5.7.1 Relaying denied``), an EHLO
keyword or a command verb (``PIPELINING``, ``mail``), each with the RFC it comes
from.  ``hint_for(code, enhanced, text)`` gives one practical hint for common
failures; ``diagnose(verb, code, facts)`` the true reason for a refusal from the
connection's state.  Nothing here does I/O.

The knowledge is data: ``codes`` (reply codes, RFC 3463), ``keywords`` (EHLO
keywords and verbs); ``lookup`` answers queries; ``hints`` gives the hints;
``diagnose`` reads the state.
"""

from __future__ import annotations

from .codes import ENHANCED_DETAILS, REPLY_CODES
from .diagnose import Facts, diagnose, mechanism_problem
from .hints import hint_for
from .keywords import KEYWORDS

__all__ = ["ENHANCED_DETAILS", "KEYWORDS", "REPLY_CODES", "Facts", "diagnose", "explain",
           "hint_for", "mechanism_problem"]


def __getattr__(name: str) -> object:
    """``explain`` (``lookup``, with the mail-security topics) loads when first asked
    for: the shell's start-up needs hints and diagnoses only."""
    if name == "explain":
        from .lookup import explain

        return explain
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
