"""What a batch run loads (issue 16): start-up pays only for the path it takes.

A whole batch transaction (STARTTLS, AUTH PLAIN, a message piped after DATA, QUIT) runs
in a subprocess, which then lists ``sys.modules``.  Not timed: which modules are loaded
is what the start-up work follows, and it does not depend on the machine.
It also names the dataclasses loaded whose docstring ``dataclasses`` had to build at
import with ``inspect.signature`` (none should be).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from smtpshell.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, Sandbox

SCRIPT = """\
import sys
from smtpshell.cli import main
status = main(sys.argv[1:])
print("STATUS", int(status), file=sys.stderr)
print("MODULES", sorted(sys.modules), file=sys.stderr)
import dataclasses
print("AUTODOC", sorted(
    f"{name}.{cls.__name__}" for name, module in list(sys.modules.items())
    if name.startswith("smtpshell") for cls in list(vars(module).values())
    if isinstance(cls, type) and cls.__module__ == name and dataclasses.is_dataclass(cls)
    and (cls.__doc__ or "").startswith(cls.__name__ + "(")), file=sys.stderr)
"""

NOT_ON_THE_BATCH_PATH = {
    # the REPL's toolkit and highlighter
    "prompt_toolkit", "pygments", "wcwidth",
    "smtpshell.ui.app", "smtpshell.ui.completer", "smtpshell.ui.completion_engine",
    "smtpshell.ui.lexer", "smtpshell.ui.terminal", "smtpshell.ui.toolbar",
    # DNS checks (MX, DANE, MTA-STS) load dnspython when asked, never at start-up
    "dns", "smtpshell.mailsec",
    # a verified certificate is reported from what ssl decoded
    "cryptography",
    # /msg, /send's argument parsing, profiles, JSON of XOAUTH2 errors
    "email", "shlex", "tomllib", "json", "smtpshell.config",
    # transcripts: only with --record or /record
    "smtpshell.transcript.recorder", "smtpshell.transcript.writer",
    "smtpshell.transcript.syntax", "smtpshell.transcript.replay",
    "smtpshell.transcript.mock",
    # /explain's tables; the IDNA codec for an ASCII host name or an address (ssl would
    # load it for a str server_hostname)
    "smtpshell.explain.lookup", "encodings.idna", "stringprep",
    # other sub-commands
    "smtpshell.sandbox", "aiosmtpd", "trustme",
}


def _report(sandbox: Sandbox, tmp_path: Path) -> dict[str, list[str]]:
    """Run a batch transaction; its ``MODULES`` and ``AUTODOC`` lists, by name."""
    stdin = tmp_path / "stdin.txt"
    stdin.write_bytes(b"MAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\nDATA\n"
                      b"Subject: footprint\n\n.a dotted line\nbody\n.\nQUIT\n")
    with open(stdin, "rb") as f:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, "--starttls", "--cafile", str(sandbox.ca_file),
             "--auth", "plain", "--user", DEFAULT_USER, "--password-env", "FOOTPRINT_PW",
             sandbox.host, str(sandbox.port)],
            stdin=f, capture_output=True, timeout=60, cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1", "FOOTPRINT_PW": DEFAULT_PASSWORD},
        )
    report = done.stderr.decode()
    assert "STATUS 0" in report, report + done.stdout.decode()
    assert "250" in done.stdout.decode()
    lists = {}
    for key in ("MODULES", "AUTODOC"):
        line = next(x for x in report.splitlines() if x.startswith(key + " "))
        lists[key] = ast.literal_eval(line.removeprefix(key + " "))
    return lists


def test_a_batch_transaction_loads_only_what_its_path_needs(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    report = _report(sandbox, tmp_path)
    loaded = set(report["MODULES"])
    assert "smtpshell.ui.batch" in loaded and "ssl" in loaded  # it did run the path
    unexpected = sorted(m for m in loaded
                        if m in NOT_ON_THE_BATCH_PATH or m.split(".")[0] in NOT_ON_THE_BATCH_PATH)
    assert unexpected == []
    # dataclasses makes a missing docstring from inspect.signature(cls), which costs
    # more than the rest of a small class's creation on Python 3.11: every dataclass
    # loaded on the batch path carries one of its own
    assert report["AUTODOC"] == []

