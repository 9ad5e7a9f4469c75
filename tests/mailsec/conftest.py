"""Fixtures for the MX, DANE and MTA-STS tests (issue 17): a DNS server on 127.0.0.1.

``dns_server`` is a started, empty ``tests.mailsec.dnsserver.DnsServer`` (add records with
``dns_server.add("example. MX 10 mx.example.")``, mark names with ``dns_server.signed``,
``.servfail``, ``.truncate``, ``.silent``…; see its docstring); ``resolver_spec`` is its
``"127.0.0.1:PORT"``, what ``--resolver`` takes. Nothing here asks any other DNS server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mailsec.dnsserver import DnsServer

# the MTA-STS policy server's fixtures (HTTPS on 127.0.0.1, trustme), for every test here
from tests.mailsec.https_server import policy_server, sts_ca, sts_cafile  # noqa: F401


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


@pytest.fixture
def resolver_spec(dns_server: DnsServer) -> str:
    return dns_server.spec
