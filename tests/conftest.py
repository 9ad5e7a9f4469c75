from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from hypothesis import HealthCheck, settings

from smtpshell.sandbox import Sandbox, SandboxConfig, SandboxThread

# Properties are about correctness, never speed: CI runs the suite on several Pythons at
# once on two cores, where a per-example deadline or the too-slow health check fails
# examples that are merely slow.  (Speed is measured by bench/, never by tests.)
settings.register_profile(
    "smtpshell", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("smtpshell")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A real sandbox server (aiosmtpd + trustme) on 127.0.0.1, ports chosen by the OS."""
    with SandboxThread(SandboxConfig(port=0, tls_port=0, workdir=tmp_path / "sandbox")) as sb:
        yield sb


@pytest.fixture
def chunking(tmp_path: Path) -> Iterator[Sandbox]:
    """The sandbox with CHUNKING (BDAT) on, plain only."""
    config = SandboxConfig(port=0, tls_port=None, workdir=tmp_path / "sandbox", chunking=True)
    with SandboxThread(config) as sb:
        yield sb


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A throw-away CA for the test session (per xdist worker)."""
    return trustme.CA()


@pytest.fixture(scope="session")
def server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    """A server context with a leaf for localhost, 127.0.0.1 and ::1."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1", "::1").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="session")
def client_ctx(ca: trustme.CA) -> ssl.SSLContext:
    """A verifying client context that trusts ``ca``."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx
