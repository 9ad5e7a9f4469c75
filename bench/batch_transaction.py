"""Benchmark (a): one small message, non-interactive, whole-process wall time.

STARTTLS + AUTH PLAIN + MAIL/RCPT/DATA + QUIT, by smtpshell in batch mode
(``smtpshell --starttls --auth plain ... < commands``) and by each peer: curl, swaks,
a 10-line smtplib script and ``openssl s_client -starttls smtp`` (sent blind).

    python bench/batch_transaction.py [--runs 20] [--sink] [--server HOST:PORT --cafile CA]

The default server is ``smtpshell sandbox`` (aiosmtpd) in its own process; ``--sink``
uses bench/sink_server.py instead, which offers PIPELINING.  Medians over ``--runs``
runs, the peers interleaved run by run.  Then the CPU time (user + sys) of smtpshell
and of the smtplib script, interleaved again.  Targets (issue 16): at most 1.0x the
smtplib script and 0.9x swaks in wall time; CPU at most 1.3x the script's.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

import benchlib as b


def cpu_seconds(subject: b.Subject) -> float:
    """User + sys CPU of one run of ``subject`` (its output discarded, not checked)."""
    env = {**os.environ, **subject.env}
    with open(subject.stdin or os.devnull, "rb") as stdin:
        proc = subprocess.Popen(list(subject.cmd), stdin=stdin, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {subject.name} failed: {' '.join(subject.cmd)}")
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    p = b.common_parser(__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--sink", action="store_true", help="local server: the sink, not aiosmtpd")
    args = p.parse_args()
    with b.workdir_from_args(args) as work, \
            b.server_from_args(args, work, "sink" if args.sink else "sandbox") as server:
        message = work / "small.eml"
        message.write_bytes(
            f"From: <{b.FROM}>\r\nTo: <{b.TO}>\r\nSubject: bench\r\n\r\n"
            "One small message.\r\n.A line that starts with a dot.\r\n".encode())
        commands = b.write_commands(work / "commands.txt", [
            f"MAIL FROM:<{b.FROM}>", f"RCPT TO:<{b.TO}>", "DATA",
            *message.read_text().replace("\r\n", "\n").splitlines(), ".", "QUIT",
        ])
        subjects = [b.smtpshell_batch(args.python, server, args.user, args.password, commands)]
        if b.have("curl"):
            subjects.append(b.curl(server, args.user, args.password, message))
        if b.have("swaks"):
            subjects.append(b.swaks(server, args.user, args.password, message))
        subjects.append(b.smtplib_script(args.python, server, args.user, args.password, message))
        if b.have("openssl"):
            session = b.openssl_session(work / "openssl-session.txt", args.user, args.password,
                                        message)
            subjects.append(b.openssl(server, session))
        subjects += [b.reference(args.python, "pass"),
                     b.reference(args.python, "import ssl"),
                     b.reference(args.python, "import asyncio, ssl")]
        b.header("batch transaction: STARTTLS + AUTH PLAIN + 1 small message + QUIT",
                 server, args.python)
        b.measure(subjects, args.runs, args.warmup, work)
        script = next(s for s in subjects if s.name == "smtplib script")
        cpu: dict[str, list[float]] = {subjects[0].name: [], script.name: []}
        for _ in range(args.runs):
            for s in (subjects[0], script):
                cpu[s.name].append(cpu_seconds(s))
    ours = subjects[0]
    rows = [[s.name + (" (floor, for reference)" if s.reference else ""),
             f"{s.median * 1000:.1f}", f"{min(r.seconds for r in s.runs) * 1000:.1f}",
             "1.00x" if s is ours else b.ratio(ours.median, s.median)] for s in subjects]
    print(f"{args.runs} runs each, interleaved; wall time of the whole process\n")
    print(b.table(rows, ["client", "median ms", "min ms", "smtpshell ÷ client"]))
    by_name = {s.name: s for s in subjects}
    print()
    if "swaks" in by_name:
        r = ours.median / by_name["swaks"].median
        print(f"target ≤ 0.90x swaks: {r:.2f}x — {'met' if r <= 0.9 else 'NOT met'}")
    r = ours.median / by_name["smtplib script"].median
    print(f"target ≤ 1.00x the smtplib script: {r:.2f}x — {'met' if r <= 1 else 'NOT met'}")
    ours_cpu, script_cpu = (statistics.median(v) for v in cpu.values())
    r = ours_cpu / script_cpu
    print(f"CPU (user + sys), median of {args.runs} interleaved runs: smtpshell "
          f"{ours_cpu * 1000:.0f} ms, the smtplib script {script_cpu * 1000:.0f} ms; "
          f"target ≤ 1.30x: {r:.2f}x — {'met' if r <= 1.3 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
