"""MTA-STS (RFC 8461): the TXT record, the policy fetched over HTTPS, and whether a
connection to an MX host satisfies it.

(Interface first; the rules we apply are listed here as they are implemented.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    "policy_url",
]

POLICY_SIZE_LIMIT = 64 * 1024
"""RFC 8461 §3.3: a policy body larger than 64 KiB is refused."""
MAX_AGE_LIMIT = 31557600
"""RFC 8461 §3.2: ``max_age`` is at most 31557600 seconds (about a year)."""


class StsError(Exception):
    """A policy that cannot be used; ``str()`` is one line."""


@dataclass(frozen=True)
class StsPolicy:
    version: str
    mode: str  # "enforce" | "testing" | "none"
    mx: tuple[str, ...]
    max_age: int

    def matches(self, host: str) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class StsLookup:
    domain: str
    txt_id: str | None
    url: str
    policy: StsPolicy | None
    problem: str | None

    def lines(self) -> list[str]:
        raise NotImplementedError


def policy_url(domain: str) -> str:
    return f"https://mta-sts.{domain}/.well-known/mta-sts.txt"


def parse_policy(text: str) -> StsPolicy:
    raise NotImplementedError


def lookup(
    domain: str,
    resolver: Resolver,
    *,
    url: str | None = None,
    cafile: str | None = None,
    capath: str | None = None,
    timeout: float = 10.0,
) -> StsLookup:
    raise NotImplementedError


@dataclass(frozen=True)
class StsVerdict:
    applies: bool
    ok: bool
    enforce: bool
    reason: str

    def lines(self) -> list[str]:
        raise NotImplementedError


def check(
    lookup: StsLookup,
    mx_host: str,
    *,
    tls: bool,
    cert_valid: bool,
    cert_error: str | None = None,
) -> StsVerdict:
    raise NotImplementedError
