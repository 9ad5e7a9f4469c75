"""What the user asked of TLS, checked, and the client ``SSLContext`` made from it.

Two kinds of bad option, two exceptions:

* :class:`TlsOptionError` (a :class:`TlsConfigError`): a value that can never work, found
  without touching a file or the network (a malformed pin or SNI name, an unknown
  version, min above max, ``--ciphersuites``).  :func:`check_options` raises it; the
  command line calls it before connecting and exits with the usage status.
* :class:`TlsConfigError`: an option that cannot be used here (a missing CA file, a key
  that does not belong to its certificate...); raised by :func:`make_client_context`.

Verification modes, decided by :class:`TlsOptions`:

* default: OpenSSL verifies the chain against the system CAs (or ``cafile``/``capath``
  alone when given) and checks the host name; a failure aborts the handshake.
* ``insecure``: no check during the handshake; the report still says in words why the
  certificate would not verify (checked with ``cryptography``, in :mod:`.verify`).
* ``pins``: no CA check during the handshake; the caller must call ``check_pins`` on
  the peer certificate right after the handshake and abort on a mismatch.

``no_sni`` needs ``insecure`` or ``pins``: Python's ``ssl`` checks the host name only
through ``server_hostname``, which is also what sends SNI, so a verified connection
without SNI cannot be made.
"""

from __future__ import annotations

import os
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from ..escapes import for_terminal
from .certinfo import CapturingSSLObject, is_ip
from .verify import diagnose_cert_key, parse_pin

__all__ = [
    "TlsConfigError",
    "TlsOptionError",
    "TlsOptions",
    "check_options",
    "make_client_context",
    "server_hostname",
]

_VERSIONS: dict[str, ssl.TLSVersion] = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


class TlsConfigError(Exception):
    """A TLS option the user gave cannot be used; ``str(exc)`` is a one-line reason."""


class TlsOptionError(TlsConfigError):
    """A TLS option value that can never work (a usage error); ``str(exc)`` is one line."""


@dataclass(frozen=True)
class TlsOptions:
    """What the user asked for; every field maps to one command-line option."""

    cafile: str | None = None
    capath: str | None = None
    insecure: bool = False
    server_name: str | None = None  # name for SNI and the host-name check, instead of host
    no_sni: bool = False
    min_version: str | None = None  # "1.0" .. "1.3"
    max_version: str | None = None
    ciphers: str | None = None  # OpenSSL cipher string, TLS <= 1.2
    ciphersuites: str | None = None  # TLS 1.3 suites: not settable with Python's ssl
    certfile: str | None = None
    keyfile: str | None = None
    key_password: str | None = None
    pins: tuple[str, ...] = ()  # SHA-256 fingerprints of the server certificate
    dane: bool = False
    """DANE decides (validated, usable TLSA records, ``--dane``): no PKIX check during the
    handshake; the caller checks the chain against the TLSA records right after it and
    aborts on a failure (RFC 7672 §3.1)."""


# --- checks that need no file and no network --------------------------------------------------


def check_options(opts: TlsOptions) -> None:
    """Raise :class:`TlsOptionError` for the first value that can never work."""
    if opts.ciphersuites is not None:
        raise TlsOptionError(
            "--ciphersuites: Python's ssl module cannot choose TLS 1.3 cipher suites;"
            " use --max-version 1.2 with --ciphers instead"
        )
    for pin in opts.pins:
        if parse_pin(pin) is None:
            raise TlsOptionError(
                f"--pin '{for_terminal(pin)}' is not a SHA-256 fingerprint (64 hex digits,"
                " colons allowed: the SHA-256 line of the TLS report)"
            )
    if opts.no_sni and not opts.insecure and not opts.pins:
        raise TlsOptionError(
            "--no-sni: Python checks the host name only through SNI;"
            " add --insecure (or a pin) to connect without SNI"
        )
    if opts.server_name is not None:
        problem = sni_problem(opts.server_name)
        if problem is not None:
            raise TlsOptionError(f"--sni '{for_terminal(opts.server_name)}': {problem}")
    minimum = _version(opts.min_version, "--min-version")
    maximum = _version(opts.max_version, "--max-version")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise TlsOptionError(
            f"--min-version {opts.min_version} is above --max-version {opts.max_version}"
        )
    if opts.ciphers is not None:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).set_ciphers(_cipher_string(opts) or "")
        except ssl.SSLError as exc:
            raise TlsOptionError(
                f"--ciphers '{for_terminal(opts.ciphers)}': no cipher matches"
            ) from exc


def sni_problem(name: str) -> str | None:
    """Why ``name`` cannot be sent as SNI (and checked as the host name), or None.

    IP addresses are fine (Python sends no SNI for them but checks them); other names must
    be host names whose labels are 1 to 63 characters (``ssl`` encodes them with IDNA and
    raises on anything else, which used to surface as a traceback or a hang).
    """
    if not name:
        return "empty"
    if is_ip(name):
        return None
    if any(ch.isspace() or not ch.isprintable() for ch in name):
        return "not a host name (blank or control character)"
    if name.startswith("."):
        return "not a host name (starts with a dot)"
    labels = name.removesuffix(".").split(".")
    if any(not label for label in labels):
        return "not a host name (empty label: two dots in a row)"
    long = next((label for label in labels if len(label) > 63), None)
    if long is not None:
        return f"not a host name (a label of {len(long)} characters; at most 63)"
    try:
        encoded = name.encode("idna")
    except UnicodeError:
        return "not a host name (IDNA cannot encode it)"
    if len(encoded) > 253:
        return f"not a host name ({len(encoded)} characters; at most 253)"
    return None


def _version(text: str | None, option: str) -> ssl.TLSVersion | None:
    if text is None:
        return None
    key = text.strip().lower().removeprefix("tls").removeprefix("v")
    if key == "1":
        key = "1.0"
    if key not in _VERSIONS:
        raise TlsOptionError(
            f"{option} '{for_terminal(text)}': unknown TLS version, use 1.0, 1.1, 1.2 or 1.3"
        )
    return _VERSIONS[key]


def _cipher_string(opts: TlsOptions) -> str | None:
    """The cipher string to set: ``ciphers``, with security level 0 below TLS 1.2 (without
    it OpenSSL 3 will not negotiate TLS 1.0 or 1.1)."""
    ciphers = opts.ciphers
    old = [
        v
        for v in (_version(opts.min_version, "--min-version"),
                  _version(opts.max_version, "--max-version"))
        if v is not None and v < ssl.TLSVersion.TLSv1_2
    ]
    if old and "@SECLEVEL" not in (ciphers or ""):
        ciphers = (ciphers or "DEFAULT") + ":@SECLEVEL=0"
    return ciphers


# --- the context --------------------------------------------------------------------------------


def make_client_context(opts: TlsOptions) -> ssl.SSLContext:
    """Build the client context for ``opts``; raise :class:`TlsConfigError` on a bad option
    (:class:`TlsOptionError` for a value :func:`check_options` refuses)."""
    check_options(opts)
    ctx = _base_context(opts)
    ctx.sslobject_class = CapturingSSLObject  # names the certificate of a failed handshake
    with warnings.catch_warnings():
        # The user asked for an old version on purpose; ssl warns that TLS 1.0/1.1 are old.
        warnings.simplefilter("ignore", DeprecationWarning)
        minimum = _version(opts.min_version, "--min-version")
        maximum = _version(opts.max_version, "--max-version")
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
    ciphers = _cipher_string(opts)
    if ciphers is not None:
        try:
            ctx.set_ciphers(ciphers)
        except ssl.SSLError as exc:
            raise TlsOptionError(
                f"--ciphers '{for_terminal(opts.ciphers or '')}': no cipher matches"
            ) from exc
    if opts.insecure or opts.pins or opts.dane:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    _load_client_cert(ctx, opts)
    return ctx


def server_hostname(opts: TlsOptions, host: str) -> str | None:
    """The ``server_hostname`` to pass to wrap/start_tls: None with ``no_sni``.

    Python sends no SNI for an IP address but still checks it against the certificate.
    """
    if opts.no_sni:
        return None
    return opts.server_name or host


def _base_context(opts: TlsOptions) -> ssl.SSLContext:
    if opts.cafile is not None and not os.path.isfile(opts.cafile):
        raise TlsConfigError(f"--cafile {opts.cafile}: no such file")
    if opts.capath is not None and not os.path.isdir(opts.capath):
        raise TlsConfigError(f"--capath {opts.capath}: not a directory")
    try:
        return ssl.create_default_context(cafile=opts.cafile, capath=opts.capath)
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise TlsConfigError(f"--cafile {opts.cafile}: no PEM certificate in it") from exc
        raise TlsConfigError(f"--cafile {opts.cafile}: {exc.strerror or exc}") from exc


def _load_client_cert(ctx: ssl.SSLContext, opts: TlsOptions) -> None:
    if opts.certfile is None:
        if opts.keyfile is not None:
            raise TlsConfigError("--key needs --cert (the client certificate)")
        return
    for option, path in (("--cert", opts.certfile), ("--key", opts.keyfile)):
        if path is not None and not os.path.isfile(path):
            raise TlsConfigError(f"{option} {path}: no such file")
    keyfile = opts.keyfile or opts.certfile

    def no_password() -> str:
        # Without a callback OpenSSL would prompt on the terminal for the pass phrase.
        raise TlsConfigError(
            f"key {keyfile} is encrypted: give its passphrase (--key-password-env VAR)"
        )

    password: str | Callable[[], str] = no_password
    if opts.key_password is not None:
        password = opts.key_password
    try:
        ctx.load_cert_chain(opts.certfile, opts.keyfile, password=password)
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise TlsConfigError(
                diagnose_cert_key(opts.certfile, keyfile, opts.key_password)
            ) from exc
        raise TlsConfigError(
            f"cannot read the client certificate or key: {exc.strerror or exc}"
        ) from exc
