"""The bottom toolbar: facts of plain and TLS sessions against the real sandbox."""

from __future__ import annotations

import asyncio
import base64
import io

import pytest

from smtpshell.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, Sandbox
from smtpshell.session import ConnectOptions, Session
from smtpshell.tls import TlsOptions
from smtpshell.ui.core import Settings, ShellCore
from smtpshell.ui.render import Renderer
from smtpshell.ui.toolbar import TOOLBAR_STYLE, Fragments, human_size, toolbar_fragments
from tests.helpers import sandbox_options


def text(fragments: Fragments) -> str:
    return "".join(t for _, t in fragments)


def styled(fragments: Fragments, style: str) -> list[str]:
    return [t for s, t in fragments if s == f"class:{style}"]




@pytest.mark.parametrize(
    ("octets", "shown"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (10240000, "9.8 MiB"),
        (33554432, "32 MiB"),
        (150 * 2**20, "150 MiB"),
        (5 * 2**40, "5 TiB"),
    ],
)
def test_human_size(octets: int, shown: str) -> None:
    assert human_size(octets) == shown


def test_a_session_that_never_connected() -> None:
    session = Session(ConnectOptions(host="127.0.0.1", port=1))
    frags = toolbar_fragments(session.snapshot())
    assert styled(frags, "toolbar.target") == [" 127.0.0.1:1 "]
    assert styled(frags, "toolbar.closed") == ["closed"]
    assert "plain" not in text(frags) and "stage" not in text(frags)
    assert "REC" in text(toolbar_fragments(session.snapshot(), recording="s.txt"))


def test_every_style_class_is_defined() -> None:
    session = Session(ConnectOptions(host="127.0.0.1", port=1))
    frags = toolbar_fragments(session.snapshot(), Settings(require_tls=True), recording="x")
    for style, _ in frags:
        if style:
            assert style.removeprefix("class:") in TOOLBAR_STYLE


def test_plain_then_tls_session(sandbox: Sandbox) -> None:
    bars: dict[str, Fragments] = {}
    plain_auth = base64.b64encode(f"\0{DEFAULT_USER}\0{DEFAULT_PASSWORD}".encode()).decode()

    async def run() -> None:
        session = Session(sandbox_options(sandbox))
        await session.connect()
        bars["greeted"] = toolbar_fragments(session.snapshot())
        await session.ehlo()
        bars["plain"] = toolbar_fragments(session.snapshot(), Settings(require_tls=True))
        await session.send("MAIL FROM:<a@example.org>")
        bars["mail"] = toolbar_fragments(session.snapshot(), recording="session.smtp")
        await session.send("RSET")
        await session.send("STARTTLS")
        bars["tls"] = toolbar_fragments(session.snapshot(), Settings(require_tls=True))
        assert session.tls_report is not None
        bars["expected"] = [("", f"{session.tls_report.version} {session.tls_report.cipher}")]
        await session.ehlo()
        [reply] = await session.send(f"AUTH PLAIN {plain_auth}")
        assert reply.code == 235
        assert session.auth_user == DEFAULT_USER  # the core learnt it from the exchange
        bars["authenticated"] = toolbar_fragments(session.snapshot())
        await session.send("MAIL FROM:<a@example.org>")
        await session.send("RCPT TO:<b@example.org>")
        bars["rcpt"] = toolbar_fragments(session.snapshot())
        await session.send("DATA")
        bars["data"] = toolbar_fragments(session.snapshot())
        await session.send(".")
        await session.send("QUIT")
        await session.close()
        bars["closed"] = toolbar_fragments(session.snapshot())

    asyncio.run(run())
    target = f" 127.0.0.1:{sandbox.port} "

    greeted = bars["greeted"]
    assert styled(greeted, "toolbar.target") == [target]
    assert styled(greeted, "toolbar.ok") == ["connected"]
    assert styled(greeted, "toolbar.plain") == ["plain"]
    assert styled(greeted, "toolbar.dim") == ["no auth"]
    assert styled(greeted, "toolbar.stage") == ["stage idle"]
    assert "SIZE" not in text(greeted)  # no EHLO yet

    plain = bars["plain"]
    assert styled(plain, "toolbar.size") == ["SIZE 32 MiB"]
    assert styled(plain, "toolbar.warn") == ["require-TLS"]  # required, and not there yet
    assert styled(bars["mail"], "toolbar.stage") == ["stage mail"]
    assert styled(bars["mail"], "toolbar.rec") == ["● REC session.smtp"]

    tls = bars["tls"]
    [(_, expected)] = bars["expected"]
    assert expected.startswith("TLSv1.")
    assert styled(tls, "toolbar.tls")[0] == expected
    assert "unverified" not in text(tls)
    assert "plain" not in text(tls)
    assert "SIZE" not in text(tls)  # capabilities are forgotten after STARTTLS
    assert styled(tls, "toolbar.tls")[-1] == "require-TLS"

    assert styled(bars["authenticated"], "toolbar.auth") == [f"user {DEFAULT_USER}"]
    assert styled(bars["rcpt"], "toolbar.auth") == [f"user {DEFAULT_USER}"]
    assert styled(bars["rcpt"], "toolbar.stage") == ["stage rcpt"]
    assert styled(bars["rcpt"], "toolbar.size") == ["SIZE 32 MiB"]
    assert styled(bars["data"], "toolbar.stage") == ["stage data"]

    closed = bars["closed"]
    assert styled(closed, "toolbar.closed") == ["closed"]
    assert "TLS" not in text(closed)


def test_unverified_tls_is_flagged(sandbox: Sandbox) -> None:
    async def run() -> Fragments:
        session = Session(sandbox_options(sandbox, tls=TlsOptions(insecure=True)))
        await session.connect()
        await session.send("STARTTLS")
        frags = toolbar_fragments(session.snapshot())
        await session.send("QUIT")
        await session.close()
        return frags

    frags = asyncio.run(run())
    assert styled(frags, "toolbar.warn") == [" unverified"]
    assert styled(frags, "toolbar.tls")[0].startswith("TLSv1.")



HOSTILE = "\x1b]0;pwned\x07\x1b]52;c;cHduZWQ=\x07\x1b[2J\x9b31m\r\n\u202e\u2066\u200b\ufeff"
HOSTILE_SHOWN = ("\\x1b]0;pwned\\x07\\x1b]52;c;cHduZWQ=\\x07\\x1b[2J\\x9b31m\\x0d\\x0a"
                 "\\u202e\\u2066\\u200b\\ufeff")
UNSAFE = {ch for ch in HOSTILE if not ch.isprintable()}


async def accepts_anyone(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 lenient ESMTP\r\n")
    while line := await reader.readline():
        verb = line.split(b" ", 1)[0].strip().upper()
        if verb == b"EHLO":
            writer.write(b"250-lenient\r\n250 AUTH PLAIN\r\n")
        elif verb == b"AUTH":
            writer.write(b"235 2.7.0 welcome\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"250 ok\r\n")
        await writer.drain()


def test_outside_text_in_the_toolbar_and_status_is_escaped() -> None:
    """The user name (--user, echoed back), the target as given and the transcript name
    reach the toolbar and /status escaped: prompt_toolkit would pass bidi characters on as
    they are, and a CR or LF would break the bar."""
    from tests.hostile.more_servers import shell_options
    from tests.hostile.servers import serve

    out = io.StringIO()
    bars: dict[str, Fragments] = {}

    async def run() -> None:
        async with serve(accepts_anyone) as srv:
            settings = Settings(user="eve" + HOSTILE, auth="plain", allow_plain_auth=True,
                                password_env="PW", environ={"PW": "pw"})
            core = ShellCore(shell_options(srv.port), Renderer(out), settings=settings)
            await core.connect()
            assert core.session.authenticated, out.getvalue()
            bars["auth"] = toolbar_fragments(core.session.snapshot(), settings,
                                             recording="rec" + HOSTILE)
            await core.handle_line("/status")
            await core.handle_line("QUIT")
            await core.close()

    asyncio.run(run())
    never = Session(ConnectOptions(host="mx" + HOSTILE, port=25))
    bars["target"] = toolbar_fragments(never.snapshot())
    assert styled(bars["auth"], "toolbar.auth") == ["user eve" + HOSTILE_SHOWN]
    assert styled(bars["auth"], "toolbar.rec") == ["● REC rec" + HOSTILE_SHOWN]
    assert styled(bars["target"], "toolbar.target") == [f" mx{HOSTILE_SHOWN}:25 "]
    for bar in bars.values():
        shown = text(bar)
        assert not any(ch in shown for ch in UNSAFE), shown
    printed = out.getvalue()
    assert f"  auth        eve{HOSTILE_SHOWN}\n" in printed  # /status
    assert f"authenticated as eve{HOSTILE_SHOWN}" in printed  # the AUTH outcome
    assert not any(ch in printed for ch in UNSAFE - {"\n"}), printed
