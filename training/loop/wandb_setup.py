"""wandb initialisation: offline when no API key is configured, ``disabled`` on request, resumable id; the
run's place beside its evaluations (``group`` = the run's name, ``job_type`` = ``train``) and its lineage (it uses
its dataset directory and logs each checkpoint, both as reference artifacts: :mod:`utils.wandb_artifacts`);
and :class:`StepLog`, which logs every (metric group, step) of a run exactly once across restarts."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from utils.atomic_files import atomic_write_json
from utils.wandb_artifacts import checkpoint_artifact, dataset_artifact, use_artifact
from utils.wandb_mode import resolve_mode

log = logging.getLogger(__name__)
DATASET_META_KEYS = ("env_name", "camera_names", "views", "image_size", "n_episodes", "n_frames", "source_sha256",
                     "robosuite_version", "format_version")


def run_group(cfg_wandb: Any, config: dict, run_dir: Path) -> str:
    """The training run's name, which its evaluations take as their ``group`` (plan.py: the run's
    ``wandb.name``, else its ``name``, else the run dir's name)."""
    return str(cfg_wandb.get("name") or config.get("name") or Path(run_dir).name)


def init_wandb(cfg_wandb: Any, run_dir: Path, config: dict, run_id: str | None, summary: dict[str, Any]):
    """Start (or resume, with ``run_id``) a wandb run on the main process; returns the run or None.

    The run is ``job_type=train`` in the group its evaluations use, and uses the dataset directory of
    ``run_info.json`` as a reference artifact."""
    mode = resolve_mode(cfg_wandb.get("mode"))
    if mode == "disabled":
        log.info("wandb disabled")
        return None
    import wandb

    if mode == "offline":
        log.info("wandb offline (no API key configured): sync later with `wandb sync %s/wandb/...`", run_dir)
    run = wandb.init(project=cfg_wandb.project, entity=cfg_wandb.get("entity"), name=cfg_wandb.get("name"),
                     group=run_group(cfg_wandb, config, run_dir), job_type="train", mode=mode, dir=str(run_dir),
                     id=run_id, resume="allow", config=config)
    run.summary.update(summary)
    use_dataset(run, run_dir)
    return run


def use_dataset(run, run_dir: Path) -> None:
    """Declare the run's dataset directory (``run_info.json`` ``dataset_path``) an input of ``run``: every file
    but the feature cache (derived from them), checksummed; meta.json's identity in the metadata."""
    from datasets.feature_cache import CACHE_DIR
    from training.run_dir.run_info import load_run_info

    data = (load_run_info(Path(run_dir)) or {}).get("dataset_path")
    if not data:
        log.warning("wandb: no dataset_path in %s/run_info.json: the dataset is not linked to the run", run_dir)
        return
    try:
        meta = json.loads((Path(data) / "meta.json").read_text())
        art = dataset_artifact(data, skip=(CACHE_DIR,),
                               metadata={"path": str(data), **{k: meta[k] for k in DATASET_META_KEYS if k in meta}})
        use_artifact(run, art)
    except (OSError, ValueError) as exc:
        log.warning("wandb: the dataset %s is not linked to the run (%s)", data, exc)


def log_checkpoint(ckpt_dir: Path, step: int, wandb_run_id: str | None) -> None:
    """Log checkpoint ``ckpt_dir`` as a reference artifact of the training run whose id its ``train_state.json``
    names, when that run is this process's active wandb run (aliases ``step_<N>`` and ``latest``)."""
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb is not None else None
    if run is None or wandb_run_id is None or run.id != wandb_run_id:
        return
    try:
        run.log_artifact(checkpoint_artifact(ckpt_dir, wandb_run_id, step), aliases=[f"step_{step}", "latest"])
    except (OSError, ValueError) as exc:
        log.warning("wandb: checkpoint %s not logged as an artifact (%s)", ckpt_dir, exc)


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
