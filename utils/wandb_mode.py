"""Which wandb mode a run uses (training and planning decide alike): offline when no API key is configured."""

from __future__ import annotations

import netrc
import os


def has_api_key() -> bool:
    """True when WANDB_API_KEY is set or ~/.netrc holds credentials for api.wandb.ai."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


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
