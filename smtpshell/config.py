"""Profiles: named connection settings in ``$XDG_CONFIG_HOME/smtpshell/config.toml``.

    [profiles.sandbox]
    host = "127.0.0.1"
    port = 2525
    tls = "starttls"            # plain | starttls | implicit
    cafile = "/tmp/sb/ca.pem"
    user = "demo"
    auth = "plain"
    password_env = "SMTP_PASSWORD"
    ehlo = "client.example.org"

Command-line options override what a profile says.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

# profile key -> (argparse destination, type)
PROFILE_KEYS: dict[str, tuple[str, type]] = {
    "host": ("target", str),
    "port": ("port", int),
    "tls": ("tls_mode", str),
    "cafile": ("cafile", str),
    "capath": ("capath", str),
    "insecure": ("insecure", bool),
    "sni": ("sni", str),
    "min_version": ("tls_min", str),
    "max_version": ("tls_max", str),
    "ciphers": ("ciphers", str),
    "cert": ("cert", str),
    "key": ("key", str),
    "key_password_env": ("key_password_env", str),
    "pin": ("pin", list),
    "user": ("user", str),
    "auth": ("auth", str),
    "password_env": ("password_env", str),
    "password_file": ("password_file", str),
    "ehlo": ("ehlo", str),
    "lmtp": ("lmtp", bool),
    "unix": ("unix", str),
    "timeout": ("timeout", float),
    "connect_timeout": ("connect_timeout", float),
    "reply_timeout": ("reply_timeout", float),
    "require_tls": ("require_tls", bool),
    "record": ("record", str),
}
TLS_MODES = ("plain", "starttls", "implicit")


class ConfigError(Exception):
    """A one-line problem with the config file or a profile."""


def config_path(config_dir: Path) -> Path:
    return config_dir / "config.toml"


CONFIG_LIMIT = 1024 * 1024
"""The config file is read only when it is at most this many bytes (1 MiB)."""

VALUE_LIMIT = 4096
"""A string in a profile is at most this many characters (a path, a cipher list)."""

EHLO_LIMIT = 255
"""A host name is at most 255 octets (RFC 1035): the longest name ``ehlo`` may give."""


def load_profile(path: Path, name: str, data: bytes) -> dict[str, Any]:
    """The profile ``name`` as argparse destinations -> values, from ``data``, the bytes
    of the config file ``path`` (the caller reads it, bounded: ``CONFIG_LIMIT``)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start + 1} is not)") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    return _profile(document, path, name)


def _profile(data: dict[str, Any], path: Path, name: str) -> dict[str, Any]:
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict) or name not in profiles:
        known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) else ""
        raise ConfigError(
            f"no profile {name!r} in {path}" + (f" (known: {known})" if known else "")
        )
    profile = profiles[name]
    if not isinstance(profile, dict):
        raise ConfigError(f"{path}: [profiles.{name}] must be a table")
    out: dict[str, Any] = {}
    for key, value in profile.items():
        if key not in PROFILE_KEYS:
            raise ConfigError(f"{path}: profile {name!r}: unknown key {key!r}")
        dest, kind = PROFILE_KEYS[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is list and isinstance(value, str):
            value = [value]
        if (not isinstance(value, kind) or (kind is int and isinstance(value, bool))
                or (isinstance(value, list) and not all(isinstance(v, str) for v in value))):
            wanted = "a string or a list of strings" if kind is list else f"a {kind.__name__}"
            raise ConfigError(
                f"{path}: profile {name!r}: {key} must be {wanted}, not {_short(value)}"
            )
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                _check_text(path, name, key, text)
        if isinstance(value, float) and not 0 < value < float("inf"):
            raise ConfigError(f"{path}: profile {name!r}: {key} must be a positive number "
                              f"of seconds, not {_short(value)}")
        if key == "tls" and value not in TLS_MODES:
            raise ConfigError(f"{path}: profile {name!r}: tls must be one of {TLS_MODES}")
        out[dest] = str(value) if key == "port" else value
    return out


def _check_text(path: Path, name: str, key: str, text: str) -> None:
    """A string from a profile: bounded, and a host or EHLO name one word of printable
    ASCII-compatible text (no CR/LF: it would be a second command on the wire)."""
    where = f"{path}: profile {name!r}: {key}"
    limit = EHLO_LIMIT if key == "ehlo" else VALUE_LIMIT
    size = len(text.encode("utf-8", "surrogatepass")) if key == "ehlo" else len(text)
    if size > limit:
        unit = "octets" if key == "ehlo" else "characters"
        raise ConfigError(f"{where} is longer than {limit} {unit}")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ConfigError(f"{where} contains a control character")
    if key in ("ehlo", "host") and (not text or " " in text):
        raise ConfigError(f"{where} must be one word, not {_short(text)}")


def _short(value: object) -> str:
    """A value from the file in an error line: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
