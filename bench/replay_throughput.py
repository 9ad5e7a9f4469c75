"""Benchmark (c): transcripts replayed per second, against running swaks once per message.

One session (STARTTLS + AUTH PLAIN + a message + QUIT) is recorded with ``--record``
and copied N times; then the N transcripts are replayed by ``smtpshell replay -j 16``
(one process, asyncio concurrency) and by pytest with the smtpshell plugin and
``-n 2`` (pytest-xdist).  The peers run the same transaction once per process, one
after the other: swaks (and curl, for reference).

    python bench/replay_throughput.py [-n 200] [--runs 3] [--jobs 16]
    python bench/replay_throughput.py --count 5000 [--sink] [--runs 1] [--jobs 16]

Rates are transactions per second of whole-process wall time (start-up included).
Target (issue 8): replay at least 5x the rate of swaks run once per transaction.

``--count N`` (issue 16: 5,000 transcripts in < 100 MB RSS) replays N copies with
``smtpshell replay -q -j J`` only (no pytest run) and prints its wall time and peak RSS
(GNU time's maximum resident set of the smtpshell process), and swaks' time for the same
N sessions: the median of ``--peer-runs`` single swaks runs times N (running swaks 5,000
times would take minutes and measure nothing more).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import benchlib as b


def record(python: str, server: b.Server, work: Path, user: str,
           password: str) -> Path:
    """Record one real session with ``smtpshell --record`` (the password as a reference)."""
    message = ["Subject: replayed", "", "A message sent again and again."]
    commands = b.write_commands(work / "record-commands.txt", [
        f"MAIL FROM:<{b.FROM}>", f"RCPT TO:<{b.TO}>", "DATA", *message, ".", "QUIT"])
    transcript = work / "recorded.smtp"
    transcript.unlink(missing_ok=True)
    tls = ["--cafile", server.cafile] if server.cafile else ["--insecure"]
    cmd = [*b.smtpshell_command(python), "--starttls", "--auth", "plain", "--user", user,
           "--password-env", "SMTPSHELL_PASSWORD", *tls, "--record", str(transcript),
           server.host, str(server.port)]
    with open(commands, "rb") as stdin:
        done = subprocess.run(cmd, stdin=stdin, capture_output=True,
                              env={**os.environ, "SMTPSHELL_PASSWORD": password})
    if done.returncode != 0 or not transcript.exists():
        raise SystemExit(f"bench: recording failed:\n{done.stdout.decode()}"
                         f"{done.stderr.decode()}")
    return transcript


def main() -> int:
    p = b.common_parser(__doc__.split("\n")[0])
    p.add_argument("-n", "--transcripts", type=int, default=200)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--jobs", type=int, default=16, help="smtpshell replay -j (default 16)")
    p.add_argument("--peer-runs", type=int, default=20,
                   help="transactions per peer, one process each (default 20)")
    p.add_argument("--sink", action="store_true", help="local server: the sink, not aiosmtpd")
    p.add_argument("--count", type=int, metavar="N",
                   help="the many-transcripts mode: N copies, replay only, peak RSS "
                        "(issue 16: 5,000 in < 100 MB)")
    args = p.parse_args()
    if args.count is not None:
        return count_mode(args)
    n = args.transcripts
    with b.workdir_from_args(args) as work, \
            b.server_from_args(args, work, "sink" if args.sink else "sandbox") as server:
        b.header("replay throughput: STARTTLS + AUTH PLAIN + message, per transcript",
                 server, args.python)
        recorded = record(args.python, server, work, args.user, args.password)
        project = work / "replay-project"
        shutil.rmtree(project, ignore_errors=True)
        tdir = project / "transcripts"
        tdir.mkdir(parents=True)
        for i in range(n):
            shutil.copyfile(recorded, tdir / f"t{i:05d}.smtp")
        (project / "pytest.ini").write_text("[pytest]\nsmtpshell_transcripts = transcripts\n")
        env = {"SMTPSHELL_PASSWORD": args.password}
        tls = ["--cafile", server.cafile] if server.cafile else ["--insecure"]
        replay = b.Subject(
            f"smtpshell replay -j {args.jobs} ({n} files)",
            [*b.smtpshell_command(args.python), "replay", "-q", "-j", str(args.jobs),
             "--server", server.address, *tls, str(tdir)],
            env=env, check=rf"{n} passed, 0 failed, 0 errors")
        pytest_tls = (["--smtpshell-cafile", server.cafile] if server.cafile
                      else ["--smtpshell-insecure"])
        plugin = b.Subject(
            f"pytest -n 2 (plugin, {n} files)",
            [args.python, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
             "--rootdir", str(project), "-c", str(project / "pytest.ini"),
             "--smtpshell-server", server.address, *pytest_tls, str(tdir)],
            env=env, check=rf"{n} passed")
        message = work / "peer.eml"
        message.write_bytes(f"From: <{b.FROM}>\r\nTo: <{b.TO}>\r\nSubject: replayed\r\n\r\n"
                            "A message sent again and again.\r\n".encode())
        many = [replay]
        if _has_xdist(args.python):
            many.append(plugin)
        else:
            print("(pytest-xdist not installed for this interpreter: plugin run skipped; "
                  "bench/setup.sh installs it)", file=sys.stderr)
        singles = []
        if b.have("swaks"):
            singles.append(b.swaks(server, args.user, args.password, message))
        if b.have("curl"):
            singles.append(b.curl(server, args.user, args.password, message))
        b.measure(many, args.runs, 1, work)
        b.measure(singles, args.peer_runs, 1, work)
    rates = {s.name: n / s.median for s in many}
    rates.update({s.name + " (one process per message)": 1 / statistics.median(
        r.seconds for r in s.runs) for s in singles})
    swaks_rate = next((v for k, v in rates.items() if k.startswith("swaks")), None)
    rows = [[name, f"{rate:.1f}", f"{rate / swaks_rate:.2f}x" if swaks_rate else "-"]
            for name, rate in rates.items()]
    print(f"replays: {args.runs} runs of {n} transcripts (median); peers: median of "
          f"{args.peer_runs} single runs\n")
    print(b.table(rows, ["client", "transactions/s", "÷ swaks rate"]))
    if swaks_rate:
        print()
        for subject in many:
            ratio = rates[subject.name] / swaks_rate
            print(f"target ≥ 5x swaks, {subject.name}: {ratio:.1f}x — "
                  f"{'met' if ratio >= 5 else 'NOT met'}")
    return 0


def _copies(recorded: Path, work: Path, n: int) -> Path:
    tdir = work / "replay-project" / "transcripts"
    shutil.rmtree(tdir.parent, ignore_errors=True)
    tdir.mkdir(parents=True)
    for i in range(n):
        shutil.copyfile(recorded, tdir / f"t{i:05d}.smtp")
    return tdir


def count_mode(args: argparse.Namespace) -> int:
    """``--count N``: wall time and peak RSS of one ``smtpshell replay`` of N transcripts,
    against swaks' time for the same N sessions (its median single run, times N)."""
    n = args.count
    with b.workdir_from_args(args) as work, \
            b.server_from_args(args, work, "sink" if args.sink else "sandbox") as server:
        b.header(f"replay of {n} transcripts: wall time and peak RSS", server, args.python)
        recorded = record(args.python, server, work, args.user, args.password)
        tdir = _copies(recorded, work, n)
        tls = ["--cafile", server.cafile] if server.cafile else ["--insecure"]
        cmd = [*b.smtpshell_command(args.python), "replay", "-q", "-j", str(args.jobs),
               "--server", server.address, *tls, str(tdir)]
        replay = b.Subject(f"smtpshell replay -q -j {args.jobs} ({n} files)", cmd,
                           env={"SMTPSHELL_PASSWORD": args.password},
                           check=rf"{n} passed, 0 failed, 0 errors")
        message = work / "peer.eml"
        message.write_bytes(f"From: <{b.FROM}>\r\nTo: <{b.TO}>\r\nSubject: replayed\r\n\r\n"
                            "A message sent again and again.\r\n".encode())
        peer = b.swaks(server, args.user, args.password, message) if b.have("swaks") else None
        b.measure([replay], args.runs, 0, work)
        if peer is not None:
            b.measure([peer], args.peer_runs, 1, work)
    print(f"$ {' '.join(cmd)}")
    print(f"replay: {args.runs} run(s), median; swaks: median of {args.peer_runs} single "
          f"runs, times {n}\n")
    rows = [[replay.name, f"{replay.median:.2f}", f"{replay.rss_mb:.1f}",
             f"{n / replay.median:.1f}", "-"]]
    if peer is not None:
        one = statistics.median(r.seconds for r in peer.runs)
        rows.append([f"swaks, one process per message (x{n})", f"{one * n:.2f}",
                     f"{peer.rss_mb:.1f} (one)", f"{1 / one:.1f}", "1.00x"])
        rows[0][-1] = f"{(n / replay.median) * one:.2f}x"
    print(b.table(rows, ["client", "wall s", "peak RSS MB", "transactions/s",
                         "÷ swaks rate"]))
    print(f"\npeak RSS of each replay run (MB): "
          f"{', '.join(f'{r.maxrss_kb / 1024:.1f}' for r in replay.runs)}")
    verdict = "met" if max(r.maxrss_kb for r in replay.runs) < 100 * 1024 else "NOT met"
    print(f"target < 100 MB RSS for {n} transcripts: {verdict}")
    return 0


def _has_xdist(python: str) -> bool:
    return subprocess.run([python, "-c", "import xdist, pytest"],
                          capture_output=True).returncode == 0


if __name__ == "__main__":
    sys.exit(main())
