"""A session killed with SIGKILL leaves a transcript that parses, up to the last line."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from smtpshell.sandbox import Sandbox
from smtpshell.transcript.model import ClientLine, ServerLine
from smtpshell.transcript.syntax import load
from tests.hostile.servers import serve_in_thread


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


# ---- big transcripts: show and replay read them as a stream ------------------------------

MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
sys.stderr.buffer.write(done.stderr)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_mb(*args: str) -> tuple[int, float]:
    """(status, peak RSS in MB) of ``python -m smtpshell ARGS``, measured by a parent of its
    own, so that no other child of the test process counts."""
    proc = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "smtpshell",
                           *args], capture_output=True, text=True, timeout=300, check=True)
    assert "Traceback" not in proc.stderr, proc.stderr
    status, kib = proc.stdout.split()
    return int(status), int(kib) / 1024


def big_transcript(path: Path, body_lines: int) -> Path:
    head = ("# smtpshell transcript v1\ntarget: 127.0.0.1:1\ntls: plain\n\n"
            "== connect address=127.0.0.1:1 tls=plain\n<- 220 sink\n-> EHLO big.test\n"
            "<- 250 ok\n-> MAIL FROM:<a@example.org>\n<- 250 ok\n-> RCPT TO:<b@example.org>\n"
            "<- 250 ok\n-> DATA\n<- 354 go\n")
    with path.open("w", encoding="utf-8") as f:
        f.write(head)
        f.write(("-> " + "x" * 96 + "\n") * body_lines)
        f.write("-> .\n<- 250 ok\n-> QUIT\n<- 221 bye\n")
    return path


async def _sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers 250 (354 to DATA, 221 to QUIT) and reads a message body without keeping it."""
    writer.write(b"220 sink\r\n")
    body = False
    while line := await reader.readline():
        if body:
            body = line != b".\r\n"
            if not body:
                writer.write(b"250 ok\r\n")
            continue
        verb = line[:4].upper()
        body = verb == b"DATA"
        reply = b"354 go" if body else b"221 bye" if verb == b"QUIT" else b"250 ok"
        writer.write(reply + b"\r\n")
        await writer.drain()


def test_show_and_replay_of_a_big_transcript_stay_in_bounded_memory(tmp_path: Path) -> None:
    """A 9 MB transcript (90 000 body lines): each run stays far below the size of the
    file times the parsed model's overhead (70-90 MB before). bench/big_transcript.py
    measures 100 MB."""
    path = big_transcript(tmp_path / "big.smtp", 90_000)
    status, show_mb = peak_rss_mb("show", "--no-color", str(path))
    assert status == 0
    with serve_in_thread(_sink) as srv:
        status, replay_mb = peak_rss_mb("replay", "--server", f"127.0.0.1:{srv.port}", str(path))
    assert status == 0
    assert show_mb < 50 and replay_mb < 50, (show_mb, replay_mb)
