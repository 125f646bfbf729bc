"""Which wandb mode a run uses (training and planning decide alike): offline when no API key is configured."""

from __future__ import annotations

import configparser
import netrc
import os
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "https://api.wandb.ai"


def base_url() -> str:
    """The wandb server runs talk to, found as wandb finds it: ``WANDB_BASE_URL``, else ``base_url`` in wandb's
    settings file (``$WANDB_CONFIG_DIR/settings`` or ``~/.config/wandb/settings``, which ``wandb login --host``
    writes), else the public server."""
    if os.environ.get("WANDB_BASE_URL"):
        return os.environ["WANDB_BASE_URL"]
    folder = os.environ.get("WANDB_CONFIG_DIR") or Path.home() / ".config" / "wandb"
    parser = configparser.ConfigParser()
    try:
        parser.read(Path(folder) / "settings")
        return parser.get("default", "base_url", fallback=None) or DEFAULT_BASE_URL
    except (configparser.Error, OSError):
        return DEFAULT_BASE_URL


def has_api_key() -> bool:
    """True when WANDB_API_KEY is set or the netrc file (``$NETRC`` or ``~/.netrc``) holds credentials for the
    server of :func:`base_url` (its host, and port if any, as ``wandb login`` writes the entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlsplit(base_url()).netloc
    try:
        path = os.path.expanduser(os.environ["NETRC"]) if os.environ.get("NETRC") else None
        entry = netrc.netrc(path).authenticators(host) if host else None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return entry is not None and bool(entry[2])


MODES = ("online", "offline", "disabled")


def check_mode(mode: str | None) -> None:
    """Raise ValueError (one line) for a config ``wandb.mode`` that is not null or one of MODES."""
    if mode is not None and str(mode) not in MODES:
        raise ValueError(f"wandb.mode={mode!r} is not one of null (online with an API key, else offline), "
                         + ", ".join(MODES))


def resolve_mode(mode: str | None) -> str:
    """Config mode (online / offline / disabled / None = auto) and WANDB_MODE -> the mode to use."""
    check_mode(mode)
    if mode:
        return str(mode)
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if has_api_key() else "offline"
