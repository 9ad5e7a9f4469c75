"""Replaying many transcripts: each file is parsed when its turn comes (at most ``-j``
parsed models alive at a time), a finished one keeps only its result, and a malformed file
in the middle is still its own ERROR with its line number among the others' results."""

from __future__ import annotations

import asyncio
import gc
import io
import re
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtpshell.cli import main
from smtpshell.context import Environment
from smtpshell.sandbox import Sandbox
from smtpshell.transcript import replay as replay_module
from smtpshell.transcript.model import Transcript
from smtpshell.transcript.replay import (
    ReplayOptions,
    ReplayResult,
    collect,
    load_all,
    replay_many,
)

HEAD = "# smtpshell transcript v1\ntarget: 127.0.0.1:1\n\n"
BODY = ("== connect\n"
        "<- 220 sandbox.smtpshell.test ESMTP smtpshell sandbox\n"
        "-> NOOP\n<- 250 OK\n-> QUIT\n<- 221 Bye\n")
BAD_LINE = 6  # HEAD is 3 lines, then '== connect', the greeting, then this
MALFORMED = HEAD + BODY.replace("-> NOOP", "?? NOOP", 1)


def cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=err, environ={},
                      stdin_isatty=False, stdout_isatty=False)
    return int(main(argv, env)), out.getvalue() + err.getvalue()


def folder(tmp_path: Path, count: int, bad: int | None = None) -> Path:
    tdir = tmp_path / "transcripts"
    tdir.mkdir()
    for i in range(count):
        (tdir / f"t{i:02d}.smtp").write_text(MALFORMED if i == bad else HEAD + BODY)
    return tdir


class Models:
    """Every parsed model the replay makes, by weak reference: how many were alive at once,
    counted each time one is made. The cyclic collector is off meanwhile, so a model counts
    as gone only when nothing refers to it any more (none is kept alive by a cycle that a
    later collection would have had to find)."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref[Transcript]] = []
        self.peak = 0

    def made(self, transcript: Transcript) -> Transcript:
        self.refs.append(weakref.ref(transcript))
        self.peak = max(self.peak, self.alive())
        return transcript

    def alive(self) -> int:
        return sum(ref() is not None for ref in self.refs)


@pytest.fixture
def models(monkeypatch: pytest.MonkeyPatch) -> Iterator[Models]:
    seen = Models()
    real = replay_module.load

    def load(path: object) -> Transcript:
        return seen.made(real(path))  # type: ignore[arg-type]

    monkeypatch.setattr(replay_module, "load", load)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield seen
    finally:
        if was_enabled:
            gc.enable()


def test_a_malformed_file_in_the_middle_is_its_error_among_the_others_in_order(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """With -j 1 the results come in file order; the bad file's line is named, the others
    are replayed all the same; exit 2 (an error)."""
    tdir = folder(tmp_path, 7, bad=3)
    status, out = cli(["replay", "-j", "1", "--server", f"127.0.0.1:{sandbox.port}",
                       str(tdir)])
    assert status == 2, out
    bad = tdir / "t03.smtp"
    assert f"ERROR {bad}:{BAD_LINE}: not a transcript line (starts with '??')" in out
    named = re.findall(r"^(?:PASS|FAIL|ERROR) (\S+?)(?::\d+:| )", out, re.MULTILINE)
    assert named == [str(tdir / f"t{i:02d}.smtp") for i in range(7)], out
    assert out.count("PASS ") == 6
    assert out.rstrip().endswith("6 passed, 0 failed, 1 errors")


def test_with_several_jobs_every_file_has_one_result(sandbox: Sandbox, tmp_path: Path) -> None:
    tdir = folder(tmp_path, 9, bad=4)
    status, out = cli(["replay", "-j", "3", "--server", f"127.0.0.1:{sandbox.port}",
                       str(tdir)])
    assert status == 2, out
    named = re.findall(r"^(?:PASS|FAIL|ERROR) (\S+?)(?::\d+:| )", out, re.MULTILINE)
    assert sorted(named) == [str(tdir / f"t{i:02d}.smtp") for i in range(9)], out
    assert f"ERROR {tdir / 't04.smtp'}:{BAD_LINE}: " in out
    assert "8 passed, 0 failed, 1 errors" in out


def test_at_most_jobs_parsed_models_are_alive_at_a_time(
    sandbox: Sandbox, tmp_path: Path, models: Models
) -> None:
    """Through the command line: 12 files, -j 2: never more than 2 models at once (all
    parsed first, as before, made 12)."""
    tdir = folder(tmp_path, 12)
    status, out = cli(["replay", "-q", "-j", "2", "--server", f"127.0.0.1:{sandbox.port}",
                       str(tdir)])
    assert status == 0, out
    assert "12 passed" in out
    assert len(models.refs) >= 12  # every file was parsed through the hook
    assert 1 <= models.peak <= 2, models.peak


def test_a_finished_transcript_keeps_its_result_not_its_model(
    sandbox: Sandbox, tmp_path: Path, models: Models
) -> None:
    tdir = folder(tmp_path, 5, bad=2)
    files, problems = collect([str(tdir)])
    assert not problems
    options = ReplayOptions(server=("127.0.0.1", sandbox.port), timeout=5.0)
    alive_at_report: list[int] = []

    def report(result: ReplayResult) -> None:
        alive_at_report.append(models.alive())

    results = asyncio.run(replay_many(load_all(files), options, 2, report))
    assert [r.status for r in results] == ["pass", "pass", "error", "pass", "pass"]
    assert results[2].lineno == BAD_LINE
    assert len(alive_at_report) == 5
    # the finished one's model is gone; at most the other job's is still alive
    assert max(alive_at_report) <= 1, alive_at_report
    assert models.refs and models.alive() == 0, "a parsed model outlived its replay"
