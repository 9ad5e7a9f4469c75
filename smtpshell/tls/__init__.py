"""TLS for smtpshell: options and the client context, certificate summaries, verification,
the report in words, failures in words.

Imports run one way, with no cycle::

    certinfo  (ssl only: summaries from what ssl decoded, the chains, fingerprints)
       ^
    verify    (pins; cryptography, imported inside the functions that need it)
       ^
    options   (TlsOptions, check_options, make_client_context)
       ^
    report, errors

No asyncio and no printing here; the only I/O is reading the files the options name.
The names callers use are re-exported below.
"""

from __future__ import annotations

from .certinfo import (
    CertInfo,
    PeerChains,
    capture_handshakes,
    fingerprint,
    format_date,
    format_name,
    is_ip,
    peer_chains,
)
from .errors import TlsFailure, describe_failure, explain_tls_error
from .options import (
    TlsConfigError,
    TlsOptionError,
    TlsOptions,
    check_options,
    make_client_context,
    server_hostname,
    sni_problem,
)
from .report import TlsReport, build_report, render_report
from .verify import check_pins, parse_pin, store_words

__all__ = [
    "CertInfo",
    "PeerChains",
    "TlsConfigError",
    "TlsFailure",
    "TlsOptionError",
    "TlsOptions",
    "TlsReport",
    "build_report",
    "capture_handshakes",
    "check_options",
    "check_pins",
    "describe_failure",
    "explain_tls_error",
    "fingerprint",
    "format_date",
    "format_name",
    "is_ip",
    "make_client_context",
    "parse_pin",
    "peer_chains",
    "render_report",
    "server_hostname",
    "sni_problem",
    "store_words",
]
