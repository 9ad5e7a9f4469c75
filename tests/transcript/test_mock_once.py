"""``smtpshell mock --once`` with a transcript of several connections (issue 15, §4): the
mock stops when a client never opens the next connection (``--timeout`` bounds the wait for
each one, not only the first), its summary names the connection that never came, and the
exit status is never 0 while connections are missing (1 after ``--timeout``, 130 after
SIGTERM or Ctrl-C). The same summary without ``--once`` after SIGTERM.

Each test runs ``python -m smtpshell mock`` as a process on free ports (``--port 0``) and
reads the ports from its banner; ``proc.wait(timeout=…)`` only guards against a hang.
"""

from __future__ import annotations

import queue
import re
import signal
import smtplib
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

TWO_CONNECTIONS = Path(__file__).resolve().parents[2] / "transcripts" / "two-connections.smtp"
HANG_GUARD = 30.0  # seconds: only reached when the mock hangs (the bug)

# Two plain connections, written by hand: the second `== connect` is on line 8.
TWO_PLAIN = """\
# smtpshell transcript v1

== connect
<- 220 one ESMTP
-> QUIT
<- 221 bye
== closed by=server
== connect
<- 220 two ESMTP
-> QUIT
<- 221 bye
== closed by=server
"""


class Mock:
    """A ``smtpshell mock`` process; its output is read line by line in a thread, so a wait
    for a line has a bound even if the process hangs."""

    def __init__(self, tmp_path: Path, transcript: Path, *extra: str) -> None:
        self.ca = tmp_path / "ca.pem"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smtpshell", "mock", str(transcript), "--port", "0",
             "--tls-port", "0", "--ca-out", str(self.ca), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen = ""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        banner = self.expect(r"waiting for one client|Ready\.")
        ports = re.search(r" on 127\.0\.0\.1:(\d+) (?:\(plain/STARTTLS\) and "
                          r"127\.0\.0\.1:(\d+) )?", banner)
        assert ports is not None, banner
        self.port = int(ports[1])
        self.tls_port = int(ports[2]) if ports[2] else None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def expect(self, pattern: str) -> str:
        """The output up to the first line matching ``pattern``."""
        while not re.search(pattern, self.seen):
            try:
                line = self.lines.get(timeout=HANG_GUARD)
            except queue.Empty:
                pytest.fail(f"no {pattern!r} from the mock: {self.seen!r}")
            assert line, f"the mock ended without {pattern!r}: {self.seen!r}"
            self.seen += line
        return self.seen

    def finish(self) -> tuple[int, str, str]:
        """(status, all its output, its errors) once it exits by itself or after a signal."""
        try:
            status = self.proc.wait(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the mock is still running: {self.seen!r}")
        self.expect_end()
        assert self.proc.stderr is not None
        return status, self.seen, self.proc.stderr.read()

    def expect_end(self) -> None:
        while True:
            line = self.lines.get(timeout=HANG_GUARD)
            if not line:
                return
            self.seen += line

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.reader.join(HANG_GUARD)  # it ends with the output: then close the pipes
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def first_connection(mock: Mock) -> None:
    """What the sample's connection 1 does: STARTTLS, a recipient checked, RSET, QUIT."""
    ctx = ssl.create_default_context(cafile=str(mock.ca))
    with smtplib.SMTP("127.0.0.1", mock.port, local_hostname="client.smtpshell.test",
                      timeout=30) as s:
        assert s.starttls(context=ctx)[0] == 220
        s.ehlo()
        assert s.mail("alice@example.org")[0] == 250
        assert s.rcpt("bob@example.org")[0] == 250
        assert s.rset()[0] == 250


def second_connection(mock: Mock) -> None:
    """The sample's connection 2: implicit TLS and the message."""
    assert mock.tls_port is not None
    ctx = ssl.create_default_context(cafile=str(mock.ca))
    with smtplib.SMTP_SSL("127.0.0.1", mock.tls_port, local_hostname="client.smtpshell.test",
                          context=ctx, timeout=30) as s:
        assert s.sendmail("alice@example.org", ["bob@example.org"],
                          "Subject: second connection\r\n\r\nHello again.\r\n") == {}


def sample(tmp_path: Path) -> Path:
    path = tmp_path / "two.smtp"
    path.write_text(TWO_CONNECTIONS.read_text())
    return path


def second_connect_line(path: Path) -> int:
    lines = [n for n, line in enumerate(path.read_text().splitlines(), 1)
             if line.startswith("== connect")]
    assert len(lines) == 2
    return lines[1]


def test_the_timeout_bounds_the_wait_for_the_second_connection(tmp_path: Path) -> None:
    path = sample(tmp_path)
    mock = Mock(tmp_path, path, "--once", "--timeout", "1")
    try:
        first_connection(mock)
        status, out, err = mock.finish()
    finally:
        mock.close()
    assert (status, err) == (1, ""), out
    assert "connection 1 from 127.0.0.1:" in out and ": ok, the client followed" in out
    assert ("mock stopped: no further client connected within 1 s (--timeout); "
            "1 connection(s), 1 ok, 0 did not follow the transcript.") in out
    line = second_connect_line(path)
    assert (f"  connection 2 (line {line}, implicit TLS on port {mock.tls_port}) never came"
            in out)


def test_sigterm_after_the_first_of_two_connections_exits_130(tmp_path: Path) -> None:
    path = sample(tmp_path)
    mock = Mock(tmp_path, path, "--once", "--timeout", "30")
    try:
        first_connection(mock)
        mock.expect(r"connection 1 from .*: ok")
        mock.proc.send_signal(signal.SIGTERM)
        status, out, err = mock.finish()
    finally:
        mock.close()
    assert (status, err) == (130, ""), out
    line = second_connect_line(path)
    assert out.endswith("mock stopped: 1 connection(s), 1 ok, 0 did not follow the transcript.\n"
                        f"  connection 2 (line {line}, implicit TLS on port {mock.tls_port}) "
                        "never came\n"), out


def test_ctrl_c_after_the_first_of_two_plain_connections_exits_130(tmp_path: Path) -> None:
    path = tmp_path / "two-plain.smtp"
    path.write_text(TWO_PLAIN)
    mock = Mock(tmp_path, path, "--once", "--timeout", "30")
    try:
        with smtplib.SMTP(timeout=30) as s:
            assert s.connect("127.0.0.1", mock.port) == (220, b"one ESMTP")  # QUIT on leaving
        mock.expect(r"connection 1 from .*: ok")
        mock.proc.send_signal(signal.SIGINT)
        status, out, err = mock.finish()
    finally:
        mock.close()
    assert mock.tls_port is None
    assert status == 130 and "Traceback" not in err, err
    assert f"  connection 2 (line 8, plain/STARTTLS on port {mock.port}) never came\n" in out


def test_a_plain_two_connection_transcript_times_out_after_the_first(tmp_path: Path) -> None:
    path = tmp_path / "two-plain.smtp"
    path.write_text(TWO_PLAIN)
    mock = Mock(tmp_path, path, "--once", "--timeout", "1")
    try:
        with smtplib.SMTP(timeout=30) as s:
            assert s.connect("127.0.0.1", mock.port) == (220, b"one ESMTP")  # QUIT on leaving
        status, out, err = mock.finish()
    finally:
        mock.close()
    assert (status, err) == (1, ""), out
    assert f"  connection 2 (line 8, plain/STARTTLS on port {mock.port}) never came\n" in out


def test_both_connections_exit_0(tmp_path: Path) -> None:
    mock = Mock(tmp_path, sample(tmp_path), "--once", "--timeout", "30")
    try:
        first_connection(mock)
        second_connection(mock)
        status, out, err = mock.finish()
    finally:
        mock.close()
    assert (status, err) == (0, ""), out
    assert out.count(": ok, the client followed the transcript") == 2
    assert "never came" not in out and "mock stopped" not in out


def test_without_once_sigterm_names_the_connection_that_never_came(tmp_path: Path) -> None:
    """A server run without ``--once``: a client that made only connection 1 of the sample's
    two is not a clean run (exit 1); after a whole round, SIGTERM exits 0 as before."""
    path = sample(tmp_path)
    mock = Mock(tmp_path, path, "--timeout", "30")
    try:
        first_connection(mock)
        mock.expect(r"connection 1 from .*: ok")
        mock.proc.send_signal(signal.SIGTERM)
        status, out, err = mock.finish()
    finally:
        mock.close()
    assert (status, err) == (1, ""), out
    line = second_connect_line(path)
    assert out.endswith("mock stopped: 1 connection(s), 1 ok, 0 did not follow the transcript.\n"
                        f"  connection 2 (line {line}, implicit TLS on port {mock.tls_port}) "
                        "never came\n"), out


def test_without_once_a_whole_round_then_sigterm_exits_0(tmp_path: Path) -> None:
    mock = Mock(tmp_path, sample(tmp_path), "--timeout", "30")
    try:
        first_connection(mock)
        second_connection(mock)
        mock.expect(r"connection 2 from .*: ok")
        mock.proc.send_signal(signal.SIGTERM)
        status, out, err = mock.finish()
    finally:
        mock.close()
    assert (status, err) == (0, ""), out
    assert "mock stopped: 2 connection(s), 2 ok, 0 did not follow the transcript.\n" in out
    assert "never came" not in out
