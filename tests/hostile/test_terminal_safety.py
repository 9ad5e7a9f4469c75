"""Nothing from outside reaches the terminal raw (issue 13 §2).

A fixed corpus of hostile sequences (an OSC 0/2 title, an OSC 52 clipboard write, CSI 2J,
the alternate screen, a C1 CSI, cursor home, backspaces, a bare CR, bidi overrides and
isolates, zero-width and BOM characters) goes through every printer: replies from a real
asyncio server on 127.0.0.1 (batch mode and the REPL in a pty), the toolbar and prompt
with a hostile user name, /status, ``show`` of a transcript file, replay and mock
reports, error lines.  Each test reads the bytes the program wrote and asserts that no
hostile sequence is among them and that its escaped form is.
"""

from __future__ import annotations

import asyncio
import html
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtpshell.ui.render import COLOURS, RESET, Renderer, pygments_highlighter
from tests.hostile.servers import Hostile, serve_in_thread
from tests.ptyshell import PtyShell

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter

# name -> (what the peer sends, what the screen shows)
CORPUS: dict[str, tuple[bytes, str]] = {
    "osc0": (b"\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
    "osc2": (b"\x1b]2;pwned\x1b\\", "\\x1b]2;pwned\\x1b\\"),
    "osc52": (b"\x1b]52;c;cHduZWQ=\x07", "\\x1b]52;c;cHduZWQ=\\x07"),
    "clear": (b"\x1b[2J", "\\x1b[2J"),
    "altscreen": (b"\x1b[?1049h", "\\x1b[?1049h"),
    "c1csi": (b"\xc2\x9b31m", "\\x9b31m"),
    "c1raw": (b"\x9b31m", "\\x9b31m"),
    "home": (b"\x1b[H", "\\x1b[H"),
    "backspace": (b"\x08\x08\x08", "\\x08\\x08\\x08"),
    "bare-cr": (b"\rFAKE", "\\x0dFAKE"),
    "rlo": ("\u202egnp.exe".encode(), "\\u202egnp.exe"),
    "lri": ("\u2066x\u2069".encode(), "\\u2066x\\u2069"),
    "zwsp": ("pay\u200bpal".encode(), "pay\\u200bpal"),
    "bom": ("\ufeff".encode(), "\\ufeff"),
}


def framed(name: str) -> tuple[bytes, str]:
    """The payload between markers, so the test can tell the peer's bytes from the program's
    own colours and cursor moves: raw as sent, and as it must be shown."""
    raw, shown = CORPUS[name]
    return b"<" + name.encode() + b":" + raw + b":>", f"<{name}:{shown}:>"


def assert_safe(written: bytes, names: list[str] | None = None, *,
                visible: str | None = None) -> None:
    """No hostile payload in ``written`` (the raw bytes); each escaped form in ``visible``
    (the text with the program's own colours removed; by default ``written`` itself)."""
    text = visible if visible is not None else written.decode("utf-8", "replace")
    for name in names if names is not None else list(CORPUS):
        raw, shown = framed(name)
        assert raw not in written, f"{name}: raw bytes reached the terminal"
        assert shown in text, f"{name}: escaped form {shown!r} not shown"
    for bad in ("\u202e", "\u2066", "\u200b", "\ufeff"):
        assert bad.encode() not in written
    assert b"\xc2\x9b" not in written and b"\x9b31m" not in written  # C1 CSI, either way


def assert_no_controls(written: bytes) -> None:
    """Plain output (not a terminal): no control byte at all but the newline."""
    bad = sorted({b for b in written if (b < 0x20 and b != 0x0A) or b == 0x7F})
    assert bad == [], f"control bytes {bad} in {written!r}"
    assert b"\xc2\x9b" not in written and b"\x9b31m" not in written


# ---- a hostile server ---------------------------------------------------------------


def reply(code: bytes, names: list[str]) -> bytes:
    lines = [code + b"-" + framed(n)[0] for n in names]
    return b"\r\n".join(lines) + b"\r\n" + code + b" end of " + code + b"\r\n"


async def corpus_server(reader: Reader, writer: Writer) -> None:
    """Greets, then answers every command with the whole corpus (a 250 for NOOP, a 550
    for VRFY, a 235 for AUTH), and says goodbye with it too."""
    writer.write(reply(b"220", list(CORPUS)))
    await writer.drain()
    while line := await reader.readline():
        verb = line.split(b" ", 1)[0].strip().upper()
        if verb == b"QUIT":
            writer.write(b"221 bye " + framed("osc0")[0] + b"\r\n")
            await writer.drain()
            return
        if verb == b"EHLO":
            writer.write(b"250-hostile " + framed("rlo")[0] + b"\r\n250-AUTH PLAIN\r\n"
                         b"250 PIPELINING\r\n")
        elif verb == b"AUTH":
            writer.write(b"235 2.7.0 welcome " + framed("clear")[0] + b"\r\n")
        elif verb == b"VRFY":
            writer.write(reply(b"550", list(CORPUS)))
        else:
            writer.write(reply(b"250", list(CORPUS)))
        await writer.drain()


@pytest.fixture
def server() -> Iterator[Hostile]:
    with serve_in_thread(corpus_server) as srv:
        yield srv


def smtpshell(args: list[str], stdin: str = "", env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[bytes]:
    """The real program, its output a pipe (batch mode: no colour)."""
    return subprocess.run(
        [sys.executable, "-m", "smtpshell", *args], input=stdin.encode(), capture_output=True,
        timeout=60, env={**os.environ, "HOME": "/nonexistent", **(env or {})}, check=False,
    )


# ---- replies ----------------------------------------------------------------------------


def test_replies_in_batch_mode(server: Hostile) -> None:
    typed = "NOOP " + framed("osc0")[0].decode() + "\nRSET " + framed("rlo")[0].decode()
    done = smtpshell(["127.0.0.1", str(server.port)], f"EHLO me\n{typed}\nVRFY x\nQUIT\n")
    out = done.stdout
    assert b"end of 250" in out and b"end of 550" in out, out
    # the lines read from stdin, echoed as sent
    assert b"> NOOP <osc0:\\x1b]0;pwned\\x07:>\n" in out
    assert b"> RSET <rlo:\\u202egnp.exe:>\n" in out
    assert_safe(out)
    assert_no_controls(out + done.stderr)


def test_replies_with_colour_carry_only_the_writers_own_colours() -> None:
    """With colour (and the REPL's pygments highlighter) the only escape sequences are
    SGR colours: escape first, then paint."""
    from smtpshell.protocol.replies import ReplyParser

    events = list(ReplyParser().feed(reply(b"250", list(CORPUS)) + reply(b"550", list(CORPUS))))
    for highlight in (None, pygments_highlighter("dark")):
        out = io.StringIO()
        r = Renderer(out, colour=True, arrows=True, highlight=highlight)
        for event in events:
            r(event)
        r.info("user " + CORPUS["osc52"][0].decode())
        r.error("cannot read " + CORPUS["clear"][0].decode())
        r.write(r.paint("sent " + CORPUS["rlo"][0].decode(), "sent"))
        written = out.getvalue()
        plain = re.sub(r"\x1b\[[0-9;]*m", "", written)
        assert "\x1b" not in plain, plain
        assert_safe(written.encode(), visible=plain)
        used = set(re.findall(r"\x1b\[[0-9;]*m", written))
        if highlight is None:
            assert used <= {*COLOURS.values(), RESET}


def test_painted_text_glued_to_a_plain_string_is_escaped_never_leaked() -> None:
    out = io.StringIO()
    r = Renderer(out, colour=True)
    r.write("> " + r.paint("x", "sent"))  # a mistake: the colour codes show, escaped
    assert "\x1b" not in out.getvalue()
    assert "\\x1b[2m" in out.getvalue()


def test_one_line_is_one_line() -> None:
    """A CR or LF inside text from outside cannot start a line that looks like the
    program's own."""
    out = io.StringIO()
    r = Renderer(out)
    r.info("authenticated as alice\r\n< 250 2.0.0 all fine")
    r.write("  auth        bob\n  stage       DATA")
    assert out.getvalue().splitlines() == [
        "* authenticated as alice\\x0d\\x0a< 250 2.0.0 all fine",
        "  auth        bob\\x0a  stage       DATA",
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="pty")
def test_replies_toolbar_and_prompt_in_the_repl(server: Hostile, tmp_path: Path) -> None:
    """The REPL in a pty, with colour: replies, a hostile --user in the prompt, the
    toolbar and /status; the raw bytes never reach the terminal."""
    user = "eve" + CORPUS["osc0"][0].decode() + "\u202e"
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "HOSTILE_PW": "secret", "TERM": "xterm-256color"}
    shell = PtyShell(["--auth", "plain", "--auth-in-clear", "--user", user,
                      "--password-env", "HOSTILE_PW", "127.0.0.1", str(server.port)], env)
    try:
        shell.expect(r"type /help")
        shell.sendline("NOOP")
        shell.expect(r"end of 250")
        shell.sendline("/status")
        shell.expect(r"stage")
        shell.sendline("/quit")
        shell.wait()
    finally:
        shell.close()
    written = shell.buffer
    assert_safe(written, visible=shell.text)
    assert b"\x1b]0;pwned" not in written
    assert "eve\\x1b]0;pwned\\x07\\u202e" in shell.text  # prompt, toolbar, /status, outcome


# ---- show, replay, mock: files and peers quoted in reports ------------------------------

IN_FILES = [n for n in CORPUS if n not in ("bare-cr", "c1raw")]  # files are read as UTF-8
HOSTILE_NAME = "t\x1b]0;pwned\x07\u202e.smtp"
HOSTILE_NAME_SHOWN = "t\\x1b]0;pwned\\x07\\u202e.smtp"


def transcript_bytes(port: int) -> bytes:
    """A transcript with every corpus payload raw in it (the format would escape them; a
    file can hold anything), and a reply that the corpus server will contradict."""
    lines = [b"# smtpshell transcript v1", f"target: 127.0.0.1:{port}".encode(), b""]
    lines += [b"# note " + framed(name)[0].replace(b"\r", b"") for name in IN_FILES]
    lines += [b"-> NOOP", b"<- 550 5.0.0 recorded " + framed("osc52")[0], b"-> QUIT",
              b"<- 221 bye", b""]
    return b"\n".join(lines)


def test_show_of_a_transcript_with_raw_controls(tmp_path: Path) -> None:
    path = tmp_path / HOSTILE_NAME
    path.write_bytes(transcript_bytes(25))
    names = IN_FILES
    plain = smtpshell(["show", str(path)])
    assert plain.returncode == 0, plain.stderr
    assert_safe(plain.stdout, names)
    assert_no_controls(plain.stdout + plain.stderr)

    page = smtpshell(["show", "--html", "-", str(path)])
    assert page.returncode == 0, page.stderr
    visible = html.unescape(re.sub(r"<[^>]*>", "", page.stdout.decode()))
    assert_safe(page.stdout, names, visible=visible)
    assert_no_controls(page.stdout + page.stderr)
    assert f"<title>{HOSTILE_NAME_SHOWN}</title>".encode() in page.stdout

    from smtpshell.ui.show import render_terminal

    coloured = render_terminal(path.read_text())
    plain_text = re.sub(r"\x1b\[[0-9;]*m", "", coloured)
    assert "\x1b" not in plain_text
    assert_safe(coloured.encode(), names, visible=plain_text)


def test_show_error_lines_quote_the_file_name_escaped(tmp_path: Path) -> None:
    missing = smtpshell(["show", str(tmp_path / HOSTILE_NAME)])
    assert missing.returncode == 2
    assert HOSTILE_NAME_SHOWN.encode() in missing.stderr
    assert_no_controls(missing.stderr)


def test_replay_report_quotes_server_and_file_escaped(server: Hostile, tmp_path: Path) -> None:
    """A well-formed transcript (its own text escaped, as the format requires), a hostile
    file name and a hostile server: the mismatch report quotes both, escaped."""
    path = tmp_path / HOSTILE_NAME
    greeting = "<- 220-x\n" * len(CORPUS) + "<- 220 end of 220\n"
    path.write_text(f"# smtpshell transcript v1\ntarget: 127.0.0.1:{server.port}\n\n"
                    f"== connect address=127.0.0.1:{server.port}\n{greeting}"
                    "-> NOOP\n<- 550 5.0.0 recorded\n-> QUIT\n<- 221 bye\n")
    done = smtpshell(["replay", "--server", f"127.0.0.1:{server.port}", str(path)])
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert HOSTILE_NAME_SHOWN.encode() in out
    assert b"expected reply code 550, got 250" in out
    assert_no_controls(out)
    # the report quotes what the server sent in the transcript's own escapes (\\u{202e})
    from smtpshell.transcript.syntax import escape_text

    for name in CORPUS:
        raw = framed(name)[0]
        assert raw not in out
        assert escape_text(raw.decode("utf-8", "surrogateescape")).encode() in out, name
    assert "\u202e".encode() not in out and b"\xc2\x9b" not in out


def test_mock_report_quotes_client_and_file_escaped(tmp_path: Path) -> None:
    import socket

    path = tmp_path / HOSTILE_NAME
    path.write_text("# smtpshell transcript v1\ntarget: 127.0.0.1:25\n\n<- 220 mock ESMTP\n"
                    "-> EHLO client.test\n<- 250 ok\n-> QUIT\n<- 221 bye\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "smtpshell", "mock", "--once", "--port", "0", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "HOME": "/nonexistent"},
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        port = int(re.search(rb"on 127\.0\.0\.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
        hostile = b"EHLO " + b"".join(framed(n)[0].replace(b"\r", b"") for n in CORPUS)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"220")
            sock.sendall(hostile + b"\r\n")
            # another EHLO argument: the mock answers as recorded and goes on (issue 15)
            assert reader.readline().startswith(b"250")
            sock.sendall(b"QUIT\r\n")
            assert reader.readline().startswith(b"221")
            reader.close()  # the socket closes with the block only once its file is closed
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    written = banner + out + err
    assert proc.returncode == 1, written
    assert b"MISMATCH" in written
    assert HOSTILE_NAME_SHOWN.encode() in written
    assert_no_controls(written)
    for name in ("osc0", "osc52", "clear", "altscreen", "rlo", "zwsp", "bom"):
        assert framed(name)[0] not in written


# ---- error lines --------------------------------------------------------------------------


def test_error_lines_quote_host_and_values_escaped(tmp_path: Path) -> None:
    """A missing profile, a host name the resolver would refuse (a bidi override: one
    usage line, not a traceback; nothing is looked up), a bad port, unknown options:
    quoted escaped.  No test here asks a DNS server anything."""
    unresolved = smtpshell(["-p", "mx\x1b]0;pwned\x07"],
                           env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)})
    assert unresolved.returncode == 2
    refused = smtpshell(["mx\u202e\x1b[2J.invalid", "1"], "QUIT\n")
    assert refused.returncode == 2
    bad_port = smtpshell(["127.0.0.1", "2\x1b[2J5"])
    assert bad_port.returncode == 2
    superscript = smtpshell(["127.0.0.1", "\u00b2"])  # str.isdigit() says yes, int() no
    assert superscript.returncode == 2
    assert superscript.stderr.decode().splitlines() == ["smtpshell: invalid port: \u00b2"]
    unknown = smtpshell(["--foo\x1b]0;pwned\x07"])  # argparse quotes the command line
    sub_unknown = smtpshell(["replay", "x.smtp", "--bogus\u202e\x1b[2J"])
    assert unknown.returncode == sub_unknown.returncode == 2
    assert b"unrecognized arguments: --foo\\x1b]0;pwned\\x07" in unknown.stderr
    assert b"unrecognized arguments: --bogus\\u202e\\x1b[2J" in sub_unknown.stderr
    for done in (unresolved, refused, bad_port, unknown, sub_unknown):
        written = done.stdout + done.stderr
        assert_no_controls(written)
        assert b"Traceback" not in written
        assert b"\x1b" not in written and "\u202e".encode() not in written
    assert b"mx\\x1b]0;pwned\\x07" in unresolved.stderr
    assert b"invalid host name: mx\\u202e\\x1b[2J.invalid" in refused.stderr
    assert b"2\\x1b[2J5" in bad_port.stderr


# ---- the TLS report, /tls, /tls chain, --show-certs: certificate names are peer text ------


def test_certificate_names_in_the_tls_report_chain_and_show_certs(tmp_path: Path) -> None:
    """Implicit TLS with a certificate whose subject and issuer carry the corpus: the
    report printed at the handshake (with --show-certs), ``/tls`` and ``/tls chain``."""
    import ssl

    import trustme

    from tests.hostile.more_servers import polite

    ca = trustme.CA(organization_name="ca\x1b]0;pwned\x07\u202e")
    leaf = ca.issue_cert("127.0.0.1", "localhost", common_name="cn\x1b[2J\x9b31m\u2066",
                         organization_name="org\x1b]52;c;cHduZWQ=\x07\u200b")
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(ctx)

    async def handler(reader: Reader, writer: Writer) -> None:
        await writer.start_tls(ctx)
        await polite(reader, writer)

    with serve_in_thread(handler) as srv:
        done = smtpshell(["--tls", "--cafile", str(cafile), "--show-certs", "127.0.0.1",
                          str(srv.port)], "EHLO me\n/tls\n/tls chain\nQUIT\n")
    written = done.stdout + done.stderr
    assert b"polite" in written, written
    assert_no_controls(written)
    for bad in ("\u202e", "\u2066", "\u200b"):
        assert bad.encode() not in written
    # RFC 4514 writes ';' as '\\;' in a distinguished name
    for shown in (b"O=ca\\x1b]0\\;pwned\\x07\\u202e", b"CN=cn\\x1b[2J\\x9b31m\\u2066",
                  b"O=org\\x1b]52\\;c\\;cHduZWQ=\\x07\\u200b"):
        assert written.count(shown) >= 3, shown  # the report, /tls, /tls chain


@pytest.mark.skipif(sys.platform == "win32", reason="pty")
def test_the_password_question_quotes_the_user_escaped(server: Hostile, tmp_path: Path) -> None:
    user = "eve" + CORPUS["osc52"][0].decode() + "\u2066"
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"), "NO_COLOR": "1"}
    shell = PtyShell(["--auth", "plain", "--auth-in-clear", "--user", user, "127.0.0.1",
                      str(server.port)], env)
    try:
        shell.expect(r"Password for ")
        shell.sendline("pw")
        shell.expect(r"authenticated as[\s\S]*type /help")
        shell.sendline("/quit")
        shell.wait()
    finally:
        shell.close()
    assert CORPUS["osc52"][0] not in shell.buffer and "\u2066".encode() not in shell.buffer
    assert "Password for eve\\x1b]52;c;cHduZWQ=\\x07\\u2066" in shell.text


def test_the_sandbox_reports_client_addresses_escaped(tmp_path: Path) -> None:
    """``smtpshell sandbox`` prints each delivery: the addresses are what a client sent."""
    import signal
    import socket

    proc = subprocess.Popen(
        [sys.executable, "-m", "smtpshell", "sandbox", "--port", "0", "--tls-port", "0",
         "--dir", str(tmp_path / "sb")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "HOME": str(tmp_path)},
    )
    try:
        assert proc.stdout is not None
        seen = b""
        while not (m := re.search(rb"SMTP \+ STARTTLS +127\.0\.0\.1:(\d+)", seen)):
            line = proc.stdout.readline()
            assert line, seen
            seen += line
        port = int(m.group(1))
        sender = '"a' + CORPUS["osc0"][0].decode() + '\u202e"@example.org'
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            reader = sock.makefile("rb")

            def say(line: str) -> bytes:
                sock.sendall(line.encode() + b"\r\n")
                reply = reader.readline()
                while reply[3:4] == b"-":
                    reply = reader.readline()
                return reply

            assert reader.readline().startswith(b"220")
            assert say("EHLO client.test").startswith(b"250")
            assert say(f"MAIL FROM:<{sender}> SMTPUTF8").startswith(b"250")
            assert say('RCPT TO:<"b\x1b[2J"@example.org>').startswith(b"250")
            assert say("DATA").startswith(b"354")
            assert say("Subject: hi\r\n\r\nhello\r\n.").startswith(b"250")
            say("QUIT")
        while b"message from" not in seen:
            line = proc.stdout.readline()
            assert line, seen
            seen += line
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    written = seen + out + err
    assert_no_controls(written)
    assert "\u202e".encode() not in written
    assert (b'message from <"a\\x1b]0;pwned\\x07\\u202e"@example.org> to "b\\x1b[2J"@example.org'
            in written), written


def test_the_pytest_plugin_failure_quotes_the_server_escaped(
    server: Hostile, tmp_path: Path
) -> None:
    """A transcript test that fails against the corpus server: pytest shows the diff, with
    what the server sent escaped."""
    directory = tmp_path / "transcripts"
    directory.mkdir()
    greeting = "<- 220-x\n" * len(CORPUS) + "<- 220 end of 220\n"
    (directory / "hostile.smtp").write_text(
        f"# smtpshell transcript v1\ntarget: 127.0.0.1:{server.port}\n\n"
        f"== connect address=127.0.0.1:{server.port}\n{greeting}"
        "-> NOOP\n<- 550 5.0.0 recorded\n-> QUIT\n<- 221 bye\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
         f"--smtpshell-server=127.0.0.1:{server.port}", str(directory / "hostile.smtp")],
        capture_output=True, timeout=120, cwd=tmp_path, check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    written = done.stdout + done.stderr
    assert b"expected reply code 550, got 250" in written, written
    assert_no_controls(written)
    for name in CORPUS:
        assert framed(name)[0] not in written, name
