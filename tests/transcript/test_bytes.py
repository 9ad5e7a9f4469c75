"""Exact bytes in transcripts (format v2, ``->>``): BDAT chunks, /raw bytes without a line
end and byte elisions, recorded against the sandbox, replayed to it and served by the mock."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from smtpshell.sandbox import Sandbox, SandboxConfig, SandboxThread
from smtpshell.transcript.mock import MockResult, MockServer
from smtpshell.transcript.model import ClientBytes, ElidedBytes, Transcript, TranscriptError
from smtpshell.transcript.syntax import dump, load, parse
from tests.helpers import run_cli

SAMPLES = Path(__file__).parents[2] / "transcripts"
DOC = Path(__file__).parents[2] / "docs" / "transcript-format.md"
ENVELOPE = "EHLO rec.test\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\n"
T = TypeVar("T")


def cli(argv: list[str], stdin: str = "", tmp: Path = Path("/nonexistent")) -> tuple[int, str]:
    status, out, err = run_cli(argv, stdin=stdin, tmp=tmp)
    return status, out + err


def record(sb: Sandbox, path: Path, stdin: str, *extra: str) -> str:
    status, out = cli(["--ehlo", "rec.test", "--record", str(path), *extra, "127.0.0.1",
                       str(sb.port)], stdin)
    assert status == 0, out
    return out


def replay(sb: Sandbox, path: Path) -> tuple[int, str]:
    return cli(["replay", "--timeout", "5", "--server", f"127.0.0.1:{sb.port}", str(path)])


def serve(transcript: Transcript, client: Callable[[int], T]) -> tuple[T, MockResult]:
    """Serve ``transcript`` with the mock; run the blocking ``client(port)`` in a thread."""
    async def run() -> tuple[T, MockResult]:
        async with MockServer(transcript, timeout=5) as srv:
            outcome = await asyncio.to_thread(client, srv.port)
            [result] = await srv.wait(1)
            return outcome, result
    return asyncio.run(run())


def message(lines: int) -> bytes:
    return b"Subject: chunks\r\n\r\n" + b"".join(b"line %d of the message\r\n" % i
                                                for i in range(lines))


# --------------------------------------------------------------------------- BDAT chunks


def test_bdat_chunks_record_as_exact_bytes_and_replay(chunking: Sandbox, tmp_path: Path) -> None:
    msg = tmp_path / "m.eml"
    msg.write_bytes(message(6))  # 157 bytes: BDAT 50, 50, 50, then 7 LAST
    path = tmp_path / "bdat.smtp"
    record(chunking, path, ENVELOPE + f"/bdat {msg} --chunk 50\nQUIT\n")
    text = path.read_text()
    assert text.startswith("# smtpshell transcript v2\n")
    # every BDAT command is a line of its own (the old recorder glued it to the chunk's end)
    assert re.findall(r"^.*BDAT.*$", text, re.M) == [
        "-> BDAT 50", "-> BDAT 50", "-> BDAT 50", "-> BDAT 7 LAST"]
    assert "->> line 1 o\n<- 250 2.0.0 50 octets received\n-> BDAT 50\n->> f the message\\r\\n" \
        in text
    transcript = load(path)
    sent = b"".join(e.data for e in transcript.entries if isinstance(e, ClientBytes))
    assert sent == msg.read_bytes()
    status, out = replay(chunking, path)
    assert status == 0, out
    assert "1 passed" in out
    first, again = chunking.messages()
    assert first == again == msg.read_bytes()


def test_the_mock_serves_bdat_chunks_split_across_writes(chunking: Sandbox,
                                                         tmp_path: Path) -> None:
    msg = tmp_path / "m.eml"
    data = message(6)
    msg.write_bytes(data)
    path = tmp_path / "bdat.smtp"
    record(chunking, path, ENVELOPE + f"/bdat {msg} --chunk 50\nQUIT\n")

    def client(port: int, chunk: bytes = b"") -> list[bytes]:
        async def talk() -> list[bytes]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)

            async def reply() -> bytes:
                line = await reader.readline()
                while line[3:4] == b"-":
                    line = await reader.readline()
                return line

            replies = [await reply()]
            for command in ENVELOPE.splitlines():
                writer.write(command.encode() + b"\r\n")
                replies.append(await reply())
            pieces = [data[i : i + 50] for i in range(0, len(data), 50)]
            for index, piece in enumerate(pieces):
                last = b" LAST" if index == len(pieces) - 1 else b""
                # the command and part of the chunk, then the rest in a later write
                writer.write(b"BDAT %d%s\r\n" % (len(piece), last) + piece[:7])
                await writer.drain()
                await asyncio.sleep(0.02)
                writer.write(piece[7:])
                replies.append(await reply())
            writer.write(b"QUIT\r\n")
            replies.append(await reply())
            writer.close()
            return replies
        return asyncio.run(talk())

    replies, result = serve(load(path), client)
    assert result.ok, result.render()
    assert replies[-2].startswith(b"250 2.0.0 OK: queued as")
    assert replies[-3] == b"250 2.0.0 50 octets received\r\n"


def test_the_mock_reports_other_bytes_escaped(tmp_path: Path) -> None:
    transcript = parse("# smtpshell transcript v2\n\n<- 220 mock\n-> BDAT 7 LAST\n"
                       "->> hello\\r\\n\n<- 250 ok\n", source="b.smtp")

    def client(port: int) -> bytes:
        async def talk() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await reader.readline()
            writer.write(b"BDAT 7 LAST\r\n\x1b]0;x\x07\r\n")
            answer = await reader.readline()
            writer.close()
            return answer
        return asyncio.run(talk())

    answer, result = serve(transcript, client)
    assert answer.startswith(b"421 ")
    report = result.render()
    assert "b.smtp:5: bytes differ" in report
    assert "->> hello\\r\\n" in report
    assert "+      ->> \\x1b]0;x\\x07\\r\n" in report + "\n"  # the first 7 bytes
    assert "\x1b" not in report and "\x07" not in report


def test_a_big_chunk_is_elided_and_replayed_as_filler_or_file(chunking: Sandbox,
                                                              tmp_path: Path) -> None:
    msg = tmp_path / "big.eml"
    data = b"Subject: big\r\n\r\n" + (b"y" * 98 + b"\r\n") * 2700  # 256 KiB, then 7 KiB LAST
    assert len(data) > 256 * 1024
    msg.write_bytes(data)
    path = tmp_path / "big.smtp"
    record(chunking, path, ENVELOPE + f"/bdat {msg}\nQUIT\n", "--elide-data", "100000")
    transcript = load(path)
    [elided] = [e for e in transcript.entries if isinstance(e, ElidedBytes)]
    assert elided.nbytes == 256 * 1024
    assert elided.sha256 == hashlib.sha256(data[: 256 * 1024]).hexdigest()
    text = path.read_text()
    assert f"-> BDAT {256 * 1024}\n== elided bytes={256 * 1024} sha256=" in text
    assert path.stat().st_size < 100_000

    status, out = replay(chunking, path)
    assert status == 0, out
    assert "elided bytes replayed as filler" in out
    assert chunking.messages()[-1] == b"X" * (256 * 1024) + data[256 * 1024 :]

    (tmp_path / "chunk1.bin").write_bytes(data[: 256 * 1024])
    path.write_text(text.replace(" tls=no\n", " tls=no file=chunk1.bin\n", 1))
    status, out = replay(chunking, path)
    assert status == 0, out
    assert chunking.messages()[-1] == data

    (tmp_path / "chunk1.bin").write_bytes(data[1 : 256 * 1024 + 1])
    status, out = replay(chunking, path)
    assert status == 1 and "chunk1.bin does not match the elided bytes" in out



@pytest.mark.parametrize("same", [True, False])
def test_the_mock_checks_elided_bytes_by_size_and_sha256(same: bool) -> None:
    chunk = (b"y" * 98 + b"\r\n") * 2700
    transcript = parse(f"# smtpshell transcript v2\n\n<- 220 mock\n-> BDAT {len(chunk)} LAST\n"
                       f"== elided bytes={len(chunk)} sha256={hashlib.sha256(chunk).hexdigest()}"
                       " tls=no\n<- 250 2.0.0 OK\n", source="big.smtp")
    sent = chunk if same else chunk[:-3] + b"zz\n"

    def client(port: int) -> bytes:
        async def talk() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await reader.readline()
            writer.write(b"BDAT %d LAST\r\n" % len(chunk))
            for i in range(0, len(sent), 50_000):  # in several writes
                writer.write(sent[i : i + 50_000])
                await writer.drain()
            answer = await reader.readline()
            writer.close()
            return answer
        return asyncio.run(talk())

    answer, result = serve(transcript, client)
    if same:
        assert answer == b"250 2.0.0 OK\r\n" and result.ok, result.render()
    else:
        assert answer.startswith(b"421 ")
        wrong = hashlib.sha256(sent).hexdigest()
        assert "big.smtp:5: the bytes differ from the elided ones (sha256)" in result.render()
        assert f"({len(chunk)} bytes, sha256={wrong})" in result.render()


# --------------------------------------------------------------------------- /raw bytes


def test_raw_bytes_without_a_line_end_record_and_replay_exactly(tmp_path: Path) -> None:
    """A smuggling probe inside DATA, and raw bytes left without CRLF when the reply came:
    ``->>``, sent exactly by replay (the sandbox stores the same message) and read exactly
    by the mock."""
    with SandboxThread(SandboxConfig(port=0, tls_port=None, workdir=tmp_path / "sb")) as sb:
        path = tmp_path / "probe.smtp"
        record(sb, path, ENVELOPE + "DATA\n"
               "/!raw Subject: probe\\r\\n\\r\\nbody\\n.\\nsmuggled\\r\\n.\\r\\nNOOP\n"
               "/raw \\r\\n\nQUIT\n")
        text = path.read_text()
        assert "-> body\\n.\\nsmuggled\n-> .\n->> NOOP\n<- 250 2.0.0 OK: queued as" in text
        assert "\n->\n<- 250 OK\n-> QUIT\n" in text  # NOOP's CRLF, its reply
        status, out = replay(sb, path)
        assert status == 0, out
        first, again = sb.messages()
        assert first == again == b"Subject: probe\r\n\r\nbody\n.\nsmuggled\r\n"

    def client(port: int) -> bytes:
        async def talk() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(ENVELOPE.replace("\n", "\r\n").encode() + b"DATA\r\n"
                         + b"Subject: probe\r\n\r\nbody\n.\nsmuggled\r\n.\r\nNO")
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.write(b"OP\r\nQUIT\r\n")
            got = await reader.read()
            writer.close()
            return got
        return asyncio.run(talk())

    got, result = serve(load(path), client)
    assert result.ok, result.render()
    assert got.endswith(b"221 Bye\r\n")


# --------------------------------------------------------------------------- versions


def test_a_v1_file_reads_as_before(tmp_path: Path) -> None:
    for sample in sorted(SAMPLES.glob("*.smtp")):
        text = sample.read_text()
        if not text.startswith("# smtpshell transcript v1\n"):
            continue
        v1 = parse(text)
        assert v1.header.version == 1
        assert dump(v1) == text  # written back as v1, unchanged
        as_v2 = parse(text.replace("transcript v1", "transcript v2", 1))
        assert as_v2.entries == v1.entries  # nothing in a v1 file reads otherwise in v2
        assert as_v2.steps() == v1.steps()
    # what v2 added is an error in a v1 file, as it always was
    with pytest.raises(TranscriptError, match=r":3: exact bytes \(->>\) are transcript "
                       r"v2: this file says v1"):
        parse("# smtpshell transcript v1\n\n->> x\n")
    with pytest.raises(TranscriptError, match="elided: needs lines=N and bytes=N"):
        parse(f"# smtpshell transcript v1\n\n== elided bytes=3 sha256={'0' * 64} tls=no\n")


def test_a_v3_file_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "new.smtp"
    path.write_text("# smtpshell transcript v3\ntarget: 127.0.0.1:25\n\n->>> x\n")
    status, out = cli(["replay", str(path)])
    assert status == 2
    assert f"{path}:1: written by a newer smtpshell: v3; this one reads v1 to v2" in out


def test_hostile_bytes_entries_reach_the_terminal_escaped(chunking: Sandbox,
                                                         tmp_path: Path) -> None:
    """Bytes recorded inside TLS, replayed in the clear: the mismatch shows them in the
    file's escapes, never as raw control bytes."""
    path = tmp_path / "evil.smtp"
    path.write_text(f"# smtpshell transcript v2\ntarget: 127.0.0.1:{chunking.port}\n\n"
                    "== connect\n<- 220 x\n~>> \\x1b]0;owned\\x07\\x1b[2J\\x9b31m\n")
    status, out = replay(chunking, path)
    assert status == 1
    assert "these bytes were sent inside TLS" in out
    assert "~>> \\x1b]0;owned\\x07\\x1b[2J\\x9b31m" in out
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\x9b]", out)
    status, out = cli(["show", "--no-color", str(path)])
    assert status == 0 and not re.search(r"[\x00-\x08\x0b-\x1f\x7f\x9b]", out)


@pytest.mark.parametrize("line, message", [
    ("->>", "->> is followed by one space and at least one byte"),
    ("->>x", "->> is followed by one space and at least one byte"),
    ("->> a\\q", "bad escape \\q"),
    ("->> \\u{d800}", "is not a character: write bytes as \\xHH"),
    ("== elided bytes=0 sha256=" + "0" * 64 + " tls=no", "bytes= must be at least 1"),
    ("== elided bytes=x sha256=" + "0" * 64 + " tls=no", "needs bytes=N"),
])
def test_bad_bytes_entries_are_errors_with_line_numbers(line: str, message: str) -> None:
    with pytest.raises(TranscriptError) as caught:
        parse(f"# smtpshell transcript v2\n\n-> BDAT 1\n{line}\n")
    assert caught.value.lineno == 4 and message in caught.value.message


def test_bytes_entries_round_trip_and_split_at_line_feeds() -> None:
    data = b"a \\{{b}}  ~c\r\n\tend \xff\xc3\xa9 \n\n"
    entries = ClientBytes.split(data, tls=True)
    assert [e.data for e in entries] == [b"a \\{{b}}  ~c\r\n", b"\tend \xff\xc3\xa9 \n", b"\n"]
    text = dump(Transcript(parse("# smtpshell transcript v2\n").header, tuple(entries)))
    assert text.endswith("~>> a \\\\{{b}}  ~c\\r\\n\n~>> \\tend \\xffé \\n\n~>> \\n\n")
    assert parse(text).entries == tuple(entries)
    long = ClientBytes.split(b"x" * (200 * 1024))
    assert [len(e.data) for e in long] == [64 * 1024] * 3 + [8 * 1024]


def test_the_spec_example_with_bytes_parses() -> None:
    blocks = re.findall(r"^```transcript\n(.*?)^```$", DOC.read_text("utf-8"), re.S | re.M)
    v2 = [b for b in blocks if b.startswith("# smtpshell transcript v2\n")]
    assert v2
    for block in v2:
        transcript = parse(block)
        assert dump(transcript) == block
        assert any(isinstance(e, ClientBytes) for e in transcript.entries)


def test_the_bdat_sample_replays_and_is_served(chunking: Sandbox, tmp_path: Path) -> None:
    sample = SAMPLES / "bdat-chunks.smtp"
    status, out = replay(chunking, sample)
    assert status == 0, out
    transcript = load(sample)
    chunks = [e for e in transcript.entries if isinstance(e, ClientBytes | ElidedBytes)]
    assert chunks and sum(1 for e in transcript.entries
                          if getattr(e, "text", "").startswith("BDAT")) >= 3
    sent = chunking.messages()[-1]

    def client(port: int) -> bool:
        status, _ = cli(["--ehlo", "rec.test", "127.0.0.1", str(port)],
                        ENVELOPE + f"/bdat {tmp_path / 'm.eml'} --chunk 50\nQUIT\n")
        return status == 0

    (tmp_path / "m.eml").write_bytes(sent)
    ok, result = serve(transcript, client)
    assert ok and result.ok, result.render()


# --------------------------------------------------------------------------- the sandbox's BDAT


def test_sandbox_chunking_option_and_refusals(chunking: Sandbox) -> None:
    from smtpshell.cli.sandbox import banner, build_parser, config_from_args

    assert config_from_args(build_parser().parse_args(["--chunking"])).chunking
    assert not config_from_args(build_parser().parse_args([])).chunking
    assert "  CHUNKING          on: BDAT n [LAST] (RFC 3030)" in banner(chunking)

    async def talk() -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", chunking.port)
        got = [await reader.readline()]
        for data in (b"EHLO x\r\n", b"BDAT 5\r\nhello", b"BDAT five\r\n", b"NOOP\r\n",
                     b"MAIL FROM:<a@b.test>\r\n", b"RCPT TO:<c@d.test>\r\n",
                     b"BDAT 3\r\nab\n", b"RSET\r\n", b"QUIT\r\n"):
            writer.write(data)
            line = await reader.readline()
            while line[3:4] == b"-":
                got.append(line)
                line = await reader.readline()
            got.append(line)
        writer.close()
        return got

    got = asyncio.run(talk())
    assert b"250-CHUNKING\r\n" in got
    assert got[-8:] == [
        b"503 5.5.1 Error: need RCPT command\r\n",  # the 5 chunk bytes were read all the same
        b"501 5.5.4 Syntax: BDAT size [LAST]\r\n",
        b"250 OK\r\n", b"250 OK\r\n", b"250 2.1.5 OK\r\n",
        b"250 2.0.0 3 octets received\r\n", b"250 OK\r\n", b"221 Bye\r\n"]
    assert chunking.messages() == []  # RSET dropped the chunk


def test_show_highlights_bytes_entries_as_one_string() -> None:
    from pygments.token import Comment, String

    from smtpshell.ui.lexer import tokens

    found = tokens("->> line 0 of\\r\\n\n~>> MAIL FROM:<x>\n")
    assert found[0] == (Comment.Special, "->>")
    assert found[2] == (String.Other, "line 0 of\\r\\n")
    assert (String.Other, "MAIL FROM:<x>") in found  # bytes, not a command
