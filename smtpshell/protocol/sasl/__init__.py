"""SASL for SMTP AUTH (RFC 4954), pure and sans-IO.

* ``b64``: strict base64 with reasons in words;
* ``mechanisms``: PLAIN, LOGIN, CRAM-MD5, XOAUTH2 as step machines, and ``response()``;
* ``redact``: the one redaction point, ``Outgoing`` (each line sent, classified once).

The teaching views of AUTH replies live in ``smtpshell.explain.auth``.
"""

from __future__ import annotations

from .b64 import B64Result, b64, decode_b64
from .mechanisms import (
    MAX_RESPONSE_LINE,
    MECHANISMS,
    ClientStep,
    CramMd5,
    Credential,
    Login,
    Mechanism,
    Plain,
    XOAuth2,
    choose_mechanism,
    credential_problem,
    response,
)
from .redact import (
    DEFAULT_PASSWORD_ENV,
    DEFAULT_TOKEN_ENV,
    MASK,
    REDACTED,
    Classifier,
    Outgoing,
    Redaction,
    Redactor,
    placeholder,
)

__all__ = [
    "DEFAULT_PASSWORD_ENV",
    "DEFAULT_TOKEN_ENV",
    "MASK",
    "MAX_RESPONSE_LINE",
    "MECHANISMS",
    "REDACTED",
    "B64Result",
    "Classifier",
    "ClientStep",
    "CramMd5",
    "Credential",
    "Login",
    "Mechanism",
    "Outgoing",
    "Plain",
    "Redaction",
    "Redactor",
    "XOAuth2",
    "b64",
    "choose_mechanism",
    "credential_problem",
    "decode_b64",
    "placeholder",
    "response",
]
