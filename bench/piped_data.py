"""Benchmark (e): a big message piped on stdin after DATA (the telnet way), 40 MB and 400 MB.

``cat commands message.eml end | smtpshell --starttls --auth plain ... HOST PORT``:
MAIL, RCPT and DATA, then the message itself on stdin, then "." and QUIT; batch mode
streams the lines after the 354 in chunks.  The peer is curl with ``--upload-file``
of the same message, in the same run; ``/send FILE`` is shown for reference.  The server
is bench/sink_server.py (STARTTLS, AUTH PLAIN; bodies discarded).

    python bench/piped_data.py [--runs 5] [--sizes 40,400]

Wall time from spawn to exit (``cat`` and the shell together); peak RSS of the largest
process (the shell; ``cat`` is tiny), from GNU time.
Targets (issue 16): within 1.2x curl; peak RSS under 60 MB and flat.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import benchlib as b
from big_data import MB, make_message


def piped(python: str, server: b.Server, user: str, password: str, parts: list[Path],
          name: str) -> b.Subject:
    """``cat PARTS | smtpshell ...``: the shell reads a pipe, as with a real ``cat``."""
    shell = b.smtpshell_batch(python, server, user, password, parts[0], name=name)
    script = (f"cat {' '.join(shlex.quote(str(p)) for p in parts)} | "
              f"exec {shlex.join(shell.cmd)}")
    return b.Subject(name, ["sh", "-c", script], env=shell.env, check=shell.check)


FLOOR = "smtpshell, 1 kB message piped (the fixed cost)"


def main() -> int:
    p = b.common_parser(__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--sizes", default="40,400", help="message sizes in MB (default 40,400)")
    p.add_argument("--no-send", action="store_true", help="leave out the /send FILE row")
    p.add_argument("--no-floor", action="store_true",
                   help="leave out the row of a 1 kB message piped the same way (what every "
                   "run pays before the body: start-up, TLS, AUTH, MAIL, RCPT, DATA, QUIT)")
    args = p.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    results: list[tuple[int, list[b.Subject]]] = []
    with b.workdir_from_args(args) as work, b.server_from_args(args, work, "sink") as server:
        b.header("a message piped on stdin after DATA, over STARTTLS (sink server)", server,
                 args.python)
        head = b.write_commands(work / "head.txt",
                                [f"MAIL FROM:<{b.FROM}>", f"RCPT TO:<{b.TO}>", "DATA"])
        tail = b.write_commands(work / "tail.txt", [".", "QUIT"])
        small = work / "piped-1kB.eml"
        small.write_bytes(f"From: <{b.FROM}>\r\nTo: <{b.TO}>\r\nSubject: small\r\n\r\n"
                          .encode() + b"a line of text in a small message\r\n" * 25)
        for size in sizes:
            message = make_message(work / f"piped-{size}MB.eml", size * MB, lone_dot=False)
            subjects = [piped(args.python, server, args.user, args.password,
                              [head, message, tail], "smtpshell, message piped after DATA")]
            if b.have("curl"):
                subjects.append(b.curl(server, args.user, args.password, message))
            if not args.no_floor:
                subjects.append(piped(args.python, server, args.user, args.password,
                                      [head, small, tail], FLOOR))
            if not args.no_send:
                commands = b.write_commands(work / f"send-{size}.txt", [
                    f"MAIL FROM:<{b.FROM}>", f"RCPT TO:<{b.TO}>", f"/send {message}", "QUIT"])
                subjects.append(b.smtpshell_batch(args.python, server, args.user,
                                                  args.password, commands,
                                                  name="smtpshell /send FILE (reference)"))
            print(f"measuring {size} MB ...", file=sys.stderr, flush=True)
            b.measure(subjects, args.runs, args.warmup, work)
            results.append((size, subjects))
    print(f"{args.runs} runs each, interleaved; medians of wall time and of peak RSS\n")
    rows = []
    for size, subjects in results:
        ours = subjects[0]
        for s in subjects:
            rows.append([f"{size} MB", s.name, f"{s.median:.3f}", f"{s.rss_mb:.1f}",
                         f"{size * MB / s.median / MB:.0f}" if s.name != FLOOR else "-",
                         "1.00x" if s is ours else b.ratio(ours.median, s.median)])
        curl = next((s for s in subjects if s.name == "curl"), None)
        if curl is not None:
            r = ours.median / curl.median
            print(f"{size} MB piped: smtpshell {r:.2f}x curl's wall time (target ≤ 1.20x: "
                  f"{'met' if r <= 1.2 else 'NOT met'}); peak RSS {ours.rss_mb:.1f} MB "
                  f"(target < 60: {'met' if ours.rss_mb < 60 else 'NOT met'})")
            floor = next((s for s in subjects if s.name == FLOOR), None)
            if floor is not None:
                print(f"  of which the 1 kB run's {floor.median:.3f} s (start-up, TLS, AUTH, "
                      f"the commands) is {floor.median / curl.median:.2f}x curl's time; the "
                      f"body itself {(ours.median - floor.median) / curl.median:.2f}x")
    print()
    print(b.table(rows, ["message", "client", "median s", "peak RSS MB", "MB/s",
                         "smtpshell ÷ client"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
