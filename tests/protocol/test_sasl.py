"""Tests for smtpshell.protocol.sasl: base64, mechanisms, the redactor; explain.auth."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import smtplib
from collections.abc import Callable
from typing import Any

import pytest
from aiosmtpd.smtp import MISSING, SMTP, AuthResult
from hypothesis import assume, given
from hypothesis import strategies as st

from smtpshell.explain.auth import auth_outcome, describe_challenge
from smtpshell.protocol.sasl import (
    MECHANISMS,
    REDACTED,
    Classifier,
    ClientStep,
    CramMd5,
    Credential,
    Login,
    Mechanism,
    Plain,
    Redactor,
    XOAuth2,
    b64,
    choose_mechanism,
    credential_problem,
    decode_b64,
    response,
)

PLAIN_VECTOR = "AHVzZXIAcGFzcw=="  # "\0user\0pass" (Go net/smtp tests)
CRAM_CHALLENGE = b"<123456.1322876914@testserver>"
CRAM_ANSWER = b"user 287eb355114cf5c471c26a875f1ca4ae"  # RFC 2195 shape, Go net/smtp vector
AIOSMTPD_USER_PROMPT = "VXNlciBOYW1lAA=="  # "User Name\0"
AIOSMTPD_PASS_PROMPT = "UGFzc3dvcmQA"  # "Password\0"
MS_USER_PROMPT = "VXNlcm5hbWU6"  # "Username:"
MS_PASS_PROMPT = "UGFzc3dvcmQ6"  # "Password:"
JSON_ERROR = {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}


# --------------------------------------------------------------------------- base64


class TestBase64:
    def test_vector(self) -> None:
        assert b64(b"\0user\0pass") == PLAIN_VECTOR
        assert decode_b64(PLAIN_VECTOR).data == b"\0user\0pass"

    @pytest.mark.parametrize("text", ["", "="])
    def test_zero_length(self, text: str) -> None:
        result = decode_b64(text)
        assert result.data == b"" and result.error is None and result.ok

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("AHVzZXIAcGFzcw", "missing padding: expected '=='"),
            ("AHVzZXIAcGFzcw=", "wrong padding '=': expected '=='"),
            ("dXNlcg===", "wrong padding '===': expected '=='"),
            ("YWJj=", "unexpected padding '='"),
            ("AHVz!XIA", "invalid character '!' at position 5"),
            ("AHVz ZXIA", "whitespace (space) at position 5"),
            ("AHVz\tZXIA", "whitespace (tab) at position 5"),
            ("a-b_", "URL-safe"),
            ("YQ==YQ==", "data after padding '=' at position 5"),
            ("YWJjZ", "impossible length: 5"),
            ("  Y!", "invalid character '!' at position 4"),
            ("é", "invalid character 'é' at position 1"),
        ],
    )
    def test_errors_say_what_and_where(self, text: str, fragment: str) -> None:
        result = decode_b64(text)
        assert result.data is None and not result.ok
        assert result.error is not None and fragment in result.error

    def test_surrounding_whitespace_is_a_warning(self) -> None:
        result = decode_b64(" YQ==\r\n")
        assert result.data == b"a"
        assert any("whitespace" in w for w in result.warnings)

    def test_non_canonical_is_a_warning(self) -> None:
        result = decode_b64("AB==")
        assert result.data == b"\0"
        assert any("non-canonical" in w and "AA==" in w for w in result.warnings)

    @given(st.binary())
    def test_round_trip(self, data: bytes) -> None:
        result = decode_b64(b64(data))
        assert result.data == data and result.warnings == ()

    @given(st.text())
    def test_never_raises(self, text: str) -> None:
        result = decode_b64(text)
        assert (result.data is None) != (result.error is None)


# --------------------------------------------------------------------------- mechanisms


def run(mech: Mechanism, challenges: list[str], *, ir: bool = True) -> list[ClientStep]:
    """The whole client side of a scripted conversation."""
    return [mech.start(ir), *(mech.step(c) for c in challenges)]


class TestPlain:
    def test_initial_response_vector(self) -> None:
        step = Plain("user", "pass").start()
        assert step.line == f"AUTH PLAIN {PLAIN_VECTOR}"
        assert step.secret and step.meaning is None
        assert step.credential == Credential("plain", "user")

    def test_empty_challenge_variant(self) -> None:
        start, answer = run(Plain("user", "pass", initial_response=False), [""])
        assert start.line == "AUTH PLAIN" and not start.secret
        assert answer.line == PLAIN_VECTOR and answer.secret
        assert answer.note == ""

    def test_server_without_initial_response_support(self) -> None:
        start, answer = run(Plain("user", "pass"), [""], ir=False)
        assert start.line == "AUTH PLAIN" and answer.line == PLAIN_VECTOR

    def test_authzid(self) -> None:
        step = Plain("user", "pass", authzid="admin").start()
        assert step.line == "AUTH PLAIN " + b64(b"admin\0user\0pass")
        assert step.credential == Credential("plain", "user", "admin")

    def test_long_initial_response_goes_after_empty_challenge(self) -> None:
        mech = Plain("user", "p" * 400)
        start = mech.start()
        assert start.line == "AUTH PLAIN" and "512" in start.note
        answer = mech.step("")
        assert answer.line == b64(b"\0user\0" + b"p" * 400)

    @pytest.mark.parametrize(("blob_size", "kept"), [(372, True), (375, False)])
    def test_512_octet_boundary(self, blob_size: int, kept: bool) -> None:
        # "AUTH PLAIN " + 496 base64 chars + CRLF = 509 octets; 500 chars make 513.
        step = Plain("user", "p" * (blob_size - len("\0user\0"))).start()
        assert step.secret is kept
        assert (len(step.line) + 2 <= 512) is True

    def test_unexpected_second_challenge_cancels(self) -> None:
        _, cancel = run(Plain("user", "pass"), ["Zm9v"])
        assert cancel.line == "*" and "another challenge" in cancel.note

    def test_non_empty_first_challenge_is_noted(self) -> None:
        _, answer = run(Plain("user", "pass", initial_response=False), ["Zm9v"])
        assert answer.line == PLAIN_VECTOR and '"foo"' in answer.note

    def test_agrees_with_smtplib(self) -> None:
        client = smtplib.SMTP()
        client.user, client.password = "user", "pass"
        assert Plain("user", "pass").start().line == "AUTH PLAIN " + b64(
            client.auth_plain().encode()
        )


class TestLogin:
    @pytest.mark.parametrize(
        "prompts", [[AIOSMTPD_USER_PROMPT, AIOSMTPD_PASS_PROMPT], [MS_USER_PROMPT, MS_PASS_PROMPT]]
    )
    def test_two_answers_counted_not_matched(self, prompts: list[str]) -> None:
        start, user, password = run(Login("user", "pass"), prompts)
        assert start.line == "AUTH LOGIN"
        assert (user.line, user.secret, user.meaning) == ("dXNlcg==", False, b"user")
        assert (password.line, password.secret, password.meaning) == ("cGFzcw==", True, None)
        assert user.note == password.note == ""
        assert (start.credential, user.credential) == (None, Credential("login:user", "user"))
        assert password.credential == Credential("login:password")

    def test_prompts_in_odd_order_are_noted_not_obeyed(self) -> None:
        _, user, password = run(Login("user", "pass"), [MS_PASS_PROMPT, MS_USER_PROMPT])
        assert user.line == "dXNlcg==" and "user name first" in user.note
        assert password.line == "cGFzcw==" and "password second" in password.note

    def test_user_name_as_initial_response(self) -> None:
        start, password = run(Login("user", "pass", initial_response=True), [MS_PASS_PROMPT])
        assert start.line == "AUTH LOGIN dXNlcg==" and not start.secret
        assert password.line == "cGFzcw=="

    def test_third_challenge_cancels(self) -> None:
        steps = run(Login("user", "pass"), [MS_USER_PROMPT, MS_PASS_PROMPT, MS_PASS_PROMPT])
        assert steps[-1].line == "*" and "two answers" in steps[-1].note


class TestCramMd5:
    def test_vector(self) -> None:
        start, answer = run(CramMd5("user", "pass"), [b64(CRAM_CHALLENGE)])
        assert start.line == "AUTH CRAM-MD5"
        assert base64.b64decode(answer.line) == CRAM_ANSWER
        # no password, but with the challenge a dictionary attack: redacted like one
        assert answer.secret and answer.meaning is None
        assert answer.credential == Credential("cram-md5", "user")

    def test_no_initial_response_even_if_allowed(self) -> None:
        assert CramMd5("user", "pass").start(True).line == "AUTH CRAM-MD5"

    def test_agrees_with_smtplib(self) -> None:
        client = smtplib.SMTP()
        client.user, client.password = "user", "pass"
        _, answer = run(CramMd5("user", "pass"), [b64(CRAM_CHALLENGE)])
        assert base64.b64decode(answer.line).decode() == client.auth_cram_md5(CRAM_CHALLENGE)

    def test_empty_challenge_cancels(self) -> None:
        _, cancel = run(CramMd5("user", "pass"), [""])
        assert cancel.line == "*" and "needs a challenge" in cancel.note

    def test_malformed_challenge_cancels(self) -> None:
        _, cancel = run(CramMd5("user", "pass"), ["PDEyMzQ1Nj!"])
        assert cancel.line == "*"
        assert "not valid base64" in cancel.note and "position 11" in cancel.note


class TestXOAuth2:
    BLOB = b"user=me@example.com\x01auth=Bearer ya29.token\x01\x01"

    def test_initial_response(self) -> None:
        step = XOAuth2("me@example.com", "ya29.token").start()
        assert step.line == "AUTH XOAUTH2 " + b64(self.BLOB)
        assert step.secret and step.credential == Credential("xoauth2", "me@example.com")

    def test_json_error_is_acknowledged_with_empty_line(self) -> None:
        mech = XOAuth2("me@example.com", "ya29.token")
        _, ack = run(mech, [b64(json.dumps(JSON_ERROR).encode())])
        assert ack.line == "" and ack.meaning == b"" and not ack.secret
        assert ack.credential is None
        assert mech.error == JSON_ERROR
        assert '"status":"401"' in ack.note and "empty line" in ack.note

    def test_without_initial_response(self) -> None:
        mech = XOAuth2("me@example.com", "ya29.token", initial_response=False)
        start, blob, ack = run(mech, ["", b64(b"{}")])
        assert start.line == "AUTH XOAUTH2"
        assert blob.line == b64(self.BLOB) and blob.secret
        assert blob.credential == Credential("xoauth2", "me@example.com")
        assert ack.line == "" and mech.error == {}

    def test_non_json_error_still_acknowledged(self) -> None:
        mech = XOAuth2("me@example.com", "ya29.token")
        _, ack = run(mech, [b64(b"nope")])
        assert ack.line == "" and "not JSON" in ack.note and mech.error is None

    def test_long_token_goes_after_empty_challenge(self) -> None:
        mech = XOAuth2("me@example.com", "t" * 1500)
        assert mech.start().line == "AUTH XOAUTH2"
        assert base64.b64decode(mech.step("").line).endswith(b"t" * 1500 + b"\x01\x01")

    def test_third_challenge_cancels(self) -> None:
        steps = run(XOAuth2("me@example.com", "tok"), [b64(b"{}"), b64(b"{}")])
        assert steps[-1].line == "*"


def test_cancel() -> None:
    step = Login("user", "pass").cancel("why")
    assert (step.line, step.secret, step.note) == ("*", False, "why")
    out = Classifier().from_step(step, "LOGIN")
    assert out.text == "*" and "501" in out.display and "why" in out.display


def test_registry_builds_every_mechanism_from_user_and_secret() -> None:
    assert set(MECHANISMS) == {"PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"}
    for name, cls in MECHANISMS.items():
        mech = cls("user", "secret")
        assert mech.name == name and mech.start(False).line == f"AUTH {name}"


@pytest.mark.parametrize(
    ("mechanism", "user", "secret", "fragment"),
    [
        ("PLAIN", "", "pw", "user name is empty"),
        ("PLAIN", "u", "", "password is empty"),
        ("XOAUTH2", "u", "", "token is empty"),
        ("PLAIN", "u\0x", "pw", "NUL"),
        ("XOAUTH2", "u", "t\x01", "\\x01"),
        ("DIGEST-MD5", "u", "pw", "unsupported mechanism"),
    ],
)
def test_credential_problems(mechanism: str, user: str, secret: str, fragment: str) -> None:
    problem = credential_problem(mechanism, user, secret)
    assert problem is not None and fragment in problem
    if mechanism in MECHANISMS:
        with pytest.raises(ValueError, match=r"empty|NUL|x01"):
            MECHANISMS[mechanism](user, secret)


def test_good_credentials_have_no_problem() -> None:
    assert credential_problem("plain", "user", "pass") is None


# --------------------------------------------------------------------------- no leaks

SECRETS = ["Sup3r-S3cret!", "hunter2", "pässwörd", "pass word with spaces", "x" * 600]


def _conversations(secret: str) -> list[tuple[Mechanism, list[str], bool]]:
    user_prompts = [AIOSMTPD_USER_PROMPT, AIOSMTPD_PASS_PROMPT]
    json_error = b64(json.dumps(JSON_ERROR).encode())
    return [
        (Plain("user", secret), [], True),
        (Plain("user", secret, authzid="boss"), [], True),
        (Plain("user", secret, initial_response=False), ["", "Zm9v"], True),
        (Login("user", secret), user_prompts, True),
        (Login("user", secret, initial_response=True), [MS_PASS_PROMPT], True),
        (CramMd5("user", secret), [b64(CRAM_CHALLENGE)], True),
        (XOAuth2("user@example.com", secret), [json_error], True),
        (XOAuth2("user@example.com", secret, initial_response=False), ["", json_error], True),
        (XOAuth2("user@example.com", secret), [json_error], False),
    ]


@pytest.mark.parametrize("secret", SECRETS)
def test_no_shown_or_recorded_text_holds_the_secret(secret: str) -> None:
    forbidden = [
        secret,
        b64(secret.encode()),
        b64(f"\0user\0{secret}".encode()),
        b64(f"boss\0user\0{secret}".encode()),
        b64(f"user=user@example.com\x01auth=Bearer {secret}\x01\x01".encode()),
    ]
    for mech, challenges, ir in _conversations(secret):
        classifier = Classifier()
        steps = run(mech, challenges, ir=ir)
        for n, step in enumerate(steps):
            out = classifier.from_step(step, mech.name, first=n == 0)
            for text in (out.text, out.shown, out.display, step.note):
                for bad in forbidden:
                    assert bad not in text, (mech.name, text)
            if step.secret:
                assert step.line not in out.text and step.line not in out.display
                assert "<credential redacted" in out.shown and "{{secret:" in out.text


@pytest.mark.parametrize("secret", SECRETS)
def test_every_answer_is_computed_by_response(secret: str) -> None:
    """What replay rebuilds from a placeholder (``response``) is what the mechanism sent."""
    challenge = b64(CRAM_CHALLENGE)
    for mech, challenges, ir in _conversations(secret):
        steps = run(mech, challenges, ir=ir)
        for step, chal in zip(steps, ["", *challenges], strict=False):
            cred = step.credential
            if cred is None:
                continue
            data = response(cred.kind, user=mech.user, secret=secret, authzid=cred.authzid,
                            challenge=CRAM_CHALLENGE if chal == challenge else b"")
            assert step.line.split(" ")[-1] == b64(data)


class TestChoose:
    @pytest.mark.parametrize(
        ("offered", "token", "expected"),
        [
            (["LOGIN", "PLAIN", "CRAM-MD5"], False, "CRAM-MD5"),
            (["LOGIN", "plain"], False, "PLAIN"),
            (["LOGIN", "XOAUTH2"], False, "LOGIN"),
            (["SCRAM-SHA-256"], False, None),
            (["PLAIN", "XOAUTH2"], True, "XOAUTH2"),
            (["PLAIN"], True, None),
        ],
    )
    def test_choose(self, offered: list[str], token: bool, expected: str | None) -> None:
        assert choose_mechanism(offered, token=token) == expected


# --------------------------------------------------------------------------- teaching view


@pytest.mark.parametrize(
    ("challenge", "expected"),
    [
        (MS_USER_PROMPT, '→ "Username:"'),
        (AIOSMTPD_USER_PROMPT, '→ "User Name\\0"'),
        ("", "empty challenge"),
        ("PDEy!", "not valid base64: invalid character '!' at position 5"),
        (b64(b'{"status":"400"}'), 'JSON error {"status":"400"}: answer with an empty line'),
        (" UGFzc3dvcmQ6", "(note: leading or trailing whitespace"),
    ],
)
def test_describe_challenge(challenge: str, expected: str) -> None:
    assert expected in describe_challenge(challenge)


# --------------------------------------------------------------------------- outcomes


@pytest.mark.parametrize(
    ("code", "enhanced", "user", "fragments"),
    [
        (235, "2.7.0", "alice", ["authenticated as alice", "235 2.7.0", "RFC 4954"]),
        (535, "5.7.8", "alice", ["credentials rejected", "full address", "535 5.7.8"]),
        (535, None, "alice@example.com", ["credentials rejected", "(535, RFC 4954 §6)"]),
        (534, "5.7.9", None, ["too weak", "app password"]),
        (538, "5.7.11", None, ["STARTTLS first"]),
        (454, "4.7.0", None, ["try again later"]),
        (530, "5.7.0", None, ["authentication required"]),
        (504, "5.5.4", None, ["not supported"]),
        (502, None, None, ["not implemented"]),
        (500, None, None, ["not recognised"]),
        (501, "5.5.2", None, ["cancelled", "malformed"]),
        (421, None, None, ["unexpected reply", "421"]),
    ],
)
def test_auth_outcome(
    code: int, enhanced: str | None, user: str | None, fragments: list[str]
) -> None:
    text = auth_outcome(code, enhanced, user)
    for fragment in fragments:
        assert fragment in text
    if code == 535 and user and "@" in user:
        assert "full address" not in text


# --------------------------------------------------------------------------- redaction


class TestRedactor:
    def test_literal_raw_secret_and_its_base64(self) -> None:
        r = Redactor()
        r.add_literal(PLAIN_VECTOR)
        r.add_secret("pass")
        text = f"C: AUTH PLAIN {PLAIN_VECTOR}\nC: pass\nC: {b64(b'pass')}"
        assert r.redact(text, "X") == "C: AUTH PLAIN X\nC: X\nC: X"

    @pytest.mark.parametrize(
        "blob",
        [
            b"\0someone-else\0correct horse",
            b"\0u\0correct horse\n",  # the echo mistake
            b"x\0ab\0correct horse",
            b"user=a\x01auth=Bearer correct horse\x01\x01",
        ],
    )
    def test_base64_built_by_hand_at_any_alignment(self, blob: bytes) -> None:
        r = Redactor()
        r.add_secret("correct horse")
        assert r.redact(f"AUTH PLAIN {b64(blob)} tail") == f"AUTH PLAIN {REDACTED} tail"

    def test_idempotent_and_placeholders_survive(self) -> None:
        r = Redactor()
        r.add_secret("secret")
        r.add_secret("plain")
        once = r.redact("AUTH PLAIN secret {{secret:plain user=u password=$P}}")
        assert once == f"AUTH PLAIN {REDACTED} {{{{secret:plain user=u password=$P}}}}"
        assert r.redact(once) == once

    def test_short_and_empty_secrets(self) -> None:
        r = Redactor()
        assert not r
        r.add_secret("")
        r.add_secret("ab")
        assert r
        assert r.redact("ab cab YWI=", "X") == "ab cab X"

    @given(st.binary(max_size=20), st.binary(min_size=5, max_size=40), st.binary(max_size=20))
    def test_any_embedding_is_caught(self, before: bytes, secret: bytes, after: bytes) -> None:
        text = secret.decode("utf-8", "replace")
        assume(len(text) >= 5 and text not in REDACTED)
        r = Redactor()
        r.add_secret(text)
        token = b64(before + text.encode() + after)
        redacted = r.redact(f"C: {token}\r\n")
        assert token not in redacted and text not in redacted and REDACTED in redacted


# --------------------------------------------------------------------------- real aiosmtpd


class _Handler:
    """aiosmtpd handler: built-in PLAIN/LOGIN plus CRAM-MD5 and XOAUTH2 hooks.

    ``handled=False`` makes aiosmtpd send the 535 itself (its default assumes we did).
    """

    async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
        answer = await server.challenge_auth(CRAM_CHALLENGE)
        if answer is MISSING:
            return AuthResult(success=False, handled=False)
        user, _, digest = bytes(answer).rpartition(b" ")
        expected = hmac.new(b"pass", CRAM_CHALLENGE, "md5").hexdigest().encode()
        ok = user == b"user" and hmac.compare_digest(digest, expected)
        return AuthResult(success=ok, handled=False)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) > 1:
            blob = base64.b64decode(args[1])
        else:
            answer = await server.challenge_auth("")
            if answer is MISSING:
                return AuthResult(success=False, handled=False)
            blob = bytes(answer)
        if blob == b"user=user\x01auth=Bearer good-token\x01\x01":
            return AuthResult(success=True)
        await server.challenge_auth(json.dumps(JSON_ERROR))
        return AuthResult(success=False, handled=False)


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = (data.login, data.password) == (b"user", b"pass")
    return AuthResult(success=ok, handled=False)


async def _read_reply(reader: asyncio.StreamReader) -> list[str]:
    lines = []
    while True:
        line = (await reader.readline()).decode().rstrip("\r\n")
        lines.append(line)
        if line[3:4] != "-":
            return lines


async def _authenticate(make: Callable[[tuple[str, ...]], Mechanism]) -> tuple[str, Mechanism]:
    """Authenticate against a real aiosmtpd; returns the final reply line and the mechanism."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            _Handler(), authenticator=_authenticator, auth_require_tls=False, hostname="sandbox"
        ),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await _read_reply(reader)
        writer.write(b"EHLO client\r\n")
        ehlo = await _read_reply(reader)
        offered = tuple(
            word for line in ehlo if line[4:9].upper() == "AUTH " for word in line[9:].split()
        )
        mech = make(offered)
        writer.write(mech.start().line.encode() + b"\r\n")
        while (reply := await _read_reply(reader))[-1].startswith("334"):
            writer.write(mech.step(reply[-1][4:]).line.encode() + b"\r\n")
        writer.write(b"QUIT\r\n")
        await _read_reply(reader)
        return reply[-1], mech
    finally:
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()


def _final(make: Callable[[tuple[str, ...]], Mechanism]) -> tuple[str, Mechanism]:
    # The timeout only turns a protocol hang into a failure; nothing waits on it.
    return asyncio.run(asyncio.wait_for(_authenticate(make), 60))


class TestAgainstAiosmtpd:
    def test_advertised(self) -> None:
        def check(offered: tuple[str, ...]) -> Mechanism:
            assert set(offered) == {"CRAM-MD5", "LOGIN", "PLAIN", "XOAUTH2"}
            assert choose_mechanism(offered) == "CRAM-MD5"
            return Plain("user", "pass")

        assert _final(check)[0].startswith("235")

    @pytest.mark.parametrize(
        "make",
        [
            lambda: Plain("user", "pass"),
            lambda: Plain("user", "pass", initial_response=False),
            lambda: Login("user", "pass"),
            lambda: Login("user", "pass", initial_response=True),
            lambda: CramMd5("user", "pass"),
            lambda: XOAuth2("user", "good-token"),
            lambda: XOAuth2("user", "good-token", initial_response=False),
        ],
    )
    def test_success(self, make: Callable[[], Mechanism]) -> None:
        final, mech = _final(lambda _: make())
        assert final.startswith("235 2.7.0")
        assert auth_outcome(235, "2.7.0", mech.user).startswith("authenticated as user")

    @pytest.mark.parametrize("cls", [Plain, Login, CramMd5])
    def test_wrong_password(self, cls: type[Mechanism]) -> None:
        final, _ = _final(lambda _: cls("user", "wrong"))
        assert final.startswith("535 5.7.8")
        assert "credentials rejected" in auth_outcome(535, "5.7.8", "user")

    def test_xoauth2_error_exchange(self) -> None:
        final, mech = _final(lambda _: XOAuth2("user", "bad-token"))
        assert final.startswith("535")
        assert isinstance(mech, XOAuth2) and mech.error == JSON_ERROR

    def test_cancel_gets_501(self) -> None:
        class Cancelling(Login):
            def step(self, challenge_b64: str) -> ClientStep:
                return self.cancel()

        final, _ = _final(lambda _: Cancelling("user", "pass"))
        assert final.startswith("501")
