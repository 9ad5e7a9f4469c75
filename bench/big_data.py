"""Benchmark (b): a big message over STARTTLS: wall time and peak RSS, 40 MB and 400 MB.

smtpshell in batch mode streams the file with ``/send FILE`` (CRLF normalisation and
dot-stuffing chunk by chunk); curl uploads it with ``--upload-file``; swaks reads it
with ``--data @FILE``; the smtplib script reads it whole; ``openssl s_client`` gets the
session prepared (dot-stuffed) in advance.  The server is bench/sink_server.py, which
discards the body, so the client is what is measured.

    python bench/big_data.py [--runs 5] [--sizes 40,400] [--all-peers]

Peak RSS is each process's own maximum resident set (``os.wait4``).  At 400 MB only
smtpshell and curl run unless ``--all-peers`` (swaks alone then needs about 3 GB).
Targets (issue 8): wall time within 1.2x curl; peak RSS under 60 MB at any size.
"""

from __future__ import annotations

import base64
import random
import sys
from pathlib import Path

import benchlib as b

MB = 1000 * 1000


def make_message(path: Path, size: int, *, lone_dot: bool = True) -> Path:
    """A MIME message of ``size`` bytes, CRLF line endings, 76-character base64 lines,
    with a text part whose lines need dot-stuffing (and a lone "." line unless
    ``lone_dot`` is false: piped after DATA, that line would end the message)."""
    if path.exists() and path.stat().st_size >= size:
        return path
    rnd = random.Random(8)
    block = base64.encodebytes(rnd.randbytes(57 * 4096)).replace(b"\n", b"\r\n")
    with open(path, "wb") as f:
        dot = ".\r\n" if lone_dot else ""
        f.write(f"From: <{b.FROM}>\r\nTo: <{b.TO}>\r\nSubject: big message\r\n"
                "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
                "--b1\r\nContent-Type: text/plain\r\n\r\nLines that need dot-stuffing:\r\n"
                f".one dot\r\n..two dots\r\n{dot}--b1\r\n"
                "Content-Type: application/octet-stream\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n".encode())
        while f.tell() < size:
            f.write(block)
        f.write(b"--b1--\r\n")
    return path


def main() -> int:
    p = b.common_parser(__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--sizes", default="40,400", help="message sizes in MB (default 40,400)")
    p.add_argument("--all-peers", action="store_true",
                   help="run swaks, smtplib and openssl at every size, not only the first")
    args = p.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    results: list[tuple[int, list[b.Subject]]] = []
    with b.workdir_from_args(args) as work, b.server_from_args(args, work, "sink") as server:
        b.header("big DATA over STARTTLS (sink server: bodies discarded)", server, args.python)
        for i, size in enumerate(sizes):
            message = make_message(work / f"big-{size}MB.eml", size * MB)
            commands = b.write_commands(work / f"send-{size}.txt", [
                f"MAIL FROM:<{b.FROM}>", f"RCPT TO:<{b.TO}>", f"/send {message}", "QUIT"])
            subjects = [b.smtpshell_batch(args.python, server, args.user, args.password,
                                          commands)]
            if b.have("curl"):
                subjects.append(b.curl(server, args.user, args.password, message))
            if i == 0 or args.all_peers:
                if b.have("swaks"):
                    subjects.append(b.swaks(server, args.user, args.password, message))
                subjects.append(b.smtplib_script(args.python, server, args.user,
                                                 args.password, message))
                if b.have("openssl"):
                    session = b.openssl_session(work / f"openssl-{size}.txt", args.user,
                                                args.password, message)
                    subjects.append(b.openssl(server, session))
            print(f"measuring {size} MB ...", file=sys.stderr, flush=True)
            b.measure(subjects, args.runs, args.warmup, work)
            for s in subjects:
                if s.name.startswith("openssl"):
                    s.name += " (session prepared in advance)"
            results.append((size, subjects))
    print(f"{args.runs} runs each, interleaved; medians of wall time and of peak RSS\n")
    rows = []
    for size, subjects in results:
        ours = subjects[0]
        curl = next((s for s in subjects if s.name == "curl"), None)
        for s in subjects:
            rows.append([f"{size} MB", s.name, f"{s.median:.3f}", f"{s.rss_mb:.1f}",
                         f"{size * MB / s.median / MB:.0f}",
                         "1.00x" if s is ours else b.ratio(ours.median, s.median)])
        if curl is not None:
            r = ours.median / curl.median
            print(f"{size} MB: smtpshell {r:.2f}x curl's wall time (target ≤ 1.20x: "
                  f"{'met' if r <= 1.2 else 'NOT met'}); peak RSS {ours.rss_mb:.1f} MB "
                  f"(target < 60: {'met' if ours.rss_mb < 60 else 'NOT met'})")
    print()
    print(b.table(rows, ["message", "client", "median s", "peak RSS MB", "MB/s",
                         "smtpshell ÷ client"]))
    if len(results) > 1:
        first, last = results[0][1][0], results[-1][1][0]
        print(f"\nsmtpshell peak RSS: {first.rss_mb:.1f} MB at {results[0][0]} MB, "
              f"{last.rss_mb:.1f} MB at {results[-1][0]} MB (flat: the file is streamed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
