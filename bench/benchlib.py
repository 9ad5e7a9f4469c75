"""Shared parts of the benchmarks: servers, timed runs, medians, the figures table.

Every benchmark runs the client as a separate process and times the whole process
(wall clock from spawn to exit; peak RSS from ``os.wait4``).  The server runs in its
own process too: ``smtpshell sandbox`` (aiosmtpd) or ``bench/sink_server.py`` (a
minimal sink that discards messages), or whatever ``--server HOST:PORT`` names.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_PYTHON = BENCH / ".venv" / "bin" / "python"
USER = "demo"
PASSWORD = "demo-password"
FROM = "bench@example.org"
TO = "sink@example.org"


# ---- the interpreter and the programs -----------------------------------------------
def default_python() -> str:
    """bench/.venv (made by bench/setup.sh: a plain install, no editable-finder hook)."""
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


def smtpshell_command(python: str) -> list[str]:
    """The console script next to ``python`` (what a user runs), else ``python -m``."""
    script = Path(python).parent / "smtpshell"
    if script.exists():
        return [str(script)]
    return [python, "-m", "smtpshell"]


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


# ---- servers ---------------------------------------------------------------------------
@dataclass
class Server:
    host: str
    port: int
    cafile: str | None
    kind: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _read_until(proc: subprocess.Popen[bytes], pattern: str, timeout: float = 30.0) -> str:
    """Read the server's stdout until ``pattern`` matches (readiness, not a sleep)."""
    assert proc.stdout is not None
    text = ""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while not re.search(pattern, text):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise SystemExit(f"bench: the server did not start:\n{text}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise SystemExit(f"bench: the server ended:\n{text}")
            text += chunk.decode("utf-8", "replace")
    return text


@contextlib.contextmanager
def local_server(kind: str, python: str, workdir: Path) -> Iterator[Server]:
    """Start ``sandbox`` (aiosmtpd) or ``sink`` in its own process; stop it afterwards."""
    if kind == "sandbox":
        cmd = [python, "-m", "smtpshell", "sandbox", "--port", "0", "--tls-port", "0",
               "--dir", str(workdir / "sandbox")]
        ready = r"Ready\."
    else:
        cmd = [python, str(BENCH / "sink_server.py"), "--port", "0",
               "--dir", str(workdir / "sink")]
        ready = r"ready"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        banner = _read_until(proc, ready)
        if kind == "sandbox":
            m = re.search(r"SMTP \+ STARTTLS\s+(\S+):(\d+)", banner)
            ca = re.search(r"CA certificate\s+(\S+)", banner)
        else:
            m = re.search(r"listening (\S+):(\d+)", banner)
            ca = re.search(r"ca (\S+)", banner)
        if m is None or ca is None:
            raise SystemExit(f"bench: cannot read the server's banner:\n{banner}")
        # The server's further output goes nowhere (it must never block on a full pipe).
        threading_drain(proc)
        yield Server(m.group(1), int(m.group(2)), ca.group(1), kind, proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def threading_drain(proc: subprocess.Popen[bytes]) -> None:
    import threading

    def drain() -> None:
        assert proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            while proc.stdout.read(65536):
                pass

    threading.Thread(target=drain, daemon=True).start()


@contextlib.contextmanager
def server_from_args(args: argparse.Namespace, workdir: Path, kind: str) -> Iterator[Server]:
    if args.server:
        host, _, port = args.server.rpartition(":")
        yield Server(host.strip("[]"), int(port), args.cafile, "given")
        return
    with local_server(kind, args.python, workdir) as server:
        yield server


# ---- timed runs ------------------------------------------------------------------------
@dataclass
class Run:
    seconds: float
    maxrss_kb: int
    status: int


@dataclass
class Subject:
    """One program measured: its name, command, stdin file and environment."""

    name: str
    cmd: Sequence[str]
    stdin: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    check: str | None = None
    """A regex its stdout must match (the transaction really succeeded)."""
    runs: list[Run] = field(default_factory=list)
    reference: bool = False
    """A floor shown for context (``python -c pass``), not a peer."""

    @property
    def median(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def rss_mb(self) -> float:
        return statistics.median(r.maxrss_kb for r in self.runs) / 1024


TIME = "/usr/bin/time"


def run_once(subject: Subject, out: Path) -> Run:
    """Spawn, wait, time; stdout goes to ``out`` (checked, then reused).

    Peak RSS comes from GNU time when it is there: a child forked straight from this
    Python process starts its life with the parent's resident pages counted in its own
    maximum (vfork/exec keep the high-water mark), a child of ``time`` does not.
    """
    env = dict(os.environ)
    env.update(subject.env)
    rss_file = out.with_suffix(".rss")
    cmd = list(subject.cmd)
    if os.path.exists(TIME):
        cmd = [TIME, "-q", "-f", "%M", "-o", str(rss_file), *cmd]
    stdin = open(subject.stdin, "rb") if subject.stdin else subprocess.DEVNULL
    try:
        with open(out, "wb") as sink:
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, stdin=stdin, stdout=sink,
                                    stderr=subprocess.STDOUT, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if not isinstance(stdin, int):
            stdin.close()
    text = out.read_text("utf-8", "replace")
    if proc.returncode != 0 or (subject.check and not re.search(subject.check, text)):
        raise SystemExit(f"bench: {subject.name} failed (exit {proc.returncode}):\n"
                         f"$ {' '.join(subject.cmd)}\n{text[-3000:]}")
    maxrss = usage.ru_maxrss
    if cmd[0] == TIME:
        with contextlib.suppress(OSError, ValueError):
            maxrss = int(rss_file.read_text().split()[-1])
    return Run(elapsed, maxrss, proc.returncode)


def measure(subjects: Sequence[Subject], runs: int, warmup: int, workdir: Path) -> None:
    """Interleave the subjects run by run, so a noisy moment hits them all alike."""
    out = workdir / "last-output.txt"
    progress = sys.stderr.isatty()
    for _ in range(warmup):
        for s in subjects:
            run_once(s, out)
    for i in range(runs):
        for s in subjects:
            s.runs.append(run_once(s, out))
        if progress:
            print(f"  run {i + 1}/{runs} done", file=sys.stderr, end="\r", flush=True)
    if progress:
        print(" " * 30, file=sys.stderr, end="\r")


def compile_package(python: str) -> None:
    """Byte-compile smtpshell, as an installed package is (pip compiles at install).

    Without it an editable checkout run with PYTHONDONTWRITEBYTECODE=1 (as here)
    compiles every module from source on every start, which is not what users run.
    """
    subprocess.run([python, "-m", "compileall", "-q", str(REPO / "smtpshell")], check=True,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})


# ---- reporting -------------------------------------------------------------------------
def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in rows]
    return "\n".join([line, sep, *body])


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs > 0 else "-"


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    return f"{os.cpu_count()} CPUs ({cpu}){mem}, {time.strftime('%Y-%m-%d')}"


def common_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--server", metavar="HOST:PORT",
                   help="measure against this server (default: start a local one)")
    p.add_argument("--cafile", metavar="PEM", help="CA of --server's certificate")
    p.add_argument("--user", default=USER, help=f"AUTH PLAIN user (default {USER})")
    p.add_argument("--password", default=PASSWORD, help="AUTH PLAIN password")
    p.add_argument("--python", default=default_python(),
                   help="interpreter for smtpshell and the smtplib peer "
                   "(default: bench/.venv if bench/setup.sh made it)")
    p.add_argument("--workdir", metavar="DIR",
                   help="keep generated files here (default: a temporary directory)")
    return p


@contextlib.contextmanager
def workdir_from_args(args: argparse.Namespace) -> Iterator[Path]:
    if args.workdir:
        path = Path(args.workdir)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="smtpshell-bench-") as tmp:
        yield Path(tmp)


def header(title: str, server: Server, python: str) -> None:
    compile_package(python)
    print(f"# {title}")
    print(f"machine: {machine()}")
    print(f"server:  {server.address} ({server.kind}); interpreter: {python}")


# ---- the peers' command lines ------------------------------------------------------------
PASSWORD_ENV = "SMTPSHELL_BENCH_PASSWORD"


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def smtpshell_batch(python: str, server: Server, user: str, password: str, commands: Path,
                    name: str = "smtpshell") -> Subject:
    """``smtpshell --starttls --auth plain ... < commands``: the non-interactive client."""
    tls = ["--cafile", server.cafile] if server.cafile else ["--insecure"]
    cmd = [*smtpshell_command(python), "--starttls", "--auth", "plain", "--user", user,
           "--password-env", PASSWORD_ENV, *tls, server.host, str(server.port)]
    return Subject(name, cmd, stdin=commands, env={PASSWORD_ENV: password, "NO_COLOR": "1"},
                   check=r"~> \.\n<~ 250")


def write_commands(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def curl(server: Server, user: str, password: str, message: Path) -> Subject:
    tls = ["--cacert", server.cafile] if server.cafile else ["--insecure"]
    cmd = ["curl", "-sS", "--ssl-reqd", *tls, "--mail-from", FROM, "--mail-rcpt", TO,
           "--upload-file", str(message), "--user", f"{user}:{password}",
           "--login-options", "AUTH=PLAIN", f"smtp://{server.address}"]
    return Subject("curl", cmd)


def swaks(server: Server, user: str, password: str, message: Path) -> Subject:
    tls = ["--tls-verify", "--tls-ca-path", server.cafile] if server.cafile else []
    cmd = ["swaks", "--server", server.address, "--tls", *tls, "--auth", "PLAIN",
           "--auth-user", user, "--auth-password", password, "--from", FROM, "--to", TO,
           "--data", f"@{message}", "--suppress-data"]
    return Subject("swaks", cmd, check=r"<~  250 ")


def smtplib_script(python: str, server: Server, user: str, password: str,
                   message: Path) -> Subject:
    cmd = [python, str(BENCH / "peers" / "smtplib_send.py"), server.host, str(server.port),
           server.cafile or "", user, password, str(message), FROM, TO]
    return Subject("smtplib script", cmd)


def openssl_session(path: Path, user: str, password: str, message: Path) -> Path:
    """What ``openssl s_client`` sends after its STARTTLS: everything at once.

    s_client cannot wait for replies, dot-stuff or authenticate, so the whole session
    (message dot-stuffed here, untimed) is prepared in advance and sent blind.
    """
    import base64

    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    head = (f"EHLO bench.client\r\nAUTH PLAIN {token}\r\nMAIL FROM:<{FROM}>\r\n"
            f"RCPT TO:<{TO}>\r\nDATA\r\n").encode()
    with open(message, "rb") as src, open(path, "wb") as dst:
        dst.write(head)
        line = b"\r\n"
        for line in src:  # streamed: this process must stay small (see run_once)
            dst.write(b"." + line if line.startswith(b".") else line)
        dst.write(b"" if line.endswith(b"\n") else b"\r\n")
        dst.write(b".\r\nQUIT\r\n")
    return path


def openssl(server: Server, session: Path) -> Subject:
    tls = ["-CAfile", server.cafile, "-verify_return_error"] if server.cafile else []
    if server.cafile:
        tls += ["-verify_ip" if _is_ip(server.host) else "-verify_hostname", server.host]
    cmd = ["openssl", "s_client", "-starttls", "smtp", "-connect", server.address, "-quiet",
           *tls]
    return Subject("openssl s_client (blind)", cmd, stdin=session, check=r"354[^\n]*\n250 ")


def reference(python: str, code: str) -> Subject:
    return Subject(f"python -c {code!r}", [python, "-c", code], reference=True)
