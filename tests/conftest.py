from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smtpshell.sandbox import Sandbox, SandboxConfig, SandboxThread


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A real sandbox server (aiosmtpd + trustme) on 127.0.0.1, ports chosen by the OS."""
    with SandboxThread(SandboxConfig(port=0, tls_port=0, workdir=tmp_path / "sandbox")) as sb:
        yield sb
