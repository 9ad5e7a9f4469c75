"""``smtpshell --mx DOMAIN``: the MX list, connecting to the first host that answers, null MX,
a resolver that does not answer (issue 17). Real runs of ``main`` against the sandbox, with
the loopback DNS server of ``conftest.py``; nothing asks any other DNS server."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.sandbox import SandboxConfig, SandboxThread
from smtpshell.status import ExitStatus
from tests.mailsec.dnsserver import DnsServer

MX_HOST = "mx.example.test"


def run(argv: list[str], stdin: str = "QUIT\n", tmp: Path | None = None
        ) -> tuple[ExitStatus, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdin=io.StringIO(stdin), stdout=out, stderr=err, environ={},
        stdin_isatty=False, stdout_isatty=False,
        config_dir=Path("/nonexistent"), data_dir=(tmp or Path("/nonexistent")),
    )
    status = main(argv, env)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def mx_sandbox(tmp_path: Path) -> Iterator[SandboxThread]:
    """The sandbox with a certificate for mx.example.test (from its trustme CA)."""
    config = SandboxConfig(port=0, tls_port=None, hostname=MX_HOST,
                           workdir=tmp_path / "sandbox")
    with SandboxThread(config) as sb:
        yield sb


def test_mx_list_and_the_first_host_that_answers(dns_server: DnsServer, mx_sandbox:
                                                 SandboxThread) -> None:
    # mx1 (preference 10) is 127.0.0.2, where nothing listens: refused; mx2 is the sandbox
    dns_server.add(f"""
        example.test.      MX 10 mx1.example.test.
        example.test.      MX 20 {MX_HOST}.
        mx1.example.test.  A  127.0.0.2
        {MX_HOST}.         A  127.0.0.1
    """)
    status, out, err = run(["--mx", "example.test", str(mx_sandbox.port), "--resolver",
                            dns_server.spec, "--cafile", str(mx_sandbox.ca_file), "--ehlo",
                            "client.test"], "EHLO client.test\nSTARTTLS\nQUIT\n")
    assert status is ExitStatus.OK, err + out
    assert "MX for example.test: 2 hosts" in out
    assert out.index("mx1.example.test") < out.index(f"   20  {MX_HOST}")
    assert "trying mx1.example.test (preference 10) at 127.0.0.2:" in out
    assert "mx1.example.test: " in out and "trying the next MX host" in out
    assert f"trying {MX_HOST} (preference 20) at 127.0.0.1:{mx_sandbox.port}" in out
    assert f"connected to 127.0.0.1:{mx_sandbox.port}" in out
    # TLS verification and SNI use the MX host name, not the address or the domain
    assert f"SNI      {MX_HOST}" in out
    assert f"for host {MX_HOST}" in out
    # without --dane the DANE status is still shown, as information
    assert f"TLSA _{mx_sandbox.port}._tcp.{MX_HOST}.: none" in out


def test_no_mx_uses_the_domains_own_address(dns_server: DnsServer, mx_sandbox:
                                           SandboxThread) -> None:
    dns_server.add(f"{MX_HOST}. A 127.0.0.1")
    status, out, err = run(["--mx", MX_HOST, str(mx_sandbox.port), "--resolver",
                            dns_server.spec])
    assert status is ExitStatus.OK, err + out
    assert "has no MX records: the domain itself is its mail host (implicit MX" in out
    assert f"trying {MX_HOST} at 127.0.0.1:{mx_sandbox.port}" in out


def test_null_mx_is_one_line_and_the_connect_status(dns_server: DnsServer) -> None:
    dns_server.add("nomail.test. MX 0 .")
    status, out, err = run(["--mx", "nomail.test", "--resolver", dns_server.spec])
    assert status is ExitStatus.CONNECT
    assert err.count("\n") == 1 and out == ""
    assert "null MX" in err and "accepts no mail" in err and "RFC 7505" in err


def test_every_mx_host_refuses(dns_server: DnsServer) -> None:
    dns_server.add("""
        example.test.      MX 10 a.example.test.
        example.test.      MX 20 b.example.test.
        a.example.test.    A  127.0.0.2
        b.example.test.    A  127.0.0.3
    """)
    status, out, err = run(["--mx", "example.test", "2", "--resolver", dns_server.spec])
    assert status is ExitStatus.CONNECT
    assert "none of the 2 MX hosts answered" in out
    assert "Traceback" not in err + out


def test_unreachable_resolver_is_one_line(dns_server: DnsServer) -> None:
    dns_server.silent.add("example.test.")
    status, out, err = run(["--mx", "example.test", "--resolver", dns_server.spec,
                            "--timeout", "0.2"])
    assert status is ExitStatus.CONNECT
    assert err.count("\n") == 1 and out == ""
    assert "did not answer within 0.2s" in err


def test_servfail_is_one_line(dns_server: DnsServer) -> None:
    dns_server.servfail.add("example.test.")
    status, _out, err = run(["--mx", "example.test", "--resolver", dns_server.spec])
    assert status is ExitStatus.CONNECT
    assert err.count("\n") == 1 and "SERVFAIL" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--mx", "example.test", "h", "25"], "give at most a PORT"),
    (["--mx", "example.test", "notaport"], "invalid port"),
    (["--mx", "example.test:25"], "not a host and port"),
    (["--dane", "127.0.0.1"], "add --mx DOMAIN"),
    (["--mx", "example.test", "--dane", "--plain"], "need TLS"),
    (["--mx", "example.test", "--resolver", "dns.example"], "--resolver: not a resolver"),
])
def test_usage_errors(argv: list[str], message: str) -> None:
    status, _out, err = run(argv)
    assert status is ExitStatus.USAGE
    assert message in err and err.count("\n") == 1


def test_batch_start_up_without_these_options_imports_no_dns() -> None:
    code = ("import sys; from smtpshell.cli import main; "
            "from smtpshell.cli.shell import build_parser, options_from_args; "
            "import smtpshell.ui.batch, smtpshell.ui.commands, smtpshell.ui.core; "
            "from smtpshell.context import Environment; "
            "args = build_parser().parse_args(['127.0.0.1', '2']); "
            "options_from_args(args, Environment()); "
            "print(sorted(m for m in sys.modules if m == 'dns' or m.startswith('dns.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30, check=True)
    assert result.stdout.strip() == "[]"
