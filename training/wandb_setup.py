"""wandb initialisation: offline when no API key is configured, ``disabled`` on request, resumable id."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def has_api_key() -> bool:
    """True when WANDB_API_KEY is set or ~/.netrc holds credentials for api.wandb.ai."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_mode(mode: str | None) -> str:
    """Config mode (online / offline / disabled / None = auto) and WANDB_MODE -> the mode to use."""
    if mode:
        return str(mode)
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if has_api_key() else "offline"


def init_wandb(cfg_wandb: Any, run_dir: Path, config: dict, run_id: str | None, summary: dict[str, Any]):
    """Start (or resume, with ``run_id``) a wandb run on the main process; returns the run or None."""
    mode = resolve_mode(cfg_wandb.get("mode"))
    if mode == "disabled":
        log.info("wandb disabled")
        return None
    import wandb

    if mode == "offline":
        log.info("wandb offline (no API key configured): sync later with `wandb sync %s/wandb/...`", run_dir)
    run = wandb.init(project=cfg_wandb.project, entity=cfg_wandb.get("entity"), name=cfg_wandb.get("name"),
                     mode=mode, dir=str(run_dir), id=run_id, resume="allow", config=config)
    run.summary.update(summary)
    return run
