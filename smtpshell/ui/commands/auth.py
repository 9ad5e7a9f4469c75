"""AUTH for the user: /auth drives PLAIN, LOGIN, CRAM-MD5 and XOAUTH2; /b64 and /unb64.

Every step is shown in the teaching view (the server's challenge decoded, each line
the shell sends with what it encodes, the secret masked); history and transcripts
only ever see the redacted form.  Secrets come from a prompt without echo, an
environment variable or a file, never from the command line in clear.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...context import SmallFileError, read_small_file
from ...escapes import format_escapes, parse_escapes
from ...explain import diagnose, mechanism_problem
from ...explain.auth import auth_outcome
from ...protocol.sasl.b64 import b64, decode_b64
from ...protocol.sasl.redact import DEFAULT_PASSWORD_ENV, DEFAULT_TOKEN_ENV
from ...session import Session
from ...status import ExitStatus
from .registry import Arg, Kind, command

if TYPE_CHECKING:
    from ..core import ShellCore

AUTH_AFTER_REFUSED_STARTTLS = (
    "not sending AUTH in clear: the server refused STARTTLS on this connection "
    "(--auth-in-clear, or /set auth-in-clear on, allows it)")
"""Why no AUTH (typed or /auth) goes out after a refused STARTTLS: how a downgrade looks."""

MECH_NAMES = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2")
PASSWORD_FILE_LIMIT = 64 * 1024
"""A password file is read only when it is at most this many bytes (an OAuth token fits)."""


def read_secret_source(
    core: ShellCore, mechanism: str = "PLAIN"
) -> tuple[str | None, str | None]:
    """(secret, problem) from --password-env / --password-file, when one was given, else
    from ``$SMTPSHELL_PASSWORD`` (``$SMTPSHELL_TOKEN`` for XOAUTH2) when it is set: the
    variables transcripts name, so a recorded session and the shell read the same one."""
    s = core.settings
    if s.password_env:
        value = s.environ.get(s.password_env)
        if value is None:
            return None, f"environment variable {s.password_env} is not set"
        return value, None
    if s.password_file:
        try:
            text = read_small_file(s.password_file, PASSWORD_FILE_LIMIT).decode("utf-8")
        except SmallFileError as exc:
            return None, f"password file: {exc}"
        except UnicodeDecodeError:
            return None, f"password file {s.password_file} is not UTF-8 text"
        lines = text.splitlines()
        if not lines or not lines[0]:
            return None, f"password file {s.password_file} is empty"
        return lines[0], None
    default = DEFAULT_TOKEN_ENV if mechanism == "XOAUTH2" else DEFAULT_PASSWORD_ENV
    value = s.environ.get(default)
    return (value or None), None


async def authenticate(core: ShellCore, mech_name: str | None, user: str | None) -> bool:
    """Run one AUTH exchange; True on 235.  Problems are printed in one line each."""
    session, r = core.session, core.renderer
    if not session.connected:
        r.error("not connected (use /reconnect)")
        return False
    if session.in_data or session.in_auth:
        r.error("finish the message (or the AUTH exchange) first")
        return False
    if not session.is_tls:
        if core.settings.require_tls:
            r.error("require-TLS is on: not authenticating on a plain connection; STARTTLS first")
            return False
        if core.starttls_refused and not core.settings.allow_plain_auth:
            r.error(AUTH_AFTER_REFUSED_STARTTLS)  # the rule typed AUTH follows
            return False
        if not core.settings.allow_plain_auth:
            if session.capabilities is None:
                await session.ehlo()  # what the server offers decides what to say
            caps = session.capabilities
            if caps is not None and "AUTH" not in caps:
                reason = diagnose("AUTH", 530, core.facts())
                if reason:
                    r.warn(reason)  # the state's reason first, then the question
            question = "The connection is not encrypted: the credentials can be read on the way. " \
                       "Authenticate anyway?"
            if not await core.prompter.confirm(question):
                r.error("AUTH on a plain connection not confirmed (STARTTLS first; in batch "
                        "mode --auth-in-clear allows it)")
                return False
    if session.capabilities is None:
        await session.ehlo()
    caps = session.capabilities
    advertised = caps.auth_mechanisms if caps is not None else ()
    wanted = (mech_name or "auto").upper()
    if wanted == "AUTO":
        chosen = Session.strongest_mechanism(advertised)
        if chosen is None:
            r.error("the server advertises no AUTH mechanism this shell supports"
                    + (f" (offered: {' '.join(advertised)})" if advertised else
                       "; its EHLO reply has no AUTH line (STARTTLS first?)"))
            return False
        r.info(f"using {chosen}, the strongest of: {' '.join(advertised)}")
    else:
        if wanted not in MECH_NAMES:
            r.error(f"unknown mechanism {mech_name}; known: {', '.join(MECH_NAMES)}")
            return False
        chosen = wanted
        if advertised and chosen not in advertised:
            r.warn(f"{chosen} is not advertised (offered: {' '.join(advertised)}); trying anyway")
    user = user or core.settings.user
    if not user:
        user = await core.prompter.text("User name")
        if not user:
            r.error("no user name: give one (/auth MECH USER, or --user)")
            core.status = ExitStatus.AUTH
            return False
    what = "token" if chosen == "XOAUTH2" else "password"
    secret, problem = read_secret_source(core, chosen)
    if problem:
        r.error(problem)
        core.status = ExitStatus.AUTH
        return False
    if secret is None:
        secret = await core.prompter.secret(f"{what.capitalize()} for {user}")
    if not secret:
        r.error(f"no {what}: batch mode never prompts; give --password-env VAR or "
                "--password-file FILE" if not core.interactive else f"no {what} given")
        core.status = ExitStatus.AUTH
        return False
    problem = Session.auth_problem(chosen, user, secret)
    if problem:
        r.error(problem)
        core.status = ExitStatus.AUTH
        return False
    core.classifier()  # the session's redaction point learns the shell's known secrets
    replies = await session.auth(chosen, user, secret)  # the secret goes to its redactor
    del secret
    core.last_replies = replies
    if not replies:
        core.status = ExitStatus.AUTH
        return False
    final = replies[-1]
    outcome = auth_outcome(final.code, final.enhanced, user)
    if final.code == 235:
        r.info(outcome)
        return True
    r.error(f"AUTH failed: {outcome}")
    core.status = ExitStatus.AUTH
    return False


@command("auth", "authenticate: PLAIN, LOGIN, CRAM-MD5, XOAUTH2 (default: strongest offered); "
         "asks for the password without echo",
         args=(Arg("MECH", Kind.MECHANISM, words=MECH_NAMES, optional=True),
               Arg("USER", Kind.USER, optional=True)))
async def _auth(core: ShellCore, args: str) -> None:
    words = args.split()
    mech = None
    if words and words[0].upper() in (*MECH_NAMES, "AUTO"):
        mech = words.pop(0)
    elif words and (problem := mechanism_problem(words[0], MECH_NAMES, *words[1:2])):
        core.renderer.error(problem)  # "/auth plian": a misspelt mechanism, not a user
        return
    user = words[0] if words else None
    if len(words) > 1:
        core.renderer.error("usage: /auth [MECH] [USER] (the password is asked, never typed here)")
        return
    await authenticate(core, mech, user)


@command("b64", r"base64-encode TEXT; \0 \n \r \t \xNN \\ are understood "
         r"(e.g. /b64 \0user\0pass); the history keeps /b64 without its argument",
         args=(Arg("TEXT", Kind.SECRET),))
async def _b64(core: ShellCore, args: str) -> None:
    try:
        data = parse_escapes(args)
    except ValueError as exc:
        core.renderer.error(f"/b64: {exc}")
        return
    core.renderer.write(b64(data))
    core.renderer.info(f"{len(data)} bytes: {format_escapes(data)}")


@command("unb64", "decode base64 and show the bytes (\\0 for NUL); the history keeps "
         "/unb64 without its argument", args=(Arg("BASE64", Kind.SECRET),), aliases=("b64d",))
async def _unb64(core: ShellCore, args: str) -> None:
    result = decode_b64(args.strip())
    if result.data is None:
        core.renderer.error(f"not valid base64: {result.error}")
        return
    core.renderer.write(format_escapes(result.data))
    for warning in result.warnings:
        core.renderer.warn(warning)
