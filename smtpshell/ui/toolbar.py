"""The bottom toolbar: where we are connected, how, as whom, and how far the mail got.

``toolbar_fragments`` is a pure function of the session's snapshot, the settings and the
recording state; it returns prompt_toolkit style fragments (``(style, text)`` pairs)
without importing prompt_toolkit.  The styles it uses are in ``TOOLBAR_STYLE``.

Text from outside (the target as given, the user name, the TLS version and cipher the
peer chose, the transcript's file name) is escaped with ``escapes.for_terminal``:
prompt_toolkit shows C0 and C1 controls as ``^[``-style carets, but passes bidi and
invisible characters on to the terminal, and a CR or LF would break the toolbar's line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..escapes import for_terminal

if TYPE_CHECKING:
    from ..session import SessionSnapshot
    from .core import Settings

__all__ = ["TOOLBAR_STYLE", "Fragments", "human_size", "toolbar_fragments"]

Fragments = list[tuple[str, str]]

TOOLBAR_STYLE: dict[str, str] = {
    "toolbar.target": "bold",
    "toolbar.ok": "fg:ansigreen",
    "toolbar.closed": "fg:ansired bold",
    "toolbar.tls": "fg:ansigreen",
    "toolbar.plain": "fg:ansiyellow",
    "toolbar.warn": "fg:ansired",
    "toolbar.auth": "fg:ansicyan",
    "toolbar.stage": "",
    "toolbar.size": "",
    "toolbar.dim": "fg:ansibrightblack",
    "toolbar.sep": "fg:ansibrightblack",
    "toolbar.rec": "fg:ansired bold",
}
"""Class name -> style, for the application's ``Style.from_dict``."""

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def human_size(octets: int) -> str:
    """``33554432`` -> ``"32 MiB"``, ``10240000`` -> ``"9.8 MiB"``, ``512`` -> ``"512 B"``."""
    if octets < 1024:
        return f"{octets} B"
    value = float(octets) / 1024
    unit = _UNITS[0]
    for bigger in _UNITS[1:]:
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    shown = f"{value:.1f}".removesuffix(".0") if value < 100 else f"{value:.0f}"
    return f"{shown} {unit}"


def toolbar_fragments(
    snap: SessionSnapshot, settings: Settings | None = None, *, recording: str | None = None
) -> Fragments:
    """The toolbar for a session (its ``snapshot()``); ``recording`` names the transcript
    being written."""
    out: Fragments = [("class:toolbar.target", f" {for_terminal(snap.target)} ")]
    if not snap.connected:
        out.append(("class:toolbar.closed", "closed"))
    else:
        out.append(("class:toolbar.ok", "connected"))
        _sep(out)
        report = snap.tls_report
        if snap.tls and report is not None:
            out.append(("class:toolbar.tls", for_terminal(f"{report.version} {report.cipher}")))
            if not report.verified:
                out.append(("class:toolbar.warn", " unverified"))
        elif snap.tls:
            out.append(("class:toolbar.tls", "TLS"))
        else:
            out.append(("class:toolbar.plain", "plain"))
        _sep(out)
        if snap.authenticated:
            user = for_terminal(snap.auth_user or "(authenticated)")
            out.append(("class:toolbar.auth", f"user {user}"))
        else:
            out.append(("class:toolbar.dim", "no auth"))
        _sep(out)
        stage = "AUTH exchange" if snap.in_auth else f"stage {snap.stage.value}"
        out.append(("class:toolbar.stage", stage))
        caps = snap.capabilities
        limit = caps.size_limit if caps is not None else None
        if limit is not None:
            _sep(out)
            text = f"SIZE {human_size(limit)}" if limit else "SIZE no limit"
            out.append(("class:toolbar.size", text))
    if settings is not None and settings.require_tls:
        _sep(out)
        out.append(("class:toolbar.warn" if not snap.tls else "class:toolbar.tls",
                    "require-TLS"))  # fmt: skip
    if recording:
        _sep(out)
        out.append(("class:toolbar.rec", f"● REC {for_terminal(recording)}"))
    out.append(("", " "))
    return out


def _sep(out: Fragments) -> None:
    out.append(("class:toolbar.sep", " │ "))
