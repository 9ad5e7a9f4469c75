"""Benchmark (a): one small message, non-interactive, whole-process wall time.

STARTTLS + AUTH PLAIN + MAIL/RCPT/DATA + QUIT, by smtpshell in batch mode
(``smtpshell --starttls --auth plain ... < commands``) and by each peer: curl, swaks,
a 10-line smtplib script and ``openssl s_client -starttls smtp`` (sent blind).

    python bench/batch_transaction.py [--runs 20] [--sink] [--server HOST:PORT --cafile CA]

The default server is ``smtpshell sandbox`` (aiosmtpd) in its own process; ``--sink``
uses bench/sink_server.py instead, which offers PIPELINING.  Medians over ``--runs``
runs, the peers interleaved run by run.  Targets (issue 8): at most 0.6x swaks and
faster than the smtplib script.
"""

from __future__ import annotations

import sys

import benchlib as b


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
        print(f"target ≤ 0.60x swaks: {r:.2f}x — {'met' if r <= 0.6 else 'NOT met'}")
    r = ours.median / by_name["smtplib script"].median
    print(f"target faster than the smtplib script: {r:.2f}x — {'met' if r < 1 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
