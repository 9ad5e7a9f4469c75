"""Tests for the one redaction point, smtpshell.protocol.sasl.redact: every spelling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtpshell.escapes import format_escapes, is_terminal_safe
from smtpshell.protocol.sasl import REDACTED, Classifier, Outgoing, Redactor, b64
from smtpshell.protocol.sasl.mechanisms import CramMd5, Credential, Login, Plain, XOAuth2
from smtpshell.protocol.sasl.redact import for_report, mask_answer, placeholder

PLAIN = b64(b"\0alice\0s3cret!")
PLAIN_REF = "{{secret:plain user=alice password=$SMTPSHELL_PASSWORD}}"
CRAM_ANSWER = b64(b"alice 287eb355114cf5c471c26a875f1ca4ae")


def typed(*lines: str, in_auth_after_first: bool = True) -> list[Outgoing]:
    """Classify lines as typed one after the other; every line after an AUTH line is sent
    inside the exchange (the server answered 334)."""
    c = Classifier()
    out = []
    in_auth = False
    for line in lines:
        out.append(c.line(line, in_data=False, in_auth=in_auth))
        in_auth = in_auth or (in_auth_after_first and line.split()[:1] != [])
    return out


@pytest.mark.parametrize(
    "line",
    [
        f"AUTH PLAIN {PLAIN}",
        f" AUTH PLAIN {PLAIN}",
        f"\tAUTH PLAIN {PLAIN}",
        f"auth plain {PLAIN}",
        f"AUTH\tPLAIN\t{PLAIN}",
        f"Auth  Plain  {PLAIN}  ",
    ],
)
def test_plain_initial_response_in_every_spelling(line: str) -> None:
    out = Classifier().line(line, in_data=False, in_auth=False)
    assert out.secret and out.credential == Credential("plain", "alice")
    assert PLAIN not in out.text and PLAIN not in out.shown and "s3cret" not in out.display
    assert out.text.endswith(PLAIN_REF)
    assert out.text.split()[:2] == line.split()[:2]  # the user's own spelling stays
    assert out.shown.endswith("<credential redacted: \\0alice\\0 + password>")
    assert out.line == line  # the wire is untouched


def test_the_screen_never_shows_base64_of_a_mask() -> None:
    out = Classifier().line(f"AUTH PLAIN {PLAIN}", in_data=False, in_auth=False)
    assert "KioqKg" not in out.display and "****" not in out.display
    assert b64(b"\0alice\0****") not in out.display


def test_login_exchange_by_hand() -> None:
    start, user, password = typed("AUTH LOGIN", b64(b"alice"), b64(b"s3cret!"))
    assert not start.secret and start.text == "AUTH LOGIN"
    assert not user.secret and user.meaning == '→ "alice"'
    assert user.credential == Credential("login:user", "alice")
    assert password.secret and password.credential == Credential("login:password")
    assert password.text == "{{secret:login password=$SMTPSHELL_PASSWORD}}"
    assert password.shown == "<credential redacted: password>"


def test_login_with_initial_response_counts_it() -> None:
    _, password = typed(f"AUTH LOGIN {b64(b'alice')}", b64(b"s3cret!"))
    assert password.secret and password.credential == Credential("login:password")


def test_cram_md5_answer_is_redacted_against_dictionary_attacks() -> None:
    start, answer = typed("AUTH CRAM-MD5", CRAM_ANSWER)
    assert not start.secret
    assert answer.secret and CRAM_ANSWER not in answer.text
    assert answer.text == "{{secret:cram-md5 user=alice password=$SMTPSHELL_PASSWORD}}"
    assert "287eb355" not in answer.display


def test_xoauth2() -> None:
    blob = b64(b"user=a@b\x01auth=Bearer tok123\x01\x01")
    out = Classifier().line(f"AUTH XOAUTH2 {blob}", in_data=False, in_auth=False)
    assert out.text == "AUTH XOAUTH2 {{secret:xoauth2 user=a@b token=$SMTPSHELL_TOKEN}}"
    assert "tok123" not in out.display and blob not in out.display


@pytest.mark.parametrize(
    "line",
    [
        "AUTH PLAIN user hunter2",  # raw credentials, two words
        "AUTH PLAIN AHVz!XIAcGFzcw==",  # not base64
        "AUTH OAUTHBEARER " + b64(b"n,a=u,\x01auth=Bearer t\x01\x01"),  # unknown mechanism
        "AUTH CRAM-MD5 Zm9vYmFy",  # CRAM-MD5 has no initial response
    ],
)
def test_what_cannot_be_rebuilt_is_redacted_whole(line: str) -> None:
    out = Classifier().line(line, in_data=False, in_auth=False)
    assert out.secret and out.text.endswith(REDACTED)
    assert line.split()[2] not in out.text and line.split()[2] not in out.display


def test_cancel_empty_and_ordinary_lines() -> None:
    _, cancel = typed("AUTH LOGIN", " * ")
    assert not cancel.secret and "cancels" in cancel.meaning and cancel.text == " * "
    _, empty = typed("AUTH PLAIN", "")
    assert not empty.secret and empty.text == ""
    eq = Classifier().line("AUTH PLAIN =", in_data=False, in_auth=False)
    assert not eq.secret and eq.text == "AUTH PLAIN ="
    mail = Classifier().line("MAIL FROM:<a@b>", in_data=False, in_auth=False)
    assert mail == Outgoing("MAIL FROM:<a@b>")


def test_inside_data_nothing_is_taken_for_auth() -> None:
    out = Classifier().line(f"AUTH PLAIN {PLAIN}", in_data=True, in_auth=False)
    assert not out.secret and out.text == out.line


def test_answer_of_an_unknown_exchange_is_secret() -> None:
    out = Classifier().line("Zm9vYmFy", in_data=False, in_auth=True)
    assert out.secret and out.text == REDACTED


def test_warnings_teach() -> None:
    out = Classifier().line("AUTH PLAIN " + b64(b"\0alice\0pass\n"), in_data=False,
                            in_auth=False)
    assert any("echo" in w for w in out.warnings)
    assert any("one initial response" in w for w in Classifier().line(
        "AUTH PLAIN a b", in_data=False, in_auth=False).warnings)


def test_redactor_is_the_second_look() -> None:
    r = Redactor()
    r.add_secret("hunter22")
    c = Classifier(r)
    out = c.line("Subject: my password is hunter22", in_data=True, in_auth=False)
    assert out.secret and "hunter22" not in out.text and "hunter22" not in out.shown


class TestRaw:
    def test_auth_plain_in_a_raw_payload(self) -> None:
        data = f"AUTH PLAIN {PLAIN}\r\n".encode()
        out = Classifier().raw(data, in_data=False, in_auth=False)
        assert out.raw == data and out.secret
        assert out.text == f"AUTH PLAIN {PLAIN_REF}\\r\\n"
        assert PLAIN not in out.shown and "\\r\\n" in out.shown
        assert [p.credential for p in out.parts] == [Credential("plain", "alice")]

    def test_lines_sent_one_by_one_follow_the_exchange(self) -> None:
        """A /raw exchange goes line by line: nothing after a CRLF is not an answer, so
        the user name is the first answer and the password the second."""
        c = Classifier()
        c.raw(b"AUTH LOGIN\r\n", in_data=False, in_auth=False)
        user = c.raw(f"{b64(b'alice')}\r\n".encode(), in_data=False, in_auth=True)
        password = c.raw(f"{b64(b'pw-pw-pw')}\r\n".encode(), in_data=False, in_auth=True)
        assert not user.secret and user.credential is None
        assert password.secret
        assert password.text == "{{secret:login password=$SMTPSHELL_PASSWORD}}\\r\\n"

    def test_login_exchange_pipelined_in_one_payload(self) -> None:
        data = f"AUTH LOGIN\r\n{b64(b'alice')}\r\n{b64(b'pw-pw-pw')}\r\n".encode()
        out = Classifier().raw(data, in_data=False, in_auth=False)
        assert out.secret and b64(b"pw-pw-pw") not in out.text
        assert "{{secret:login password=$SMTPSHELL_PASSWORD}}" in out.text

    def test_ordinary_payload_is_left_alone(self) -> None:
        out = Classifier().raw(b"NOOP\r\n", in_data=False, in_auth=False)
        assert not out.secret and out.text == "NOOP\\r\\n" and out.raw == b"NOOP\r\n"


class TestFromStep:
    @pytest.mark.parametrize(
        "mech", [Plain("alice", "s3cret!"), XOAuth2("alice", "s3cret!")]
    )
    def test_initial_response_steps(self, mech: Plain | XOAuth2) -> None:
        out = Classifier().from_step(mech.start(), mech.name, first=True)
        assert out.origin == "shell" and out.secret
        assert out.shown.startswith(f"AUTH {mech.name} <credential redacted")
        assert out.text.startswith(f"AUTH {mech.name} {{{{secret:")
        assert "s3cret" not in out.display and mech.start().line.split()[-1] not in out.display

    def test_login_user_is_shown_decoded(self) -> None:
        mech = Login("alice", "s3cret!")
        c = Classifier()
        c.from_step(mech.start(), "LOGIN", first=True)
        user = c.from_step(mech.step("VXNlcm5hbWU6"), "LOGIN")
        assert user.display == 'YWxpY2U=  → "alice"'
        password = c.from_step(mech.step("UGFzc3dvcmQ6"), "LOGIN")
        assert password.display == "<credential redacted: password>"

    def test_cram_md5(self) -> None:
        mech = CramMd5("alice", "s3cret!")
        c = Classifier()
        c.from_step(mech.start(), "CRAM-MD5", first=True)
        out = c.from_step(mech.step(b64(b"<1.2@x>")), "CRAM-MD5")
        assert out.secret and out.display == "<credential redacted: alice + HMAC-MD5 digest>"


class TestHistory:
    def test_paste_with_a_login_exchange(self) -> None:
        text = "EHLO x\nAUTH LOGIN\n" + b64(b"alice") + "\n" + b64(b"s3cret!") + "\nQUIT"
        kept = Classifier().history(text, in_data=False, in_auth=False)
        assert b64(b"s3cret!") not in kept
        assert kept.split("\n")[0] == "EHLO x" and kept.split("\n")[-1] == "QUIT"

    def test_typed_answer_in_an_exchange(self) -> None:
        c = Classifier()
        c.line("AUTH LOGIN", in_data=False, in_auth=False)
        c.line(b64(b"alice"), in_data=False, in_auth=True)
        kept = c.history(b64(b"s3cret!"), in_data=False, in_auth=True)
        assert kept == "{{secret:login password=$SMTPSHELL_PASSWORD}}"


def test_placeholder_falls_back_when_the_user_cannot_be_written() -> None:
    assert placeholder(Credential("plain", "a b")) == REDACTED
    assert placeholder(Credential("plain", "al}ce")) == REDACTED
    assert placeholder(None) == REDACTED
    assert placeholder(Credential("plain", "u", "boss")).endswith("authzid=boss}}")


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (f"AUTH PLAIN {PLAIN}", "AUTH PLAIN <credential redacted>"),
        (f"-> auth plain {PLAIN}", "-> auth plain <credential redacted>"),
        (f"~> AUTH PLAIN {PLAIN_REF}", f"~> AUTH PLAIN {PLAIN_REF}"),
        ("AUTH LOGIN", "AUTH LOGIN"),
        ("MAIL FROM:<a@b>", "MAIL FROM:<a@b>"),
    ],
)
def test_for_report(line: str, shown: str) -> None:
    assert for_report(line) == shown


def test_mask_answer() -> None:
    assert mask_answer("cGFzcw==") == "<credential redacted>"
    assert mask_answer("*") == "*" and mask_answer("") == ""


@given(st.text(), st.booleans(), st.booleans())
def test_never_raises_and_masks_are_terminal_safe(line: str, in_auth: bool, data: bool) -> None:
    c = Classifier()
    out = c.line(line, in_data=data, in_auth=in_auth)
    assert isinstance(out.text, str)
    if out.secret:
        assert "<credential redacted" in out.shown or REDACTED in out.text
    raw = c.raw(line.encode("utf-8", "surrogatepass"), in_data=data, in_auth=in_auth)
    assert is_terminal_safe(raw.text) or raw.text == format_escapes(raw.raw or b"")


@given(
    st.text(st.characters(exclude_characters="\0", exclude_categories=["Cs"])),
    st.text(st.characters(exclude_characters="\0", exclude_categories=["Cs"])),
    st.text(st.characters(exclude_characters="\0\r\n", exclude_categories=["Cs"]), min_size=1),
)
def test_plain_is_always_masked(authzid: str, user: str, password: str) -> None:
    encoded = b64(f"{authzid}\0{user}\0{password}".encode())
    out = Classifier().line(f"AUTH PLAIN {encoded}", in_data=False, in_auth=False)
    assert out.secret and encoded not in out.text and encoded not in out.display
    assert out.text.startswith("AUTH PLAIN {{secret:")


@pytest.mark.parametrize(("tail", "named"), [(b"\n", "a newline"), (b"\r\n", "CR LF")])
def test_an_echo_made_answer_is_named_at_once_for_plain_and_login(tail: bytes,
                                                                    named: str) -> None:
    """`echo pass | base64`: one line says the password ends in a newline, never shows it."""
    plain = Classifier().line("AUTH PLAIN " + b64(b"\0alice\0s3cret!" + tail),
                              in_data=False, in_auth=False)
    *_, login = typed("AUTH LOGIN", b64(b"alice"), b64(b"s3cret!" + tail))
    for out in (plain, login):
        hints = [w for w in out.warnings if "ending in" in w]
        assert hints == [f"the base64 answer decodes to a password ending in {named}, sent as"
                         " part of it (probably `echo` without -n; use `printf '%s'` or /b64)"]
        assert "s3cret" not in " ".join(out.warnings) + out.display + out.text
        assert out.secret and "\n" not in hints[0]


def test_a_user_name_made_with_echo_is_named_too() -> None:
    _, user = typed("AUTH LOGIN", b64(b"alice\n"))
    assert any("decodes to a user name ending in a newline" in w for w in user.warnings)


def test_a_clean_answer_has_no_newline_hint() -> None:
    *_, login = typed("AUTH LOGIN", b64(b"alice"), b64(b"s3cret!"))
    assert not any("ending in" in w for w in login.warnings)
