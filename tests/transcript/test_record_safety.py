"""The recorder never loses data: an existing file is kept unless the user says to replace
it (--record-overwrite, /record --force FILE), a symbolic link is never followed, a FIFO or
device is never written to; and a credential is never recorded as a reference that replays
as something else than what was sent (real CLI in process, the real sandbox)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.sandbox import Sandbox
from smtpshell.transcript.model import Header
from smtpshell.transcript.recorder import Recorder
from smtpshell.transcript.writer import NotRegularFile, TranscriptWriter

SESSION = "NOOP\nQUIT\n"


def cli(argv: list[str], stdin: str = "", environ: dict[str, str] | None = None,
        tmp: Path = Path("/nonexistent")) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(stdin), stdout=out, stderr=err,
                      environ=environ or {}, stdin_isatty=False, stdout_isatty=False,
                      config_dir=tmp / "config", data_dir=tmp / "data")
    return int(main(argv, env)), out.getvalue() + err.getvalue()


def shell(sb: Sandbox, *args: str, stdin: str = SESSION,
          environ: dict[str, str] | None = None) -> tuple[int, str]:
    return cli([*args, "127.0.0.1", str(sb.port)], stdin, environ)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- the option ---------------------------------------------------------------------------

def test_record_option_keeps_an_existing_file_and_says_how_to_replace_it(
        sandbox: Sandbox, tmp_path: Path) -> None:
    keep = tmp_path / "keep.txt"
    keep.write_text("important\n")
    keep.chmod(0o644)
    status, out = shell(sandbox, "--record", str(keep))
    assert status == 1
    assert keep.read_text() == "important\n" and mode(keep) == 0o644
    refusal = [line for line in out.splitlines() if "cannot record" in line]
    assert refusal == [f"x cannot record to {keep}: the file exists and is kept "
                       "(--record-overwrite replaces it)"]
    assert "Traceback" not in out


def test_record_overwrite_replaces_a_regular_file_with_mode_0600(
        sandbox: Sandbox, tmp_path: Path) -> None:
    old = tmp_path / "old.smtp"
    old.write_text("an older transcript\n")
    old.chmod(0o644)
    status, out = shell(sandbox, "--record", str(old), "--record-overwrite")
    assert status == 0, out
    text = old.read_text()
    assert "an older transcript" not in text and "-> NOOP" in text
    assert mode(old) == 0o600


def test_record_option_creates_a_new_file_with_mode_0600(
        sandbox: Sandbox, tmp_path: Path) -> None:
    new = tmp_path / "new.smtp"
    status, out = shell(sandbox, "--record", str(new))
    assert status == 0, out
    assert "-> NOOP" in new.read_text() and mode(new) == 0o600


@pytest.mark.parametrize("overwrite", [False, True])
def test_record_never_follows_a_symbolic_link(
        sandbox: Sandbox, tmp_path: Path, overwrite: bool) -> None:
    target = tmp_path / "tgt.txt"
    target.write_text("target\n")
    target.chmod(0o644)
    link = tmp_path / "lnk.smtp"
    link.symlink_to(target.name)
    status, out = shell(sandbox, "--record", str(link),
                        *(["--record-overwrite"] if overwrite else []))
    assert status == 1
    assert target.read_text() == "target\n" and mode(target) == 0o644
    assert link.is_symlink()
    assert f"x cannot record to {link}: not a regular file" in out


def test_record_never_creates_through_a_dangling_link(sandbox: Sandbox, tmp_path: Path) -> None:
    link = tmp_path / "dangling.smtp"
    link.symlink_to(tmp_path / "elsewhere.txt")
    for extra in ([], ["--record-overwrite"]):
        status, out = shell(sandbox, "--record", str(link), *extra)
        assert status == 1, out
        assert not (tmp_path / "elsewhere.txt").exists()


def test_record_overwrite_refuses_a_fifo_without_hanging(
        sandbox: Sandbox, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.smtp"
    os.mkfifo(fifo)
    status, out = shell(sandbox, "--record", str(fifo), "--record-overwrite")
    assert status == 1
    assert f"x cannot record to {fifo}: not a regular file" in out
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# --- /record --------------------------------------------------------------------------------

def test_slash_record_keeps_an_existing_file_after_a_backlog(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """Typed after connecting, /record would write the session so far first: still no
    overwrite; the batch ends with status 1 and the file is as it was."""
    keep = tmp_path / "keep.txt"
    keep.write_text("important\n")
    status, out = shell(sandbox, stdin=f"EHLO me\n/record {keep}\nNOOP\nQUIT\n")
    assert status == 1
    assert keep.read_text() == "important\n"
    assert (f"x cannot record to {keep}: the file exists and is kept "
            f"(/record --force {keep} replaces it)") in out.splitlines()


def test_record_overwrite_never_writes_through_a_hard_link(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """A hard link planted under the transcript's name is another name of someone's file:
    overwriting replaces the name, the other file keeps its bytes and its mode."""
    victim = tmp_path / "victim"
    victim.write_text("secret\n")
    victim.chmod(0o644)
    planted = tmp_path / "x.smtp"
    os.link(victim, planted)
    status, out = shell(sandbox, "--record", str(planted), "--record-overwrite")
    assert status == 0, out
    assert victim.read_text() == "secret\n"
    assert mode(victim) == 0o644
    assert "-> NOOP" in planted.read_text()
    assert mode(planted) == 0o600


@pytest.mark.parametrize("form", ["/record --force {}", "/record {} --force"])
def test_slash_record_force_replaces_a_regular_file(
        sandbox: Sandbox, tmp_path: Path, form: str) -> None:
    old = tmp_path / "old.smtp"
    old.write_text("older\n")
    old.chmod(0o644)
    status, out = shell(sandbox, stdin=f"EHLO me\n{form.format(old)}\nNOOP\nQUIT\n")
    assert status == 0, out
    text = old.read_text()
    assert "older" not in text and "EHLO me" in text and "-> NOOP" in text
    assert mode(old) == 0o600


def test_slash_record_force_never_follows_a_link(sandbox: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "tgt.txt"
    target.write_text("target\n")
    link = tmp_path / "lnk.smtp"
    link.symlink_to(target)
    status, out = shell(sandbox, stdin=f"EHLO me\n/record --force {link}\nQUIT\n")
    assert status == 1
    assert target.read_text() == "target\n"
    assert f"x cannot record to {link}: not a regular file" in out


def test_a_refused_slash_record_leaves_the_recording_going_on(
        sandbox: Sandbox, tmp_path: Path) -> None:
    first = tmp_path / "first.smtp"
    keep = tmp_path / "keep.txt"
    keep.write_text("important\n")
    status, out = shell(sandbox, "--record", str(first),
                        stdin=f"NOOP\n/record {keep}\nRSET\nQUIT\n")
    assert status == 1  # the refusal is a failed step
    assert f"x cannot record to {keep}: the file exists and is kept" in out
    assert keep.read_text() == "important\n"
    text = first.read_text()
    assert "-> NOOP" in text and "-> RSET" in text and "-> QUIT" in text


# --- the classes themselves ---------------------------------------------------------------

def test_recorder_refuses_an_existing_file_by_default(tmp_path: Path) -> None:
    path = tmp_path / "x.smtp"
    path.write_text("keep")
    with pytest.raises(FileExistsError):
        Recorder(path, Header(target="127.0.0.1:25"))
    assert path.read_text() == "keep"


def test_writer_overwrite_refuses_a_directory_and_a_link(tmp_path: Path) -> None:
    (tmp_path / "dir.smtp").mkdir()
    (tmp_path / "t").write_text("t")
    (tmp_path / "l.smtp").symlink_to(tmp_path / "t")
    for name in ("dir.smtp", "l.smtp"):
        with pytest.raises(NotRegularFile):
            TranscriptWriter(tmp_path / name, Header(target="x"), overwrite=True)
    assert (tmp_path / "t").read_text() == "t"


# --- a credential that a reference would not replay as sent ---------------------------------

PASSWORD = "demo-password"


def b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def record_auth(sb: Sandbox, path: Path, lines: str,
                environ: dict[str, str] | None = None) -> str:
    status, out = shell(sb, "--cafile", str(sb.ca_file), "--starttls", "--record", str(path),
                        stdin=lines + "QUIT\n", environ=environ)
    assert status in (0, 5), out  # 5: the server refused the credentials
    return out


def replay(sb: Sandbox, path: Path, environ: dict[str, str]) -> tuple[int, str]:
    return cli(["replay", "--server", f"127.0.0.1:{sb.port}", "--cafile", str(sb.ca_file),
                str(path)], environ=environ)


USER = b64(b"demo")
ECHOED = b64(PASSWORD.encode() + b"\n")  # echo demo-password | base64
PLAIN_ECHOED = b64(b"\0demo\0" + PASSWORD.encode() + b"\n")
ECHO_MADE = {
    "login": f"AUTH LOGIN\n{USER}\n{ECHOED}\n",
    "plain": f"AUTH PLAIN {PLAIN_ECHOED}\n",
}


@pytest.mark.parametrize("mech", ["login", "plain"])
def test_an_echo_made_password_is_never_recorded_as_a_reference_that_replays_otherwise(
        sandbox: Sandbox, tmp_path: Path, mech: str) -> None:
    """`echo demo-password | base64` typed by hand: 535 when recorded; a reference to
    $SMTPSHELL_PASSWORD would replay the password without its newline (235)."""
    path = tmp_path / f"{mech}.smtp"
    out = record_auth(sandbox, path, ECHO_MADE[mech])
    hints = [line for line in out.splitlines() if "ending in a newline" in line]
    assert hints == ["! the base64 answer decodes to a password ending in a newline, sent as"
                     " part of it (probably `echo` without -n; use `printf '%s'` or /b64)"]
    assert PASSWORD not in out and ECHOED not in out
    text = path.read_text()
    assert PASSWORD not in text and "ZGVtby1wYXNzd29yZA" not in text  # no base64 of it
    assert "password=$SMTPSHELL_PASSWORD" not in text
    assert "<~ 535 5.7.8" in text
    warning = next(line for line in text.splitlines() if line.startswith("== warning"))
    assert "the password sent here ends in a newline" in warning
    assert "{{secret:raw value=$SMTPSHELL_RAW_1}}" in text

    status, report = replay(sandbox, path, {"SMTPSHELL_PASSWORD": PASSWORD})
    assert status != 0
    assert "environment variable SMTPSHELL_RAW_1 is not set" in report
    assert "235" not in report  # never authenticated with another credential

    answer = ECHO_MADE[mech].split()[-1]
    status, report = replay(sandbox, path, {"SMTPSHELL_RAW_1": answer})
    assert status == 0, report  # the same 535 as recorded


def test_a_password_that_differs_from_the_set_variable_is_not_a_reference(
        sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "differs.smtp"
    lines = "AUTH PLAIN " + b64(b"\0demo\0" + PASSWORD.encode()) + "\n"
    record_auth(sandbox, path, lines, environ={"SMTPSHELL_PASSWORD": "another"})
    text = path.read_text()
    assert "password=$SMTPSHELL_PASSWORD" not in text and PASSWORD not in text
    assert "differs from what $SMTPSHELL_PASSWORD rebuild" in text
    status, report = replay(sandbox, path, {"SMTPSHELL_PASSWORD": "another"})
    assert status != 0 and "SMTPSHELL_RAW_1 is not set" in report


@pytest.mark.parametrize("environ", [{}, {"SMTPSHELL_PASSWORD": PASSWORD}])
def test_a_faithful_password_stays_a_reference(sandbox: Sandbox, tmp_path: Path,
                                               environ: dict[str, str]) -> None:
    path = tmp_path / "ok.smtp"
    lines = f"AUTH LOGIN\n{USER}\n{b64(PASSWORD.encode())}\n"
    out = record_auth(sandbox, path, lines, environ=environ)
    assert "ending in" not in out
    text = path.read_text()
    assert "~> {{secret:login password=$SMTPSHELL_PASSWORD}}" in text
    assert "== warning" not in text and PASSWORD not in text
    status, report = replay(sandbox, path, {"SMTPSHELL_PASSWORD": PASSWORD})
    assert status == 0, report


def test_record_overwrite_without_record_is_a_usage_error(tmp_path: Path) -> None:
    status, out = cli(["--record-overwrite", "127.0.0.1", "1"], tmp=tmp_path)
    assert status == 2
    assert "--record-overwrite replaces the file of --record FILE: add it" in out
