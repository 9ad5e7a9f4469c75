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


def load_profile(path: Path, name: str) -> dict[str, Any]:
    """The profile ``name`` as argparse destinations -> values."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"profile {name!r}: no config file at {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start + 1} is not)") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
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
        if key == "tls" and value not in TLS_MODES:
            raise ConfigError(f"{path}: profile {name!r}: tls must be one of {TLS_MODES}")
        out[dest] = str(value) if key == "port" else value
    return out


def _short(value: object) -> str:
    """A value from the file in an error line: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
