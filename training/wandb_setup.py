"""wandb initialisation: offline when no API key is configured, ``disabled`` on request, resumable id;
and :class:`StepLog`, which logs every (metric group, step) of a run exactly once across restarts."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from utils.atomic_files import atomic_write_json
from utils.wandb_mode import has_api_key, resolve_mode

log = logging.getLogger(__name__)
__all__ = ["StepLog", "has_api_key", "init_wandb", "resolve_mode"]


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


class StepLog:
    """``run.log`` for a run that may be killed and resumed from an earlier checkpoint.

    A resumed run replays the steps between its checkpoint and the crash. Those steps were already
    logged (with the same values: resume is exact), so they are not logged again: wandb would drop them
    as non-monotonic steps (or show them twice). ``RUN/wandb_state.json`` records, per metric group
    ("train", "val", ...), the last step logged to this wandb run id, updated after every log.
    """

    STATE = "wandb_state.json"

    def __init__(self, run, run_dir: Path):
        self.run, self.path = run, Path(run_dir) / self.STATE
        saved = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.last: dict[str, int] = dict(saved.get("last", {})) if saved.get("run_id") == run.id else {}
        self.skipped = 0
        if self.last:
            log.info("wandb run %s already holds steps up to %s: replayed steps are not logged again",
                     run.id, ", ".join(f"{g} {s}" for g, s in sorted(self.last.items())))

    def log(self, group: str, metrics: dict[str, Any], step: int) -> bool:
        """Log ``metrics`` at ``step`` unless this group already logged a step >= it; True if logged."""
        if step <= self.last.get(group, -1):
            self.skipped += 1
            return False
        self.run.log(metrics, step=step)
        self.last[group] = step
        atomic_write_json(self.path, {"run_id": self.run.id, "last": self.last}, indent=None)
        return True
