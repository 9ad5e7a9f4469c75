"""More than one connection in one transcript: each ``== connect`` opens a new connection
(the previous one closed by the client if still open), of its own kind (``tls=``), to the
server for that kind; nothing of one connection carries over to the next."""

from __future__ import annotations

import io
from pathlib import Path

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.sandbox import Sandbox
from smtpshell.transcript.model import Send
from smtpshell.transcript.syntax import parse

SAMPLE = Path(__file__).parents[2] / "transcripts" / "two-connections.smtp"
HEAD = "# smtpshell transcript v1\ntarget: 127.0.0.1:{port}\n\n"
GREETING = "<- 220 sandbox.smtpshell.test ESMTP smtpshell sandbox\n"


def cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=err, environ={},
                      stdin_isatty=False, stdout_isatty=False)
    return int(main(argv, env)), out.getvalue() + err.getvalue()


def replay(sandbox: Sandbox, path: Path, *servers: str) -> tuple[int, str]:
    return cli(["replay", *servers, "--cafile", str(sandbox.ca_file), str(path)])


def test_the_sample_starttls_then_implicit_tls_replays(sandbox: Sandbox) -> None:
    status, out = replay(sandbox, SAMPLE, "--server", f"127.0.0.1:{sandbox.port}",
                         "--tls-server", f"127.0.0.1:{sandbox.tls_port}")
    assert status == 0, out
    assert "1 passed, 0 failed, 0 errors" in out


def test_without_server_options_a_later_connection_goes_to_its_address(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The first connection goes to the header's target, a later one to another address to
    its recorded ``address=`` (here: the sandbox's implicit-TLS port)."""
    text = SAMPLE.read_text().replace("127.0.0.1:2526", f"127.0.0.1:{sandbox.port}")
    text = text.replace("127.0.0.1:4651", f"127.0.0.1:{sandbox.tls_port}")
    path = tmp_path / "two.smtp"
    path.write_text(text)
    status, out = replay(sandbox, path)
    assert status == 0, out


def test_a_connection_left_open_is_closed_and_its_events_stay_behind(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The first connection is left open (no QUIT, no close event), the second is closed by
    the client: the server's replies and the close of one never answer the next."""
    one = ("== connect address=127.0.0.1:1 tls=plain\n" + GREETING
           + "-> NOOP\n<- 250 OK\n")
    two = ("== connect address=127.0.0.1:1 tls=plain\n" + GREETING
           + "-> QUIT\n<- 221 Bye\n== closed by=client\n")
    three = ("== connect address=127.0.0.1:1 tls=plain\n" + GREETING
             + "-> NOOP\n<- 250 OK\n-> QUIT\n<- 221 Bye\n== closed by=server\n")
    path = tmp_path / "three.smtp"
    path.write_text(HEAD.format(port=sandbox.port) + one + two + three)
    status, out = replay(sandbox, path)
    assert status == 0, out
    assert "(16 steps" in out  # every step of the three connections ran


def test_a_mismatch_in_the_second_connection_names_its_line(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    text = SAMPLE.read_text()
    lines = text.splitlines()
    second = lines.index("== connect address=127.0.0.1:4651 tls=implicit")
    lineno = next(i for i, line in enumerate(lines, 1)
                  if i > second and line == "<~ 250 2.1.5 OK")
    lines[lineno - 1] = "<~ 550 5.1.1 recorded as refused"
    path = tmp_path / "broken.smtp"
    path.write_text("\n".join(lines) + "\n")
    status, out = replay(sandbox, path, "--server", f"127.0.0.1:{sandbox.port}",
                         "--tls-server", f"127.0.0.1:{sandbox.tls_port}")
    assert status == 1, out
    assert f"broken.smtp:{lineno}: expected reply code 550, got 250" in out


def test_the_kind_of_each_connection_picks_its_server(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A `tls: plain` transcript whose second connection is implicit TLS: with only --server
    that connection meets a plain port and the error names --tls-server."""
    text = SAMPLE.read_text().replace("tls: starttls\n", "tls: plain\n")
    path = tmp_path / "kinds.smtp"
    path.write_text(text)
    status, out = replay(sandbox, path, "--server", f"127.0.0.1:{sandbox.port}")
    assert status == 2, out
    assert "cannot connect" in out and "--tls-server HOST:PORT" in out


def test_a_connection_cut_in_a_message_body_does_not_carry_the_body_over() -> None:
    transcript = parse(
        HEAD.format(port=25)
        + "== connect address=127.0.0.1:25 tls=plain\n" + GREETING
        + "-> DATA\n<- 354 go ahead\n-> Subject: cut\n== closed by=server\n"
        + "== connect address=127.0.0.1:25 tls=plain\n" + GREETING
        + "-> EHLO again\n<- 250 OK\n"
    )
    sends = [step for step in transcript.steps() if isinstance(step, Send)]
    assert [(s.lines[0].text, s.body) for s in sends] == [  # type: ignore[union-attr]
        ("DATA", False), ("Subject: cut", True), ("EHLO again", False)]
