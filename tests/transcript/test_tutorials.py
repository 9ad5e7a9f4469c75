"""docs/transcripts.md's two tutorials, run as a reader would follow them.

The tutorial's code blocks are marked with ``<!-- tutorial: NAME -->`` on the line before
(or before the `file name`: caption); these tests take exactly those blocks from the guide and
run them: the recording command against a real sandbox, the mock command and curl, swaks
and msmtp as real processes on 127.0.0.1, the pytest example through pytester, the
transcript snippets through the reader and, where they describe a server, served by the mock.
If the guide's text goes wrong (an annotation removed, a command changed, a report that no
longer matches what the tools say), a test here fails.
"""

from __future__ import annotations

import ast
import asyncio
import difflib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from smtpshell.sandbox import Sandbox
from smtpshell.transcript.mock import MockResult, MockServer
from smtpshell.transcript.syntax import parse

pytest_plugins = ["pytester"]

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "transcripts.md"
_BLOCK = re.compile(
    r"^<!-- tutorial: (?P<name>[\w.-]+) -->\n(?:`[^`\n]+`:\n\n)?```\w*\n(?P<body>.*?)^```$",
    re.MULTILINE | re.DOTALL)
_TABLE = re.compile(r"^<!-- tutorial: (?P<name>[\w.-]+) -->\n(?P<body>(?:\|.*\n)+)",
                    re.MULTILINE)
DOC_PORT = "2525"  # the port the guide's mock commands use


def blocks() -> dict[str, str]:
    """The guide's marked code blocks, by name (each name once)."""
    found: dict[str, str] = {}
    for m in _BLOCK.finditer(GUIDE.read_text()):
        assert m["name"] not in found, f"two tutorial blocks named {m['name']}"
        found[m["name"]] = m["body"]
    return found


def block(name: str) -> str:
    found = blocks()
    assert name in found, f"docs/transcripts.md has no tutorial block {name!r}"
    return found[name]


def table(name: str) -> list[list[str]]:
    """A marked table's rows (header and separator left out), cells stripped."""
    m = next((m for m in _TABLE.finditer(GUIDE.read_text()) if m["name"] == name), None)
    assert m is not None, f"docs/transcripts.md has no tutorial table {name!r}"
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in m["body"].splitlines()]
    return rows[2:]


_BIN: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def smtpshell_on_path(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``smtpshell`` in the guide's commands is this interpreter's (a run on 3.13 runs the
    commands with 3.13), whether or not its environment has the console script."""
    bin_dir = tmp_path_factory.mktemp("bin")
    script = bin_dir / "smtpshell"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m smtpshell "$@"\n')
    script.chmod(0o755)
    _BIN[:] = [bin_dir]


def shell_env() -> dict[str, str]:
    """The environment a reader's shell has: smtpshell on PATH."""
    env = dict(os.environ)
    env["PATH"] = str(_BIN[0]) + os.pathsep + env.get("PATH", "")
    # the smtpshell of this checkout, installed or not
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(GUIDE.parents[1]),
                                                      env.get("PYTHONPATH")]))
    return env


def needs(program: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed: the guide's {program} step needs it")


# --------------------------------------------------------------------------- the mock


@pytest.fixture(scope="module")
def mock_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    """A CA for the mock's certificate, and its PEM file for the clients."""
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("mock-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


def serve(text: str, client: Callable[[int], object], ca: trustme.CA | None,
          env: dict[str, str], source: str = "welcome.smtp") -> tuple[object, MockResult]:
    """Serve ``text`` with the mock on 127.0.0.1; run the blocking ``client(port)``; return
    what it returned (or raised) and the mock's result for the one connection."""
    import ssl

    context = None
    if ca is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    transcript = parse(text, source=source)

    async def main() -> tuple[object, MockResult]:
        async with MockServer(transcript, ssl_context=context, timeout=10,
                              env=env) as srv:
            try:
                outcome: object = await asyncio.to_thread(client, srv.port)
            except Exception as exc:
                outcome = exc
            results = await asyncio.wait_for(srv.wait(1), 10)
            return outcome, results[0]

    return asyncio.run(main())


def run_shell(command: str, port: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    """One of the guide's shell commands, pointed at ``port`` instead of the guide's."""
    assert DOC_PORT in command, command
    return subprocess.run(["bash", "-c", command.replace(DOC_PORT, str(port))], cwd=cwd,
                          env=shell_env(), capture_output=True, text=True, timeout=60)


class MockProcess:
    """The guide's ``smtpshell mock`` command line, run as the reader runs it (on port 0)."""

    def __init__(self, command: str, cwd: Path) -> None:
        command = command.strip().removesuffix("&").strip()
        assert f"--port {DOC_PORT}" in command, command
        self.proc = subprocess.Popen(
            ["bash", "-c", "exec env " + command.replace(f"--port {DOC_PORT}", "--port 0")],
            cwd=cwd, env=shell_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        assert self.proc.stdout is not None
        self.head: list[str] = []
        for line in self.proc.stdout:  # the mock says where it serves, then that it waits
            self.head.append(line)
            if "waiting for" in line:
                break
        found = re.search(r" on 127\.0\.0\.1:(\d+) ", "".join(self.head))
        assert found is not None, "".join(self.head)
        self.port = int(found[1])

    def finish(self) -> tuple[int, str]:
        out, _ = self.proc.communicate(timeout=30)
        return self.proc.returncode, "".join(self.head) + out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def mock_process(tmp_path: Path) -> Iterator[Callable[[str], MockProcess]]:
    started: list[MockProcess] = []

    def start(transcript: str) -> MockProcess:
        (tmp_path / "welcome.smtp").write_text(transcript)
        (tmp_path / "message.txt").write_text(block("message.txt"))
        started.append(MockProcess(block("mock-command"), tmp_path))
        return started[-1]

    yield start
    for mock in started:
        mock.kill()


def report_lines(text: str) -> list[str]:
    """A report from the guide as fnmatch patterns: the client's port varies."""
    return [re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:*", line) for line in text.splitlines()]


def assert_report_in(report: str, output: str) -> None:
    """The guide's report lines appear in the tool's output, in order, as consecutive lines."""
    import fnmatch

    want = report_lines(report)
    got = output.splitlines()
    for start in range(len(got)):
        if all(start + k < len(got) and fnmatch.fnmatchcase(got[start + k], w)
               for k, w in enumerate(want)):
            return
    raise AssertionError("the guide's report\n" + report + "\nis not in the output\n" + output)


# --------------------------------------------------------------------------- tutorial 1


CLOSED_BY_SERVER = '== closed by=server reason="connection closed by server"\n'


def test_the_recording_is_what_the_guides_commands_record(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Step 1 as a reader runs it (against this test's sandbox): the file it writes is the
    guide's recorded transcript, apart from what changes every run."""
    script = block("record-commands")
    lines = script.splitlines()
    assert lines[0].startswith("smtpshell sandbox --port 2526 --tls-port 4651 --dir /tmp/sbx")
    commands = "\n".join(lines[1:]).replace("127.0.0.1:2526", f"127.0.0.1:{sandbox.port}")
    commands = commands.replace("/tmp/sbx/ca.pem", str(sandbox.ca_file))
    commands = commands.replace("demo-password", sandbox.password)
    done = subprocess.run(["bash", "-c", commands], cwd=tmp_path, env=shell_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr

    def volatile(text: str) -> str:
        text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
        text = re.sub(r"(?m)^recorded: .*$", "recorded: T", text)
        text = re.sub(r"cert-sha256=[0-9A-F:]+", "cert-sha256=X", text)
        return re.sub(r"queued as \S+", "queued as Q", text)

    assert block("recorded").endswith(CLOSED_BY_SERVER)
    assert volatile((tmp_path / "welcome.smtp").read_text()) == volatile(block("recorded")), (
        done.stdout + done.stderr)


def test_the_recording_replays_against_the_sandbox(sandbox: Sandbox, tmp_path: Path) -> None:
    """The guide says the unedited recording replays as it is: a test of the server."""
    import io

    from smtpshell.cli import main
    from smtpshell.context import Environment

    path = tmp_path / "welcome.smtp"
    path.write_text(block("recorded"))
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=err,
                      environ={"SMTPSHELL_PASSWORD": sandbox.password},
                      stdin_isatty=False, stdout_isatty=False)
    status = main(["replay", "--server", f"127.0.0.1:{sandbox.port}", "--cafile",
                   str(sandbox.ca_file), str(path)], env)
    assert status == 0, out.getvalue() + err.getvalue()


def test_the_edits_are_the_diff_between_the_recording_and_the_final_file() -> None:
    found = blocks()
    diff = "".join(difflib.unified_diff(
        found["recorded"].splitlines(True), found["welcome.smtp"].splitlines(True),
        "welcome.smtp (as recorded)", "welcome.smtp (for the mock)", n=1))
    assert found["edits"] == diff


def test_curl_against_the_recording_gets_the_guides_report(
    mock_process: Callable[[str], MockProcess], tmp_path: Path
) -> None:
    needs("curl")
    mock = mock_process(block("recorded"))
    done = run_shell(block("curl-command"), mock.port, tmp_path)
    status, output = mock.finish()
    said = re.search(r"curl fails \(`(curl: \(\d+\) [^`]*)`", GUIDE.read_text())
    assert said is not None
    assert done.returncode != 0 and said[1] in done.stderr, done.stderr
    assert status == 1, output
    assert_report_in(block("first-report"), output)


@pytest.mark.parametrize("client", ["curl", "swaks", "msmtp"])
def test_the_edited_file_serves_the_command_line_clients(
    mock_process: Callable[[str], MockProcess], tmp_path: Path, client: str
) -> None:
    """Steps 2 and 4 with the edited file: the guide's own mock command and client command;
    the client succeeds and the mock says it followed the transcript (exit 0)."""
    needs(client)
    mock = mock_process(block("welcome.smtp"))
    done = run_shell(block(f"{client}-command"), mock.port, tmp_path)
    status, output = mock.finish()
    assert done.returncode == 0, done.stdout + done.stderr + output
    assert status == 0, output
    assert_report_in(block("ok-report"), output)


def test_curl_without_crlf_is_shown_as_the_guide_says(
    mock_process: Callable[[str], MockProcess], tmp_path: Path
) -> None:
    """The guide's reason for --crlf: without it the message arrives with bare LFs."""
    needs("curl")
    command = block("curl-command")
    assert " --crlf" in command
    mock = mock_process(block("welcome.smtp"))
    run_shell(command.replace(" --crlf", ""), mock.port, tmp_path)
    status, output = mock.finish()
    assert status == 1
    assert "the client did not send these lines (it sent these instead)" in " ".join(
        GUIDE.read_text().split())
    assert "the client did not send these lines (it sent these instead)" in output
    assert "Subject: Welcome, Alice\\n" in output


def smtplib_client(ca_file: Path) -> Callable[[int], object]:
    """The guide's own ``send_welcome`` (from test_welcome.py), pointed at a port."""
    namespace: dict[str, object] = {}
    exec(compile(block("test_welcome.py"), "test_welcome.py", "exec"), namespace)
    send = namespace["send_welcome"]
    assert callable(send)
    return lambda port: send("127.0.0.1", port, str(ca_file), "s3cret")


# How to undo each edit of the guide's table, by the table's first column.
UNDO: dict[str, Callable[[str], str]] = {
    "`EHLO {{host:client.smtpshell.test}}` (both EHLO lines)": lambda t: t.replace(
        "EHLO {{host:client.smtpshell.test}}", "EHLO client.smtpshell.test"),
    "`250-AUTH LOGIN PLAIN` (CRAM-MD5 no longer offered)": lambda t: t.replace(
        "<~ 250-AUTH LOGIN PLAIN", "<~ 250-AUTH CRAM-MD5 LOGIN PLAIN"),
    "`user=app password=$SMTPSHELL_APP_PASSWORD`": lambda t: t.replace(
        "user=app password=$SMTPSHELL_APP_PASSWORD", "user=demo password=$SMTPSHELL_APP_PASSWORD"),
    "`== skip` for `From:`/`To:`": lambda t: t.replace(
        "== skip\n~> Subject:", "~> From: app@example.org\n~> To: alice@example.org\n"
        "~> Subject:"),
    "`== skip` after `Subject:`": lambda t: t.replace(
        "~> Subject: Welcome, Alice\n== skip\n", "~> Subject: Welcome, Alice\n"),
    "`== skip` before `.`": lambda t: t.replace("ready.\n== skip\n~> .", "ready.\n~> ."),
}
CLIENTS = ("smtplib", "curl", "swaks", "msmtp")


def needed_cells() -> list[tuple[str, str]]:
    return [(row[0], client) for row in table("edits-table")
            for client, cell in zip(CLIENTS, row[1:5], strict=True) if cell == "needed"]


def test_the_edits_table_names_every_edit_and_client() -> None:
    rows = table("edits-table")
    assert [r[0] for r in rows] == list(UNDO)
    assert all(cell in ("needed", "—") for r in rows for cell in r[1:5])
    header = GUIDE.read_text().split("<!-- tutorial: edits-table -->\n", 1)[1].splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")][1:5] == list(CLIENTS)


@pytest.mark.parametrize(("edit", "client"), needed_cells())
def test_each_edit_is_needed_by_the_clients_the_table_names(
    edit: str, client: str, mock_tls: tuple[trustme.CA, Path], tmp_path: Path
) -> None:
    """Undo one edit of the guide's table: a client marked "needed" must then fail to
    follow the transcript (so the table's "why" is not folklore)."""
    ca, ca_file = mock_tls
    text = UNDO[edit](block("welcome.smtp"))
    assert text != block("welcome.smtp"), f"the guide's welcome.smtp no longer has: {edit}"
    if client == "smtplib":
        run: Callable[[int], object] = smtplib_client(ca_file)
    else:
        needs(client)
        shutil.copy(ca_file, tmp_path / "ca.pem")
        (tmp_path / "message.txt").write_text(block("message.txt"))
        command = block(f"{client}-command")

        def run(port: int) -> object:
            return run_shell(command, port, tmp_path)

    _, result = serve(text, run, ca, {"SMTPSHELL_APP_PASSWORD": "s3cret"})
    assert not result.ok, f"{client} follows the transcript without the edit {edit}"


def test_the_smtplib_edited_file_passes_and_needs_only_three_lines_of_pytest(
    mock_tls: tuple[trustme.CA, Path]
) -> None:
    ca, ca_file = mock_tls
    outcome, result = serve(block("welcome.smtp"), smtplib_client(ca_file), ca,
                            {"SMTPSHELL_APP_PASSWORD": "s3cret"})
    assert not isinstance(outcome, Exception), outcome
    assert result.ok, result.render()
    tree = ast.parse(block("test_welcome.py"))
    test = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                and n.name.startswith("test_"))
    assert len(test.body) == 3


def test_the_pytest_example_passes_through_pytester(pytester: pytest.Pytester) -> None:
    tests = pytester.path / "tests"
    tests.mkdir()
    (tests / "welcome.smtp").write_text(block("welcome.smtp"))
    (tests / "test_welcome.py").write_text(block("test_welcome.py"))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-v", "tests")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*tests/test_welcome.py::test_welcome_mail PASSED*"])


@pytest.mark.parametrize("report", ["wrong-password-report", "body-report", "first-report"])
def test_the_reports_shown_name_the_lines_of_the_file_shown(report: str) -> None:
    """Every `file:N:` and `- N line` in a report the guide shows is that line of the
    guide's file (recorded or edited), so the reports stay in step with the files."""
    text = block(report)
    source = block("recorded" if report == "first-report" else "welcome.smtp").splitlines()
    numbered = re.findall(r"^  -\s+(\d+) (.*)$", text, re.MULTILINE)
    assert numbered
    for number, line in numbered:
        assert source[int(number) - 1] == line, (number, line)
    for number in re.findall(r"welcome\.smtp:(\d+):", text):
        assert number in {n for n, _ in numbered}



# --------------------------------------------------------------------------- tutorial 2


def comments_and_texts(transcript: str) -> tuple[str, set[str]]:
    """A transcript's comments (joined) and the texts of its client and server lines."""
    comments, texts = [], set()
    for line in transcript.splitlines():
        if line.startswith("#"):
            comments.append(line)
        elif line[:3] in ("->>", "~>>"):
            texts.add(line[4:])
        elif line[:2] in ("->", "~>", "<-", "<~"):
            texts.add(line[3:].split("  ~")[0])
    return "\n".join(comments), texts


@pytest.mark.parametrize(("script", "translation"), [
    ("exim-client-script", "exim-client.smtp"), ("exim-server-script", "exim-server.smtp"),
    ("exim-flaky-script", "flaky.smtp"), ("exim-bdat-script", "exim-bdat.smtp")])
def test_every_line_of_the_exim_scripts_is_translated(script: str, translation: str) -> None:
    """Each line of the Exim script is a line of the translation or named in a comment
    above its translation, so a reader can follow it line by line."""
    comments, texts = comments_and_texts(block(translation))
    missing = [line for line in block(script).splitlines()
               if line not in texts and line not in comments]
    assert not missing


def test_the_exim_client_translation_passes_against_the_sandbox(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    command = block("exim-client-replay").strip()
    assert "127.0.0.1:2526" in command and "/tmp/sbx/ca.pem" in command
    command = command.replace("127.0.0.1:2526", f"127.0.0.1:{sandbox.port}").replace(
        "/tmp/sbx/ca.pem", str(sandbox.ca_file))
    (tmp_path / "exim-client.smtp").write_text(block("exim-client.smtp"))
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=shell_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS exim-client.smtp" in done.stdout and "PASS exim-client.smtp" in GUIDE.read_text()
    # the guide's "had the server accepted the recipient": replay fails where it says
    (tmp_path / "exim-client.smtp").write_text(
        block("exim-client.smtp").replace("reject@sandbox.test", "alice@example.org"))
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=shell_env(),
                          capture_output=True, text=True, timeout=60)
    said = re.search(r"replay\s+would fail with `([^`]+)`", GUIDE.read_text())
    assert said is not None
    assert done.returncode == 1 and said[1] in done.stdout, done.stdout


def replay_main(path: Path, port: int, environ: dict[str, str] | None = None) -> tuple[int, str]:
    """``smtpshell replay --server 127.0.0.1:PORT PATH``, in this process."""
    import io

    from smtpshell.cli import main
    from smtpshell.context import Environment

    out = io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=out, environ=environ or {},
                      stdin_isatty=False, stdout_isatty=False)
    return int(main(["replay", "--server", f"127.0.0.1:{port}", str(path)], env)), out.getvalue()


def test_the_bdat_translation_replays_against_the_sandbox_with_chunking(tmp_path: Path) -> None:
    from smtpshell.sandbox import SandboxConfig, SandboxThread

    assert "`smtpshell sandbox --port 2530 --chunking`" in GUIDE.read_text()
    path = tmp_path / "exim-bdat.smtp"
    path.write_text(block("exim-bdat.smtp"))
    config = SandboxConfig(port=0, tls_port=0, workdir=tmp_path / "sandbox", chunking=True)
    with SandboxThread(config) as sb:
        status, out = replay_main(path, sb.port)
    assert status == 0, out


def test_the_bdat_translation_served_by_the_mock_compares_the_chunks(tmp_path: Path) -> None:
    """The mock serving the file reads the chunks byte for byte: replay of the same file
    follows it, a client whose first chunk differs gets 'bytes differ'."""
    text = block("exim-bdat.smtp")
    path = tmp_path / "exim-bdat.smtp"
    path.write_text(text)
    (status, out), result = serve(text, lambda port: replay_main(path, port), None, {},
                                  source="exim-bdat.smtp")
    assert status == 0 and result.ok, out + result.render()
    assert "->> To: Susan@\n" in text
    other = tmp_path / "other.smtp"
    other.write_text(text.replace("->> To: Susan@\n", "->> To: Susan#\n"))
    _, result = serve(text, lambda port: replay_main(other, port), None, {},
                      source="exim-bdat.smtp")
    assert not result.ok and "bytes differ" in result.render(), result.render()
    assert "`bytes differ`" in GUIDE.read_text()


def test_the_exim_server_translation_serves_smtplib() -> None:
    import smtplib

    def client(port: int) -> object:
        s = smtplib.SMTP("127.0.0.1", port, timeout=10)
        refused = s.sendmail("someone@example.net", ["else@example.com"],
                             "Subject: hello\r\n\r\nfrom smtplib\r\n")
        s.quit()  # Exim's example answers QUIT with 225, which smtplib's "with" would refuse
        return refused

    outcome, result = serve(block("exim-server.smtp"), client, None, {},
                            source="exim-server.smtp")
    assert outcome == {}, outcome
    assert result.ok, result.render()
    # the guide: the literal translation (Exim's case-sensitive prefix) refuses smtplib
    literal = block("exim-server.smtp").replace("-> MAIL FROM:<{{any:a@example.org}}>",
                                                 "-> MAIL FROM:<a@example.org>  ~glob MAIL FROM*")
    assert literal != block("exim-server.smtp")
    assert "`~glob MAIL FROM*`" in GUIDE.read_text()
    _, result = serve(literal, client, None, {}, source="exim-server.smtp")
    assert not result.ok


def test_the_curl_test_files_lines_are_in_the_translation() -> None:
    """<protocol> and <upload> are the client lines; each REPLY's answer is a server line."""
    curl_test = block("curl-test-file")
    _, texts = comments_and_texts(block("test903.smtp"))

    def section(name: str) -> list[str]:
        found = re.search(rf"<{name}[^>]*>\n(.*?)</{name}>", curl_test, re.DOTALL)
        assert found is not None, name
        return found[1].splitlines()

    protocol = [line.replace("%TESTNUMBER", "903").replace("%LT", "<").replace("%GT", ">")
                for line in section("protocol") if not line.startswith("%b64[")]
    assert all(line in texts for line in protocol + section("upload")), protocol
    for command in section("servercmd"):
        if command.startswith("REPLY "):
            answer = command.split(" ", 2)[2]
            assert answer in texts, answer
    assert "{{secret:plain user=user password=$SMTPSHELL_CURL_PASSWORD}}" in texts


def test_the_curl_test_file_translation_serves_curl(tmp_path: Path) -> None:
    needs("curl")
    mock_line, curl_lines = block("test903-commands").split("\n", 1)
    (tmp_path / "test903.smtp").write_text(block("test903.smtp"))
    mock = MockProcess(mock_line, tmp_path)
    try:
        done = run_shell(curl_lines, mock.port, tmp_path)
        status, output = mock.finish()
    finally:
        mock.kill()
    assert done.returncode == 0, done.stderr + output
    assert status == 0 and "ok, the client followed the transcript" in output, output
    # with the wrong password: 535, curl's exit status 67, the report the guide quotes
    assert "-u user:secret" in curl_lines and "`-u user:wrong`" in GUIDE.read_text()
    mock = MockProcess(mock_line, tmp_path)
    try:
        done = run_shell(curl_lines.replace("-u user:secret", "-u user:wrong"), mock.port,
                         tmp_path)
        status, output = mock.finish()
    finally:
        mock.kill()
    said = re.search(r"reports\s+`(test903\.smtp:\d+: [^`]+)`", GUIDE.read_text())
    assert said is not None
    assert done.returncode == 67 and "curl exits 67" in GUIDE.read_text()
    assert status == 1 and said[1] in output, output
    assert "wrong" not in output


def test_the_fake_server_example_passes_through_pytester(pytester: pytest.Pytester) -> None:
    """The misbehaving server (a drop after the greeting, a pause and a drop in the middle of
    the EHLO reply, then a whole session) against the guide's retrying client."""
    (pytester.path / "flaky.smtp").write_text(block("flaky.smtp"))
    (pytester.path / "test_retries.py").write_text(block("test_retries.py"))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "test_retries.py")
    result.assert_outcomes(passed=1)
    # and the mock's report line the guide quotes, from the command line
    transcript = parse(block("flaky.smtp"), source="flaky.smtp")
    assert sum(1 for e in transcript.entries if getattr(e, "kind", None) == "connect") == 3


def test_the_fake_server_is_served_and_reported_as_the_guide_says(tmp_path: Path) -> None:
    import smtplib

    (tmp_path / "flaky.smtp").write_text(block("flaky.smtp"))
    said = re.search(r"`smtpshell mock flaky\.smtp --port 2525 --once` serves", GUIDE.read_text())
    assert said is not None
    mock = MockProcess("smtpshell mock flaky.smtp --port 2525 --once", tmp_path)
    try:
        for _ in range(3):
            try:
                with smtplib.SMTP("127.0.0.1", mock.port, timeout=5) as s:
                    s.sendmail("a@example.org", ["b@example.org"], "Subject: x\r\n\r\ny\r\n")
            except smtplib.SMTPServerDisconnected:
                pass
        status, output = mock.finish()
    finally:
        mock.kill()
    guide = " ".join(GUIDE.read_text().split())
    quoted = re.search(r"reports each: `([^`]+)` for the first", guide)
    assert quoted is not None
    assert status == 0, output
    assert "connection 1 from 127.0.0.1:" in output and quoted[1] in " ".join(output.split())


FEATURE_STATUS = ("yes", "partly", "not yet")


def test_the_features_table_is_complete_and_its_snippets_parse() -> None:
    rows = table("features-table")
    assert all(len(row) == 3 and row[2] in FEATURE_STATUS for row in rows), rows
    there = " ".join(row[0] for row in rows)
    for feature in ("`??? 250`", "`????250`", "`???*`", "`>>> bytes`", "`<<< FILE`",
                    "`+++ N`", "`starttls`", "`-tls-on-connect`", "`server PORT_S`",
                    "`*sleep N`", "`*eof`", "`>*eof`", "`*data N`", "`*starttls`",
                    "`<servercmd>`", "`REPLYLF`", "`DELAY cmd secs`", "`SLOWDOWN`",
                    "`<protocol", "`<upload>`", "`<strip>`", "`<strippart>`",
                    "`<errorcode>`"):
        assert feature in there, feature
    snippets = [code for row in rows for code in re.findall(r"`([^`]+)`", row[1])
                if re.match(r"(->>?|~>>?|<-|<~|==) ", code)
                and not (code.startswith("==") and "…" in code)]  # "== elided …": a sketch
    assert len(snippets) > 10
    for code in snippets:
        prefix = "== tls via=starttls\n" if code[0] == "~" or code[:2] == "<~" else ""
        text = ("# smtpshell transcript v2\n\n== connect address=127.0.0.1:25 tls=starttls\n"
                + prefix + code.replace("…", "x") + "\n")
        parse(text, source="snippet.smtp")  # raises with a line number if it does not parse


# --------------------------------------------------------------------------- pointers, samples

REPO = GUIDE.parents[1]


def test_the_readmes_links_reach_the_two_tutorials() -> None:
    """README.md points at both tutorials by their headings' anchors (GitHub's slugs)."""
    slugs = {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
             for heading in re.findall(r"^#+ (.+)$", GUIDE.read_text(), re.MULTILINE)}
    links = re.findall(r"\(docs/transcripts\.md#([\w-]+)\)", (REPO / "README.md").read_text())
    assert {"test-your-smtp-client", "coming-from-exim-test-scripts-or-curl-test-files"} <= set(
        links)
    assert set(links) <= slugs


def test_the_suite_replays_a_sample_of_every_kind() -> None:
    """pytest's testpaths include transcripts/, where the plugin makes each *.smtp file a
    replay test against the sandbox; issue 15 asks for implicit TLS, two connections and
    BDAT chunks among them (each file is its own test: transcripts/NAME.smtp::NAME)."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "transcripts" in config["tool"]["pytest"]["ini_options"]["testpaths"]
    samples = {p.name: p.read_text() for p in (REPO / "transcripts").glob("*.smtp")}
    assert any("\ntls: implicit\n" in text for text in samples.values())
    assert any(text.count("\n== connect ") >= 2 for text in samples.values())
    assert any(re.search(r"^-> BDAT \d+\n->> ", text, re.MULTILINE) for text in samples.values())
    # the guide's list of samples names every one
    listed = GUIDE.read_text().split("## The samples", 1)[1]
    assert all(f"`{name.removesuffix('.smtp')}`" in listed for name in samples), sorted(samples)
