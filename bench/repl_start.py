"""Benchmark (d): interactive start, from launching ``smtpshell HOST PORT`` in a terminal
to the server's greeting shown above the prompt.

The shell runs in a pseudo-terminal, as a person would start it; the clock stops when
the greeting's ``220`` appears on the screen, and again when the prompt is drawn (the
shell is ready for typing).  Then ``/quit`` ends it.

    python bench/repl_start.py [--runs 15]

Targets (issue 16): under 150 ms to the greeting, under 250 ms to the prompt.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import statistics
import subprocess
import sys
import time

import benchlib as b

PROMPT = rb"(plain|TLS|closed)>"
"""The shell's prompt (``127.0.0.1:2525 plain>``), ANSI escapes removed."""
ANSI = re.compile(rb"\x1b\[[0-9;?]*[a-zA-Z]|\x1b\][^\x07]*\x07|\r")


def start_once(cmd: list[str], env: dict[str, str], pattern: bytes, *, quit: bool = True,
               prompt: bytes | None = None) -> tuple[float, float]:
    """Seconds from spawn to ``pattern`` on the screen, and to ``prompt`` (if given)."""
    master, slave = pty.openpty()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    screen = b""

    def read_until(wanted: bytes, what: str) -> float:
        """Seconds from the spawn until ``wanted`` is on the screen."""
        nonlocal screen
        while not re.search(wanted, ANSI.sub(b"", screen)):
            ready, _, _ = select.select([master], [], [], 30)
            chunk = os.read(master, 65536) if ready else b""
            if not chunk:
                raise SystemExit(f"bench: no {what} on the screen:\n{screen.decode()}")
            screen += chunk
        return time.perf_counter() - started

    try:
        elapsed = read_until(pattern, "greeting")
        prompted = read_until(prompt, "prompt") if prompt is not None else elapsed
        if quit:
            os.write(master, b"/quit\r")
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    os.read(master, 65536)
                except OSError:
                    break
        if proc.wait(timeout=20) != 0:
            raise SystemExit(f"bench: the shell exited with {proc.returncode}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    return elapsed, prompted


def main() -> int:
    p = b.common_parser(__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args()
    with b.workdir_from_args(args) as work, b.server_from_args(args, work, "sandbox") as server:
        b.header("REPL start: launch to greeting on screen, in a pty", server, args.python)
        home = work / "home"
        home.mkdir(exist_ok=True)
        env = {**os.environ, "TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1",
               "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
               "XDG_DATA_HOME": str(home / "data")}
        cases = {
            "smtpshell HOST PORT (history on)": [*b.smtpshell_command(args.python),
                                                 server.host, str(server.port)],
            "smtpshell --no-color HOST PORT": [*b.smtpshell_command(args.python),
                                               "--no-color", server.host, str(server.port)],
        }
        floor = [args.python, "-c", "print('220 floor')"]
        times: dict[str, list[float]] = {}
        floor_name = "python -c print (floor, for reference)"
        for i in range(args.warmup + args.runs):
            for name, cmd in cases.items():
                greeting, prompted = start_once(cmd, env, rb"220[ -]", prompt=PROMPT)
                if i >= args.warmup:
                    times.setdefault(f"{name}: greeting", []).append(greeting)
                    times.setdefault(f"{name}: prompt", []).append(prompted)
            t, _ = start_once(floor, env, rb"220 floor", quit=False)
            if i >= args.warmup:
                times.setdefault(floor_name, []).append(t)
    print(f"{args.runs} runs each, interleaved; 'greeting': the 220 on the screen; "
          "'prompt': the prompt drawn after it\n")
    rows = [[name, f"{statistics.median(ts) * 1000:.1f}", f"{min(ts) * 1000:.1f}",
             f"{max(ts) * 1000:.1f}"] for name, ts in times.items()]
    print(b.table(rows, ["start", "median ms", "min ms", "max ms"]))
    medians = [statistics.median(ts) * 1000 for ts in times.values()]
    greeting_ms, prompt_ms = medians[0], medians[1]
    print(f"\ntarget < 150 ms to the greeting: {greeting_ms:.0f} ms — "
          f"{'met' if greeting_ms < 150 else 'NOT met'}; "
          f"< 250 ms to the prompt: {prompt_ms:.0f} ms — "
          f"{'met' if prompt_ms < 250 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
