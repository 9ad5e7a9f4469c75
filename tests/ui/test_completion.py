"""Completion: the pure engine, the prompt_toolkit completer, and a real EHLO from the sandbox."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from smtpshell.protocol.replies import Capabilities
from smtpshell.protocol.sasl import Outgoing
from smtpshell.sandbox import Sandbox
from smtpshell.session import ConnectOptions, Sent, Session
from smtpshell.ui.commands import Arg, CommandSpec, Flag, Kind, unique_commands
from smtpshell.ui.completer import UNAVAILABLE_STYLE, HeaderTracker, SmtpCompleter, shell_completer
from smtpshell.ui.completion_engine import (
    EXTENSION_VERBS,
    CompletionState,
    Suggestion,
    complete,
    file_argument,
    state_from_session,
)
from smtpshell.ui.core import ShellCore
from smtpshell.ui.render import Renderer
from tests.helpers import sandbox_options

META = (
    CommandSpec(name="help", help="list the shell's commands", aliases=("?",),
                args=(Arg("COMMAND", Kind.COMMAND, optional=True),)),
    CommandSpec(name="quit", help="leave", aliases=("exit",)),
    CommandSpec(name="record", help="record a transcript",
                args=(Arg("FILE", Kind.FILE, words=("off",), optional=True),)),
    CommandSpec(name="send", help="send a file", args=(Arg("FILE", Kind.FILE),),
                flags=(Flag("--dry-run"),)),
    CommandSpec(name="load", help="load", args=(Arg("FILE", Kind.FILE),)),
    CommandSpec(name="set", help="change a setting",
                args=(Arg("KEY", Kind.WORD, words=("hints", "require-tls"), optional=True),
                      Arg("on|off", Kind.WORD, words=("on", "off"), optional=True))),
    CommandSpec(name="tls", help="TLS report",
                args=(Arg("chain", Kind.WORD, words=("chain",), optional=True),)),
    CommandSpec(name="auth", help="authenticate",
                args=(Arg("MECH", Kind.MECHANISM, optional=True,
                          words=("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2")),
                      Arg("USER", Kind.USER))),
    CommandSpec(name="explain", help="explain", args=(Arg("TOPIC", Kind.TOPIC),)),
)  # fmt: skip

SANDBOX_PLAIN = Capabilities(
    {"SIZE": "33554432", "8BITMIME": "", "SMTPUTF8": "", "STARTTLS": "", "HELP": ""}
)


def state(**kw: object) -> CompletionState:
    base: dict[str, object] = {"meta_commands": META}
    base.update(kw)
    return CompletionState(**base)  # type: ignore[arg-type]


def caps(*keywords: str, **params: str) -> Capabilities:
    return Capabilities({**dict.fromkeys(keywords, ""), **params})


def texts(text: str, st: CompletionState) -> list[str]:
    return [s.text for s in complete(text, st)]


def available(text: str, st: CompletionState) -> list[str]:
    return [s.text for s in complete(text, st) if s.available]


def unavailable(text: str, st: CompletionState) -> list[str]:
    return [s.text for s in complete(text, st) if not s.available]


# ---- verbs -------------------------------------------------------------------------------
def test_before_ehlo_every_verb_is_offered_and_starttls_comes_last() -> None:
    found = complete("", state())
    assert found[0].text == "EHLO"
    assert found[-1].text == "STARTTLS" and not found[-1].available
    assert {s.text for s in found} >= {"HELO", "MAIL", "RCPT", "DATA", "QUIT", "AUTH", "BDAT"}
    assert {"AUTH", "BDAT", "ETRN", "LHLO"} <= set(unavailable("", state()))
    assert all(s.start == 0 for s in found)
    # the ones we cannot vouch for come after all the others
    flags = [s.available for s in found]
    assert flags == sorted(flags, reverse=True)


def test_after_ehlo_advertised_verbs_first_the_rest_marked() -> None:
    st = state(capabilities=caps("STARTTLS", "CHUNKING"))
    assert {"STARTTLS", "BDAT"} <= set(available("", st))
    assert {"AUTH", "ETRN"} <= set(unavailable("", st))
    [auth] = [s for s in complete("", st) if s.text == "AUTH"]
    assert "not advertised" in auth.meta


def test_starttls_not_offered_when_not_advertised_or_under_tls() -> None:
    assert "STARTTLS" not in texts("", state(capabilities=caps("AUTH", AUTH="PLAIN")))
    assert "STARTTLS" not in texts("", state(is_tls=True))  # after STARTTLS, before EHLO
    assert "STARTTLS" not in texts("ST", state(is_tls=True, capabilities=caps("STARTTLS")))
    assert texts("st", state(capabilities=caps("STARTTLS"))) == ["starttls"]


def test_auth_is_marked_once_authenticated() -> None:
    st = state(capabilities=caps(AUTH="PLAIN"), authenticated=True)
    assert unavailable("AU", st) == ["AUTH"]


def test_lmtp_prefers_lhlo() -> None:
    assert available("", state(lmtp=True))[0] == "LHLO"
    assert {"EHLO", "HELO"} <= set(unavailable("", state(lmtp=True)))
    assert "LHLO" in unavailable("", state())


@pytest.mark.parametrize(
    ("typed", "expected", "start"),
    [
        ("M", ["MAIL"], -1),
        ("m", ["mail"], -1),
        ("Ma", ["MAIL"], -2),
        ("rc", ["rcpt"], -2),
        ("E", ["EHLO", "EXPN", "ETRN"], -1),
        ("x", [], 0),
    ],
)
def test_verbs_match_case_insensitively_and_keep_lower_case(
    typed: str, expected: list[str], start: int
) -> None:
    found = complete(typed, state(capabilities=caps("ETRN")))
    assert [s.text for s in found] == expected
    assert all(s.start == start for s in found)


def test_a_complete_word_is_not_offered_again() -> None:
    assert texts("QUIT", state()) == []
    assert texts("data", state()) == []
    assert texts("NOOP x", state()) == []


def test_suggestions_carry_display_and_a_description() -> None:
    [mail] = complete("MAI", state())
    assert mail == Suggestion(text="MAIL", start=-3, display="MAIL", meta=mail.meta)
    assert "MAIL FROM:<" in mail.meta


def test_help_and_ehlo_arguments() -> None:
    assert texts("HELP MA", state()) == ["MAIL"]
    assert texts("help st", state()) == ["starttls"]
    assert texts("EHLO ", state(ehlo_name="me.example")) == ["me.example"]
    assert texts("EHLO ", state()) == []


def test_only_the_current_line_counts() -> None:
    assert texts("MAIL FROM:<a@b>\nRC", state()) == ["RCPT"]


# ---- MAIL / RCPT -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "expected", "start"),
    [
        ("MAIL ", ["FROM:<"], 0),
        ("mail ", ["from:<"], 0),
        ("MAIL F", ["FROM:<"], -1),
        ("MAIL from", ["from:<"], -4),
        ("MAIL FROM:", ["FROM:<"], -5),
        ("RCPT ", ["TO:<"], 0),
        ("rcpt t", ["to:<"], -1),
    ],
)
def test_mail_and_rcpt_lead_to_the_address(typed: str, expected: list[str], start: int) -> None:
    found = complete(typed, state())
    assert [s.text for s in found] == expected
    assert found[0].start == start


@pytest.mark.parametrize(
    "typed", ["MAIL FROM:<", "MAIL FROM:<a@ex", "MAIL X", "RCPT FROM:<", "MAIL FROM:<a>SI"]
)
def test_nothing_while_the_address_is_typed_or_the_line_is_odd(typed: str) -> None:
    assert texts(typed, state(capabilities=caps("SIZE", "DSN"))) == []


@pytest.mark.parametrize(
    ("keyword", "params"),
    [
        ("SIZE", ["SIZE="]),
        ("8BITMIME", ["BODY=8BITMIME", "BODY=7BIT"]),
        ("BINARYMIME", ["BODY=BINARYMIME"]),
        ("SMTPUTF8", ["SMTPUTF8"]),
        ("DSN", ["RET=FULL", "RET=HDRS", "ENVID="]),
        ("REQUIRETLS", ["REQUIRETLS"]),
        ("PIPELINING", []),
    ],
)
def test_mail_parameters_follow_the_ehlo_reply(keyword: str, params: list[str]) -> None:
    assert texts("MAIL FROM:<a@example.org> ", state(capabilities=caps(keyword))) == params


def test_mail_parameters() -> None:
    st = state(capabilities=caps("SIZE", "8BITMIME", "SMTPUTF8", "DSN", SIZE="33554432"))
    assert texts("MAIL FROM:<> ", st)[:2] == ["SIZE=", "BODY=8BITMIME"]
    [size] = complete("MAIL FROM:<> S", st)[:1]
    assert (size.text, size.start) == ("SIZE=", -1)
    assert "32 MiB" in size.meta
    assert texts("mail from:<a@b> sm", st) == ["smtputf8"]
    # parameters already given are not offered again
    assert "SIZE=" not in texts("MAIL FROM:<a@b> SIZE=100 ", st)
    assert not any(t.startswith("BODY") for t in texts("MAIL FROM:<a@b> BODY=7BIT R", st))
    assert texts("MAIL FROM:<a@b> SMTPUTF8", st) == []
    assert texts("MAIL FROM:<> ", state()) == []  # no EHLO: nothing is known


def test_rcpt_parameters_need_dsn() -> None:
    assert texts("RCPT TO:<b@example.org> ", state(capabilities=caps("DSN"))) == [
        "NOTIFY=",
        "ORCPT=",
    ]
    assert texts("RCPT TO:<b@example.org> n", state(capabilities=caps("DSN"))) == ["notify="]
    assert texts("RCPT TO:<b@example.org> ", state(capabilities=caps("SIZE", "8BITMIME"))) == []


# ---- AUTH --------------------------------------------------------------------------------
def test_auth_offers_the_advertised_mechanisms() -> None:
    st = state(capabilities=caps(AUTH="CRAM-MD5 LOGIN PLAIN"))
    assert texts("AUTH ", st) == ["CRAM-MD5", "LOGIN", "PLAIN"]
    assert texts("AUTH P", st) == ["PLAIN"]
    assert texts("auth l", st) == ["login"]
    assert texts("AUTH PLAIN ", st) == []  # never guess an initial response
    assert texts("AUTH ", state(capabilities=caps("SIZE"))) == []
    assert texts("AUTH ", state()) == []


def test_auth_exchange_completes_nothing() -> None:
    st = state(in_auth=True, capabilities=caps(AUTH="PLAIN"))
    for typed in ["", "M", "/", "/he", "AUTH "]:
        assert texts(typed, st) == []


# ---- meta-commands -----------------------------------------------------------------------
def test_meta_command_names() -> None:
    found = complete("/", state())
    assert [s.text for s in found] == ["/" + m.name for m in META]
    assert all(s.start == -1 for s in found)
    [help_] = complete("/he", state())
    assert (help_.text, help_.start, help_.display, help_.meta) == (
        "/help",
        -3,
        "/help",
        "list the shell's commands",
    )
    assert texts("/HE", state()) == ["/help"]
    assert texts("/help", state()) == []
    assert texts("/nothing", state()) == []


def test_meta_aliases_are_offered_when_only_they_match() -> None:
    [exit_] = complete("/exi", state())
    assert exit_.text == "/exit" and "/quit" in exit_.meta
    assert texts("/q", state()) == ["/quit"]


def test_meta_arguments() -> None:
    assert texts("/help ", state()) == [m.name for m in META]
    assert texts("/help re", state()) == ["record"]
    assert texts("/? q", state()) == ["quit"]
    assert texts("/tls ", state()) == ["chain"]
    assert texts("/tls chain ", state()) == []
    assert texts("/set ", state()) == ["hints", "require-tls"]
    assert texts("/set req", state()) == ["require-tls"]
    assert texts("/set hints ", state()) == ["on", "off"]
    assert texts("/set hints on ", state()) == []
    assert texts("/quit ", state()) == []
    assert texts("/unknown ", state()) == []


def test_meta_commands_in_data_mode_use_the_escape() -> None:
    st = state(in_data=True)
    with_status = state(in_data=True, meta_commands=(*META, CommandSpec(name="status")))
    assert texts("/!st", with_status) == ["/!status"]
    assert complete("/!he", st)[0].start == -4
    assert texts("/!tls ", st) == ["chain"]
    assert texts("/he", st) == []  # a line for the server


def test_the_registry_declares_what_completion_offers() -> None:
    specs = tuple(unique_commands())
    by_name = {s.name: s for s in specs}
    assert by_name["help"].aliases == ("?",)
    st = state(meta_commands=specs, capabilities=caps(AUTH="LOGIN PLAIN"))
    assert texts("/tls ", st) == ["chain"]
    assert texts("/set ", st) == ["hints", "require-tls", "auth-in-clear"]
    assert texts("/set hints ", st) == ["on", "off"]
    assert texts("/help recor", st) == ["record"]
    assert texts("/send x.eml ", st) == ["--bdat", "--force", "--chunk"]
    assert texts("/send x.eml --chunk ", st) == []
    assert available("/auth ", st) == ["PLAIN", "LOGIN"]
    assert unavailable("/auth ", st) == ["CRAM-MD5", "XOAUTH2"]
    assert texts("/auth PLAIN ", st) == []  # a user name: nothing to guess
    assert sorted(texts("/explain pipe", st)) == ["PIPECONNECT", "PIPELINING"]


def test_usage_lines_come_from_the_declarations() -> None:
    usage = {m.name: m.usage for m in unique_commands()}
    assert usage["send"] == "/send FILE [--bdat] [--force] [--chunk N]"
    assert usage["bdat"] == "/bdat FILE [--force] [--chunk N]"
    assert usage["record"] == "/record [FILE|off] [--force]"
    assert usage["set"] == "/set [hints|require-tls|auth-in-clear] [on|off]"
    assert usage["tls"] == "/tls [chain]"
    assert usage["help"] == "/help [COMMAND]"
    assert usage["auth"] == "/auth [MECH] [USER]"
    assert usage["msg"] == "/msg FROM TO[,TO...] [SUBJECT...]"


def test_mechanisms_before_ehlo_are_all_marked() -> None:
    found = complete("/auth ", state())
    assert sorted(s.text for s in found) == ["CRAM-MD5", "LOGIN", "PLAIN", "XOAUTH2"]
    assert not any(s.available for s in found)
    assert "send EHLO" in found[0].meta


# ---- files -------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "mail.eml").write_text("Subject: x\r\n\r\nhi\r\n")
    (tmp_path / "mailbox").mkdir()
    (tmp_path / "mailbox" / "one.txt").write_text("1")
    (tmp_path / "notes.txt").write_text("n")
    (tmp_path / ".hidden").write_text("h")
    return tmp_path


def file_texts(text: str, st: CompletionState, cwd: Path | None = None) -> list[str]:
    """What the prompt_toolkit completer offers (words, then file names)."""
    completer = SmtpCompleter(lambda: st, cwd=(lambda: str(cwd)) if cwd else None)
    return [c[0] for c in completions(completer, text)]


def test_file_names_for_commands_that_take_a_file(files: Path) -> None:
    assert file_texts("/load ", state(), files) == ["mail.eml", "mailbox/", "notes.txt"]
    completer = SmtpCompleter(state, cwd=lambda: str(files))
    assert completions(completer, "/load ma") == [
        ("il.eml", 0, "mail.eml", "file", ""),
        ("ilbox/", 0, "mailbox/", "directory", ""),
    ]
    assert file_texts("/load mailbox/", state(), files) == ["one.txt"]
    assert file_texts("/load .", state(), files) == ["hidden"]
    assert file_texts("/load nothere/", state(), files) == []
    assert file_texts("/load notes.txt", state(), files) == []
    assert file_texts(f"/load {files}/no", state()) == ["tes.txt"]  # absolute path


def test_declared_arguments_decide_where_files_go(files: Path) -> None:
    # "/record [FILE|off]": the literal word, then the files
    assert file_texts("/record ", state(), files) == ["off", "mail.eml", "mailbox/", "notes.txt"]
    assert file_texts("/record o", state(), files) == ["off"]
    # "/send FILE [--dry-run]": files first, then the flag
    assert file_texts("/send n", state(), files) == ["otes.txt"]
    assert file_texts("/send notes.txt ", state(), files) == ["--dry-run"]
    # options: after the positional arguments, or when a "-" is typed; not twice;
    # a value-taking option waits for its value
    spec = CommandSpec(name="put", args=(Arg("FILE", Kind.FILE),),
                       flags=(Flag("--bdat"), Flag("--chunk", "N")))  # fmt: skip
    st = state(meta_commands=(spec,))
    assert file_texts("/put -", st, files) == ["--bdat", "--chunk"]
    assert file_texts("/put mail.eml ", st, files) == ["--bdat", "--chunk"]
    assert file_texts("/put mail.eml --bdat ", st, files) == ["--chunk"]
    assert file_texts("/put mail.eml --chunk ", st, files) == []
    assert file_texts("/put mail.eml --chunk 100 --", st, files) == ["--bdat"]
    # commands without a file argument never list files
    assert file_texts("/tls ", state(), files) == ["chain"]
    assert file_argument("/tls ", state()) is None
    assert file_argument("/record ma", state()) == "ma"
    assert file_argument("/!record ma", state(in_data=True)) == "ma"
    assert file_argument("/record ma", state(in_auth=True)) is None


def test_files_relative_to_the_working_directory(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(files)
    assert file_texts("/load no", state()) == ["tes.txt"]
    assert os.getcwd() == str(files)


# ---- DATA --------------------------------------------------------------------------------
def test_data_mode_headers_only_in_the_header_section() -> None:
    st = state(in_data=True)
    found = complete("Sub", st)
    assert [(s.text, s.start, s.display) for s in found] == [("Subject: ", -3, "Subject:")]
    assert texts("m", st) == ["Message-ID: ", "MIME-Version: "]
    assert texts("Subject", st) == ["Subject: "]
    for typed in ["", "Subject: hi", "x y", ".", "/he", "MAIL FROM:<a@b> "]:
        assert texts(typed, st) == [], typed
    assert "MAIL" not in texts("MA", st)  # no SMTP verbs inside a message
    assert texts("Sub", state(in_data=True, data_headers=False)) == []


# ---- state from a session, and the prompt_toolkit completer --------------------------------
def test_state_from_an_unconnected_session() -> None:
    session = Session(ConnectOptions(port=1, ehlo_name="me.test", lmtp=True))
    st = state_from_session(session, unique_commands())
    assert st.capabilities is None and not st.is_tls and not st.in_data
    assert st.lmtp and st.ehlo_name == "me.test"
    assert any(m.name == "help" for m in st.meta_commands)


def completions(completer: SmtpCompleter, text: str) -> list[tuple[str, int, str, str, str]]:
    doc = Document(text, len(text))
    return [
        (c.text, c.start_position, c.display_text, c.display_meta_text, c.style)
        for c in completer.get_completions(doc, CompleteEvent(completion_requested=True))
    ]


def test_prompt_toolkit_completer_reads_the_live_state() -> None:
    current = [state()]
    completer = SmtpCompleter(lambda: current[0])
    before = completions(completer, "AU")
    assert [(t, start, disp, style) for t, start, disp, _, style in before] == [
        ("AUTH", -2, "AUTH", UNAVAILABLE_STYLE)
    ]
    current[0] = state(capabilities=caps(AUTH="PLAIN LOGIN"))
    assert [(*c[:3], c[4]) for c in completions(completer, "au")] == [("auth", -2, "auth", "")]
    assert [c[0] for c in completions(completer, "AUTH ")] == ["PLAIN", "LOGIN"]
    # the cursor decides: only what is before it counts
    doc = Document("MAIL FROM:<a@b>", cursor_position=2)
    found = list(completer.get_completions(doc, CompleteEvent(text_inserted=True)))
    assert [c.text for c in found] == ["MAIL"]


def test_completer_working_directory(files: Path) -> None:
    completer = SmtpCompleter(state, cwd=lambda: str(files))
    assert [c[0] for c in completions(completer, "/load mailbox/")] == ["one.txt"]


def test_header_tracker_follows_the_message() -> None:
    tracker = HeaderTracker()

    def sent(text: str, in_data: bool) -> Sent:
        return Sent(out=Outgoing(text), data=text.encode() + b"\r\n", tls=False, in_data=in_data)

    tracker(sent("DATA", False))
    assert tracker.in_headers
    tracker(sent("Subject: x", True))
    assert tracker.in_headers
    tracker(sent("", True))
    assert not tracker.in_headers
    tracker(sent("body", True))
    tracker(sent(".", True))
    assert not tracker.in_headers
    tracker(sent("MAIL FROM:<>", False))
    assert tracker.in_headers


# ---- against the real sandbox ------------------------------------------------------------


def extension_verbs(st: CompletionState) -> set[str]:
    return {s.text for s in complete("", st) if s.available and s.text in EXTENSION_VERBS}


def test_completion_follows_a_real_ehlo(sandbox: Sandbox) -> None:
    snapshots: dict[str, CompletionState] = {}

    async def run() -> None:
        session = Session(sandbox_options(sandbox))
        await session.connect()
        snapshots["greeted"] = state_from_session(session, unique_commands())
        await session.ehlo()
        snapshots["plain"] = state_from_session(session, unique_commands())
        [reply] = await session.send("STARTTLS")
        assert reply.code == 220
        snapshots["tls"] = state_from_session(session, unique_commands())
        await session.ehlo()
        snapshots["tls-ehlo"] = state_from_session(session, unique_commands())
        await session.send("QUIT")
        await session.close()

    asyncio.run(run())

    greeted = snapshots["greeted"]
    assert complete("", greeted)[-1].text == "STARTTLS"

    plain = snapshots["plain"]
    assert plain.capabilities is not None
    assert extension_verbs(plain) == {"STARTTLS"}
    assert "AUTH" in unavailable("", plain)  # not advertised before TLS
    assert texts("AUTH ", plain) == []
    assert texts("MAIL FROM:<a@example.org> ", plain) == [
        "SIZE=",
        "BODY=8BITMIME",
        "BODY=7BIT",
        "SMTPUTF8",
    ]
    assert texts("RCPT TO:<b@example.org> ", plain) == []  # no DSN

    tls = snapshots["tls"]
    assert tls.is_tls and tls.capabilities is None
    assert "STARTTLS" not in texts("", tls)

    after = snapshots["tls-ehlo"]
    assert extension_verbs(after) == {"AUTH"}
    assert "STARTTLS" not in texts("", after)
    assert sorted(texts("AUTH ", after)) == ["CRAM-MD5", "LOGIN", "PLAIN"]


def test_shell_completer_through_a_shell_core(sandbox: Sandbox) -> None:
    seen: dict[str, list[str]] = {}

    async def run() -> None:
        core = ShellCore(sandbox_options(sandbox), Renderer(io.StringIO()))
        completer = shell_completer(core)
        assert await core.connect() == 0
        seen["verbs"] = [c[0] for c in completions(completer, "ST")]
        for line in ["EHLO me", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA"]:
            await core.handle_line(line)
        seen["headers"] = [c[0] for c in completions(completer, "Subj")]
        seen["meta"] = [c[0] for c in completions(completer, "/!sta")]
        await core.handle_line("Subject: hi")
        await core.handle_line("")
        seen["body"] = [c[0] for c in completions(completer, "Subj")]
        await core.handle_line(".")
        await core.handle_line("/reconnect")  # a new session: the completer follows it
        seen["reconnected"] = [c[0] for c in completions(completer, "MAIL FROM:<> ")]
        await core.run_meta("quit", "")
        await core.close()

    asyncio.run(run())
    assert seen["verbs"] == ["STARTTLS"]
    assert seen["headers"] == ["Subject: "]
    assert seen["meta"] == ["/!status"]
    assert seen["body"] == []
    assert seen["reconnected"] == []  # no EHLO yet on the new connection
    assert len(sandbox.messages()) == 1
