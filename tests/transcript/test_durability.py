"""A session killed with SIGKILL leaves a transcript that parses, up to the last line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from smtpshell.sandbox import Sandbox
from smtpshell.transcript.model import ClientLine, ServerLine
from smtpshell.transcript.syntax import load


def test_sigkill_leaves_a_readable_transcript(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "killed.smtp"
    proc = subprocess.Popen(
        [sys.executable, "-m", "smtpshell", "--record", str(path), "--ehlo", "k.test",
         "127.0.0.1", str(sandbox.port)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"EHLO k.test\nMAIL FROM:<a@example.org>\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if path.exists() and "<- 250 OK" in path.read_text():
                break
            time.sleep(0.05)  # polling a file another process writes; not a synchronisation
        else:
            raise AssertionError("the transcript never showed the MAIL reply")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdin:
            proc.stdin.close()
    transcript = load(path)
    texts = [e.text for e in transcript.entries if isinstance(e, ClientLine | ServerLine)]
    assert "EHLO k.test" in texts and "MAIL FROM:<a@example.org>" in texts
    assert texts[-1] == "250 OK"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
