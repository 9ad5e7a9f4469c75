"""Benchmark: peak memory of ``smtpshell show`` and ``smtpshell replay`` on a big transcript.

A transcript of one message whose body has N lines of 100 bytes (default 1 000 000 lines,
100 MB) is written, shown (no colour, output discarded) and replayed against
``bench/sink_server.py``. Each command runs under a parent of its own that reports the
child's peak RSS (``getrusage(RUSAGE_CHILDREN)``).

    python bench/big_transcript.py [--lines 1000000]

Target (issue 13): both stay under 150 MB for 100 MB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib as b

MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def write(path: Path, lines: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("# smtpshell transcript v1\ntarget: 127.0.0.1:1\ntls: plain\n\n"
                "== connect address=127.0.0.1:1 tls=plain\n<- 220 sink\n-> EHLO big.test\n"
                "<- 250-sink\n<- 250 ok\n-> MAIL FROM:<a@example.org>\n<- 250 ok\n"
                "-> RCPT TO:<b@example.org>\n<- 250 ok\n-> DATA\n<- 354 go\n")
        f.write(("-> " + "x" * 96 + "\n") * lines)
        f.write("-> .\n<- 250 ok\n-> QUIT\n<- 221 bye\n")


def peak(python: str, *args: str) -> tuple[int, float, float]:
    """(status, peak RSS in MB, seconds) of ``smtpshell ARGS``."""
    started = time.monotonic()
    out = subprocess.run([python, "-c", MEASURE, *b.smtpshell_command(python), *args],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1]) / 1024, time.monotonic() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    args = p.parse_args()
    python = b.default_python()
    with tempfile.TemporaryDirectory(prefix="smtpshell-bench-") as tmp:
        work = Path(tmp)
        path = work / "big.smtp"
        write(path, args.lines)
        size = path.stat().st_size / 1e6
        rows = []
        status, mb, secs = peak(python, "show", "--no-color", str(path))
        rows.append(["show --no-color", str(status), f"{mb:.0f}", f"{secs:.1f}"])
        with b.local_server("sink", python, work) as server:
            status, mb, secs = peak(python, "replay", "--server", server.address, str(path))
        rows.append(["replay (sink server)", str(status), f"{mb:.0f}", f"{secs:.1f}"])
    print(f"transcript: {size:.0f} MB, {args.lines} body lines; {b.machine()}")
    print(b.table(rows, ["command", "status", "peak RSS MB", "seconds"]))


if __name__ == "__main__":
    sys.exit(main())
