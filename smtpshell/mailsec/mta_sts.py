"""MTA-STS (RFC 8461): the TXT record, the policy fetched over HTTPS, and whether a
connection to an MX host satisfies it.

``lookup(domain, resolver)`` does discovery and fetching and never raises for a network
problem: what went wrong is ``StsLookup.problem``, one line.  ``check(lookup, mx_host, …)``
applies the policy to one connection and says why in words (``StsVerdict``).  Nothing here
caches a policy (§5.1's cache is for MTAs that deliver again and again; a test tool looks
afresh each time).

MTA-STS rules we apply:

* §3.1 TXT ``_mta-sts.DOMAIN``: records not beginning with ``v=STSv1`` are discarded; of
  the rest there must be exactly one (none: no policy; several: no policy), its strings
  are concatenated, and it must be ``v=STSv1; id=ID`` with ``ID`` 1-32 letters and digits
  (other ``name=value`` fields are ignored).  Without a usable TXT record the policy is
  not fetched.
* §3.3 the policy comes from ``https://mta-sts.DOMAIN/.well-known/mta-sts.txt``: the
  certificate must chain to a trusted CA (the system's, or ``cafile``/``capath``), be
  unexpired and valid for ``mta-sts.DOMAIN``; only status 200 is a policy; redirects (3xx)
  are not followed; the media type must be ``text/plain`` (parameters such as charset are
  allowed); a body over 64 KiB is refused (we read at most 64 KiB + 1 byte); the whole fetch
  has one time limit (a server that trickles its answer is cut off when it is up).  The
  address of ``mta-sts.DOMAIN`` is asked of the same resolver as the TXT record (so
  ``--resolver`` governs every lookup and the system's resolver is never used behind its
  back).
* §3.2 the policy is ``key: value`` lines ending in LF or CRLF: ``version: STSv1``,
  ``mode: enforce|testing|none``, ``max_age`` (1-10 digits, at most 31557600), and ``mx``
  patterns (a domain, or ``*.`` and a domain), at least one unless the mode is ``none``.
  Keys and the values of ``version`` and ``mode`` are case-sensitive.  Unknown keys are
  ignored (and named); a key other than ``mx`` given twice keeps its first value.  An
  error names its line.  One leniency: blank lines are skipped.
* §4.1 an MX host matches a pattern when the names are equal (case-insensitively, a final
  dot ignored), or the pattern is ``*.REST`` and the host is one label more than ``REST``:
  ``*.example.net`` matches ``mx.example.net``, not ``a.b.example.net`` nor ``example.net``.
* §4.2 the MX must offer STARTTLS and present a certificate that chains to a trusted CA
  and is valid for the MX host name.
* §5 ``enforce``: a host that fails §4.1 or §4.2 must not be used; ``testing``: the
  failure is reported and delivery goes on; ``none`` (or no policy at all): nothing is
  required.

With ``url`` given (``--mta-sts-url``) the policy is fetched from that address instead,
but the TLS connection still asks for ``mta-sts.DOMAIN`` (SNI and ``Host:``) and the
certificate must be valid for ``mta-sts.DOMAIN``: the check stays the one RFC 8461 asks for,
only the place differs (a test server on 127.0.0.1, a proxy).

Text that came from outside (TXT records, HTTP headers, policy lines, host names, the
caller's certificate error) is escaped with ``escapes.for_terminal`` where it is put into a
problem or a reason, so ``lines()`` is safe to print as it is.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..escapes import for_terminal

if TYPE_CHECKING:
    from .dnsclient import Resolver

__all__ = [
    "MAX_AGE_LIMIT",
    "POLICY_SIZE_LIMIT",
    "StsError",
    "StsLookup",
    "StsPolicy",
    "StsVerdict",
    "check",
    "lookup",
    "parse_policy",
    "parse_txt",
    "policy_url",
]

POLICY_SIZE_LIMIT = 64 * 1024
"""RFC 8461 §3.3: a policy body larger than 64 KiB is refused."""
MAX_AGE_LIMIT = 31557600
"""RFC 8461 §3.2: ``max_age`` is at most 31557600 seconds (about a year)."""
MODES = ("enforce", "testing", "none")


class StsError(Exception):
    """A TXT record or policy that cannot be used; ``str()`` is one line, already escaped."""


def _q(text: str) -> str:
    """Outside text quoted for a message: escaped for the terminal, in single quotes."""
    return f"'{for_terminal(text)}'"


# ---- the policy (§3.2) and MX matching (§4.1) ----------------------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class StsPolicy:
    """A parsed policy (RFC 8461 §3.2)."""

    version: str
    mode: str  # "enforce" | "testing" | "none"
    mx: tuple[str, ...]  # patterns as written, "*.example.net" allowed (§4.1)
    max_age: int
    ignored: tuple[str, ...] = ()  # unknown keys, escaped, in the order met

    def matching_pattern(self, host: str) -> str | None:
        """The first ``mx`` pattern that ``host`` matches (RFC 8461 §4.1), or None."""
        name = host.lower()
        if name.endswith("."):
            name = name[:-1]
        if not name:
            return None
        for pattern in self.mx:
            p = pattern.lower()
            if p.startswith("*."):
                rest = p[2:]
                first, dot, tail = name.partition(".")
                if dot and first and tail == rest:
                    return pattern
            elif p == name:
                return pattern
        return None

    def matches(self, host: str) -> bool:
        return self.matching_pattern(host) is not None

    def describe(self) -> str:
        parts = [f"version {self.version}", f"mode {self.mode}",
                 f"max_age {self.max_age} s ({_duration(self.max_age)})"]
        parts.append("mx " + ", ".join(self.mx) if self.mx else "no mx patterns")
        return "; ".join(parts)


def _duration(seconds: int) -> str:
    if seconds >= 86400:
        days, rest = divmod(seconds, 86400)
        if rest:
            return f"{seconds / 86400:.1f} days"
        return f"{days} day" if days == 1 else f"{days} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds} s"


def parse_policy(text: str) -> StsPolicy:
    """The policy in ``text`` (RFC 8461 §3.2), or StsError naming the line at fault."""
    first: dict[str, tuple[int, str]] = {}
    mx: list[str] = []
    ignored: list[str] = []
    near_miss: dict[str, int] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final line's own LF
    for number, raw in enumerate(lines, start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip(" \t"):
            continue
        where = f"line {number}"
        key, colon, rest = line.partition(":")
        if not colon:
            raise StsError(f"{where}: {_q(line)} is not 'key: value' (RFC 8461 §3.2)")
        if not _KEY.fullmatch(key):
            raise StsError(f"{where}: {_q(key)} is not a key (letters, digits, '_', '-', "
                           f"'.'; no spaces before the colon; RFC 8461 §3.2)")
        value = rest.lstrip(" \t").rstrip(" \t")
        bad = _VALUE_BAD.search(value)
        if bad:
            raise StsError(f"{where}: control character in the value of {key} "
                           f"({_q(value)}; RFC 8461 §3.2)")
        if not value:
            raise StsError(f"{where}: {key} has no value (RFC 8461 §3.2)")
        if key == "mx":
            name = value[2:] if value.startswith("*.") else value
            if name.endswith(".") and _DOMAIN.fullmatch(name[:-1]):
                raise StsError(f"{where}: mx {_q(value)} ends with a dot, which the policy "
                               "syntax does not allow (RFC 8461 §3.2)")
            if not _DOMAIN.fullmatch(name):
                raise StsError(f"{where}: mx {_q(value)} is neither a host name nor '*.' and "
                               "a domain (a wildcard is only the whole leftmost label; "
                               "RFC 8461 §3.2, §4.1)")
            mx.append(value)
        elif key in ("version", "mode", "max_age"):
            first.setdefault(key, (number, value))  # a repeated key keeps its first value
        else:
            if key.lower() in ("version", "mode", "max_age", "mx"):
                near_miss.setdefault(key.lower(), number)
            shown = for_terminal(key)
            if shown not in ignored:
                ignored.append(shown)

    def need(key: str) -> tuple[int, str]:
        if key in first:
            return first[key]
        hint = ""
        if key in near_miss:
            hint = f"; line {near_miss[key]} has it in other letters, and keys are case-sensitive"
        raise StsError(f"no '{key}:' line{hint} (RFC 8461 §3.2)")

    n, version = need("version")
    if version != "STSv1":
        raise StsError(f"line {n}: version {_q(version)} is not STSv1 (RFC 8461 §3.2)")
    n, mode = need("mode")
    if mode not in MODES:
        raise StsError(f"line {n}: mode {_q(mode)} is not enforce, testing or none "
                       "(case-sensitive; RFC 8461 §3.2)")
    n, age = need("max_age")
    if not (age.isascii() and age.isdigit()) or len(age) > 10:
        raise StsError(f"line {n}: max_age {_q(age)} is not a number of seconds (at most "
                       "10 digits; RFC 8461 §3.2)")
    if int(age) > MAX_AGE_LIMIT:
        raise StsError(f"line {n}: max_age {age} is over the limit of {MAX_AGE_LIMIT} "
                       "seconds (RFC 8461 §3.2)")
    if not mx and mode != "none":
        hint = f"; line {near_miss['mx']} has it in other letters" if "mx" in near_miss else ""
        raise StsError(f"no 'mx:' line, and mode {mode} needs at least one{hint} "
                       "(RFC 8461 §3.2)")
    return StsPolicy(version, mode, tuple(mx), int(age), tuple(ignored))


# ---- the TXT record (§3.1) -----------------------------------------------------------------

_TXT_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_TXT_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_TXT_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")


def parse_txt(record: str) -> str:
    """The ``id`` of one ``v=STSv1; id=…`` record (RFC 8461 §3.1), or StsError."""
    if not record.startswith("v=STSv1"):
        raise StsError(f"TXT {_q(record)} does not begin with v=STSv1 (RFC 8461 §3.1)")
    rest = record[len("v=STSv1"):]
    if rest.strip(" \t") and not rest.lstrip(" \t").startswith(";"):
        raise StsError(f"TXT {_q(record)}: 'v=STSv1' must be followed by ';' (RFC 8461 §3.1)")
    txt_id: str | None = None
    for field in rest.split(";")[1:]:
        field = field.strip(" \t")
        if not field:
            continue  # the optional final ';', or ';;'
        name, eq, value = field.partition("=")
        if name == "id":
            if not _TXT_ID.fullmatch(value):
                raise StsError(f"TXT {_q(record)}: id {_q(value)} is not 1-32 letters and "
                               "digits (RFC 8461 §3.1)")
            if txt_id is None:
                txt_id = value
        elif not (eq and _TXT_EXT_NAME.fullmatch(name) and _TXT_EXT_VALUE.fullmatch(value)):
            raise StsError(f"TXT {_q(record)}: {_q(field)} is not a name=value field "
                           "(RFC 8461 §3.1)")
    if txt_id is None:
        raise StsError(f"TXT {_q(record)} has no id=… field (RFC 8461 §3.1)")
    return txt_id


# ---- the lookup -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StsLookup:
    """What discovery (§3.1) and fetching (§3.3) found for ``domain``."""

    domain: str
    txt_id: str | None  # from "v=STSv1; id=…" at _mta-sts.DOMAIN (§3.1)
    url: str  # where the policy was (or would have been) fetched from
    policy: StsPolicy | None
    problem: str | None  # one line, escaped: why there is no usable policy
    txt: str | None = None  # the TXT record used, escaped
    tls_name: str = ""  # the name the policy server's certificate was checked against

    def lines(self) -> list[str]:
        """The lookup in words, with the RFC 8461 section of each rule."""
        domain = for_terminal(self.domain)
        out = [f"MTA-STS for {domain} (RFC 8461)"]
        if self.txt is not None:
            said = f" — policy id {self.txt_id}" if self.txt_id else ""
            out.append(f"  TXT _mta-sts.{domain}: {self.txt}{said} (§3.1)")
        if self.policy is not None:
            name = for_terminal(self.tls_name or f"mta-sts.{self.domain}")
            out.append(f"  policy fetched from {for_terminal(self.url)}: certificate valid "
                       f"for {name}, status 200, text/plain (§3.3)")
            out.append(f"  policy: {self.policy.describe()} (§3.2)")
            if self.policy.ignored:
                out.append("  unknown keys ignored: " + ", ".join(self.policy.ignored)
                           + " (§3.2)")
            out.append("  " + _MODE_WORDS[self.policy.mode])
        else:
            out.append(f"  no usable policy: {self.problem or 'unknown reason'}")
            out.append("  without a policy nothing is required: STARTTLS stays "
                       "opportunistic (§5)")
        return out


_MODE_WORDS = {
    "enforce": "mode enforce: an MX host must match an mx pattern and offer STARTTLS with a "
               "certificate valid for its name, or it is not used (§4.1, §4.2, §5)",
    "testing": "mode testing: failures are reported, mail is delivered anyway (§5)",
    "none": "mode none: the domain has withdrawn its policy; nothing is required (§5)",
}


def policy_url(domain: str) -> str:
    """Where RFC 8461 §3.3 says the policy of ``domain`` is."""
    return f"https://mta-sts.{domain.rstrip('.')}/.well-known/mta-sts.txt"


def lookup(
    domain: str,
    resolver: Resolver,
    *,
    url: str | None = None,
    cafile: str | None = None,
    capath: str | None = None,
    timeout: float = 10.0,
) -> StsLookup:
    """Discover and fetch the MTA-STS policy of ``domain``.

    The TXT record and the address of the policy host are asked of ``resolver``.  With
    ``url`` the policy is fetched from there, but the certificate must still be valid for
    ``mta-sts.DOMAIN`` (that name is sent as SNI and ``Host:``).  Never raises for DNS,
    network, TLS or HTTP problems: they are the result's ``problem``.
    """
    domain = domain.rstrip(".")
    tls_name = f"mta-sts.{domain}"
    where = url if url is not None else policy_url(domain)

    def fail(problem: str, **found: Any) -> StsLookup:
        return StsLookup(domain, found.get("txt_id"), where, None, problem,
                         txt=found.get("txt"), tls_name=tls_name)

    # §3.1: the TXT record
    from .dnsclient import DnsError

    txt_name = f"_mta-sts.{domain}."
    try:
        answer = resolver.query(txt_name, "TXT")
    except (DnsError, ValueError) as exc:
        return fail(f"TXT lookup of _mta-sts.{for_terminal(domain)} failed: "
                    f"{for_terminal(str(exc))}")
    texts = [b"".join(r.strings).decode("utf-8", errors="surrogateescape")
             for r in answer.records]
    sts = [t for t in texts if t.startswith("v=STSv1")]
    others = len(texts) - len(sts)
    if not sts:
        why = "the name does not exist" if answer.nxdomain else (
            f"{others} other TXT record{'s' if others != 1 else ''}, none v=STSv1"
            if others else "no TXT record")
        return fail(f"no MTA-STS TXT record at _mta-sts.{for_terminal(domain)} ({why}): "
                    "the domain publishes no policy (RFC 8461 §3.1)")
    if len(sts) > 1:
        shown = " and ".join(_q(t) for t in sts[:3]) + (" …" if len(sts) > 3 else "")
        return fail(f"{len(sts)} v=STSv1 TXT records at _mta-sts.{for_terminal(domain)} "
                    f"({shown}): exactly one is allowed, so there is no policy "
                    "(RFC 8461 §3.1)")
    record = sts[0]
    txt = for_terminal(record)
    try:
        txt_id = parse_txt(record)
    except StsError as exc:
        return fail(str(exc), txt=txt)

    # §3.3: the policy over HTTPS
    try:
        body = _fetch(where, tls_name, resolver, cafile=cafile, capath=capath,
                      timeout=timeout)
    except StsError as exc:
        return fail(str(exc), txt=txt, txt_id=txt_id)
    try:
        policy = parse_policy(body.decode("utf-8", errors="surrogateescape"))
    except StsError as exc:
        return fail(f"policy from {for_terminal(where)}: {exc}", txt=txt, txt_id=txt_id)
    return StsLookup(domain, txt_id, where, policy, None, txt=txt, tls_name=tls_name)


def _fetch(url: str, tls_name: str, resolver: Resolver, *, cafile: str | None,
           capath: str | None, timeout: float) -> bytes:
    """The body at ``url`` per RFC 8461 §3.3; StsError (one escaped line) for anything else."""
    shown_url = for_terminal(url)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or 443
    except ValueError as exc:
        raise StsError(f"not a usable URL: {shown_url} ({for_terminal(str(exc))})") from None
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise StsError(f"not an https:// URL: {shown_url} (the policy is fetched over "
                       "HTTPS only, RFC 8461 §3.3)")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        context = ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        what = f"--cafile {cafile}" if cafile else f"--capath {capath}"
        words = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StsError(f"{for_terminal(what)}: {for_terminal(words)}") from None

    deadline = time.monotonic() + timeout
    addresses = _addresses(parts.hostname, resolver)
    sock = _connect(addresses, port, deadline, timeout, shown_url)
    watchdog = _Watchdog(sock, deadline - time.monotonic())
    try:
        try:
            tls = context.wrap_socket(sock, server_hostname=tls_name)
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or exc.reason or str(exc)
            hint = ""
            if exc.verify_code in (2, 19, 20, 21):  # unknown issuer, self-signed in chain …
                hint = " (if you trust its CA: --cafile FILE or --capath DIR)"
            raise StsError(f"certificate of the policy server {for_terminal(tls_name)} "
                           f"refused: {for_terminal(str(reason))}{hint} (RFC 8461 §3.3)"
                           ) from None
        except (ssl.SSLError, OSError, ValueError) as exc:  # ValueError: a name SNI refuses
            raise StsError(f"TLS with {shown_url} failed: "
                           f"{for_terminal(_os_words(exc))} (RFC 8461 §3.3)") from None
        sock = tls
        return _get(tls, tls_name, path, deadline, timeout, shown_url)
    except StsError:
        if watchdog.expired:
            raise StsError(_timed_out(shown_url, timeout)) from None
        raise
    finally:
        watchdog.stop()
        sock.close()


def _timed_out(shown_url: str, timeout: float) -> str:
    return f"{shown_url} did not answer within {timeout:g} s (RFC 8461 §3.3)"


class _Watchdog:
    """Cuts the connection when the fetch's time is up, so that a server that trickles its
    answer (each byte within the socket's timeout) cannot stretch the fetch beyond
    ``timeout``.  It shuts down a duplicate of the socket (the same connection, a descriptor
    of its own), so it never touches a descriptor that was closed and reused."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.expired = False
        self._dup = sock.dup()
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            try:
                self._dup.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        with self._lock:
            self._done = True
            self._dup.close()
        self._timer.cancel()


def _os_words(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        if exc.reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
            return f"the server does not speak TLS there ({exc.reason}; plain HTTP?)"
        return exc.reason or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _addresses(host: str, resolver: Resolver) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    from .dnsclient import DnsError

    found: list[str] = []
    errors: list[str] = []
    for rdtype in ("AAAA", "A"):
        try:
            answer = resolver.query(host + ".", rdtype)
        except (DnsError, ValueError) as exc:
            errors.append(str(exc))
            continue
        found.extend(str(r.address) for r in answer.records)
    if not found:
        why = errors[0] if errors else "no A or AAAA record"
        raise StsError(f"cannot find the address of the policy server {for_terminal(host)}: "
                       f"{for_terminal(why)} (RFC 8461 §3.3)")
    return found


def _connect(addresses: list[str], port: int, deadline: float, timeout: float,
             shown_url: str) -> socket.socket:
    """A TCP connection to the first address that answers (numeric addresses only: no
    name is ever given to the system's resolver)."""
    last = "no address"
    for address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(left)
        try:
            sock.connect((address, port))
        except OSError as exc:
            sock.close()
            last = f"{address} port {port}: {_os_words(exc)}"
            continue
        return sock
    raise StsError(f"cannot connect to the policy server for {shown_url}: "
                   f"{for_terminal(last)} (within {timeout:g} s)")


def _get(tls: ssl.SSLSocket, host: str, path: str, deadline: float, timeout: float,
         shown_url: str) -> bytes:
    conn = http.client.HTTPConnection(host, timeout=timeout)
    conn.sock = tls  # already connected: http.client then never connects (nor resolves)
    try:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        tls.settimeout(left)
        conn.request("GET", path, headers={
            "Host": host, "Accept": "text/plain", "User-Agent": "smtpshell",
            "Connection": "close"})
        response = conn.getresponse()
        status = response.status
        reason = for_terminal(response.reason or "")
        if 300 <= status < 400:
            location = response.getheader("Location")
            to = f" to {for_terminal(location)}" if location else ""
            raise StsError(f"HTTP {status} {reason} from {shown_url}: a redirect{to}, "
                           "which is not followed (RFC 8461 §3.3)")
        if status != 200:
            raise StsError(f"HTTP {status} {reason} from {shown_url}: only status 200 "
                           "gives a policy (RFC 8461 §3.3)")
        ctype = response.getheader("Content-Type")
        media = (ctype or "").split(";", 1)[0].strip().lower()
        if media != "text/plain":
            got = f"Content-Type {for_terminal(ctype)}" if ctype else "no Content-Type"
            raise StsError(f"{shown_url} answered with {got}: the policy must be text/plain "
                           "(RFC 8461 §3.3)")
        length = response.getheader("Content-Length")
        if length and length.strip().isdigit() and int(length) > POLICY_SIZE_LIMIT:
            raise StsError(_too_large(shown_url, f"{int(length)} bytes announced"))
        body = bytearray()
        while len(body) <= POLICY_SIZE_LIMIT:
            # No settimeout here: after a "Connection: close" answer http.client has
            # closed its handle on the socket, and Python 3.13 then refuses settimeout
            # (EBADF). The timeout set before the request and the watchdog, which cuts
            # the connection at the deadline, bound every read.
            if deadline - time.monotonic() <= 0:
                raise TimeoutError
            chunk = response.read1(POLICY_SIZE_LIMIT + 1 - len(body))
            if not chunk:
                break
            body += chunk
        if len(body) > POLICY_SIZE_LIMIT:
            raise StsError(_too_large(shown_url, "more was sent"))
        return bytes(body)
    except StsError:
        raise
    except TimeoutError:
        raise StsError(_timed_out(shown_url, timeout)) from None
    except (http.client.HTTPException, OSError, ValueError) as exc:
        words = _os_words(exc) if isinstance(exc, OSError) else (
            f"{type(exc).__name__} {for_terminal(str(exc))}".strip())
        raise StsError(f"HTTPS GET {shown_url} failed: {for_terminal(words)} "
                       "(RFC 8461 §3.3)") from None
    finally:
        conn.close()


def _too_large(shown_url: str, detail: str) -> str:
    return (f"the policy from {shown_url} is larger than {POLICY_SIZE_LIMIT // 1024} KiB "
            f"({detail}); refused (RFC 8461 §3.3)")


# ---- applying the policy to one connection (§4, §5) ------------------------------------------


@dataclass(frozen=True)
class StsVerdict:
    """Whether one connection to an MX host satisfies the policy (RFC 8461 §4, §5)."""

    applies: bool  # a policy in enforce or testing mode exists
    ok: bool  # the connection satisfies it (vacuously True when not enforce)
    enforce: bool
    reason: str  # one line, escaped
    checks: tuple[str, ...] = ()  # each rule checked, one line each, escaped
    mode: str | None = None  # the policy's mode, None without a policy

    def lines(self) -> list[str]:
        if not self.applies:
            head = "MTA-STS: nothing to enforce"
        elif self.enforce:
            head = "MTA-STS (enforce): " + ("satisfied" if self.ok else "VIOLATED")
        else:
            violated = any(c.startswith("FAIL") for c in self.checks)
            head = "MTA-STS (testing): " + ("would fail, reported only" if violated
                                            else "satisfied")
        return [head, f"  {self.reason}", *(f"  {c}" for c in self.checks)]


def check(
    lookup: StsLookup,
    mx_host: str,
    *,
    tls: bool,
    cert_valid: bool,
    cert_error: str | None = None,
) -> StsVerdict:
    """Apply ``lookup``'s policy to a connection to ``mx_host`` (RFC 8461 §4, §5).

    ``tls``: STARTTLS (or TLS) was in use; ``cert_valid``: the MX's certificate chained to a
    trusted CA and was valid for ``mx_host`` (PKIX, §4.2); ``cert_error``: why not, in words.
    """
    host = for_terminal(mx_host.rstrip("."))
    policy = lookup.policy
    if policy is None:
        why = lookup.problem or "no policy"
        return StsVerdict(False, True, False,
                          f"no MTA-STS policy for {for_terminal(lookup.domain)} ({why}): "
                          "nothing to enforce — RFC 8461 §5")
    if policy.mode == "none":
        return StsVerdict(False, True, False,
                          f"the policy of {for_terminal(lookup.domain)} has mode none: treated "
                          "as no policy — RFC 8461 §5", mode="none")
    checks: list[str] = []
    failures: list[str] = []
    matched = ""
    pattern = policy.matching_pattern(mx_host)
    if pattern is not None:
        how = "equals" if pattern.lower() == mx_host.rstrip(".").lower() else "matches"
        matched = f"{host} {how} policy pattern {pattern}"
        checks.append(f"ok: {matched} (RFC 8461 §4.1)")
    else:
        words = f"{host} matches none of the policy's mx patterns ({', '.join(policy.mx)})"
        checks.append(f"FAIL: {words} (RFC 8461 §4.1)")
        failures.append(words)
    if not tls:
        words = "no STARTTLS: the connection was not encrypted"
        checks.append(f"FAIL: {words} (RFC 8461 §4.2, §5)")
        failures.append(words)
    elif not cert_valid:
        detail = f": {for_terminal(cert_error)}" if cert_error else ""
        words = f"STARTTLS, but the certificate is not valid for {host}{detail}"
        checks.append(f"FAIL: {words} (RFC 8461 §4.2)")
        failures.append(words)
    else:
        checks.append(f"ok: STARTTLS with a certificate valid for {host} (RFC 8461 §4.2)")
    enforce = policy.mode == "enforce"
    if not failures:
        reason = (f"{matched}; STARTTLS with a certificate valid for {host} — RFC 8461 §4.1, "
                  "§4.2")
        if not enforce:
            reason = f"testing mode: {reason}"
        return StsVerdict(True, True, enforce, reason, tuple(checks), policy.mode)
    because = "; ".join(failures)
    if enforce:
        reason = f"enforce mode: {host} must not be used because {because} — RFC 8461 §5"
        return StsVerdict(True, False, True, reason, tuple(checks), policy.mode)
    reason = (f"testing mode: would fail because {because}; reported only, delivery goes "
              "on — RFC 8461 §5")
    return StsVerdict(True, True, False, reason, tuple(checks), policy.mode)
