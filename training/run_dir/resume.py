"""Resuming a run: is the checkpoint this run's, and restoring model, optimizer, scaler and RNG from it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.visual_world_model import VWorldModel
from training.run_dir.checkpoint import (
    latest_checkpoint,
    load_model_file,
    load_optim_file,
    load_train_state,
    rank_rng_state,
    remove_stale_temps,
    set_rng_state,
)
from training.run_dir.run_config import changed_model_keys, frozen_config, same_path
from training.run_dir.run_info import load_run_info

log = logging.getLogger(__name__)


class RunMismatchError(RuntimeError):
    """The run dir's checkpoint does not belong to this config (other encoder weights or model shape)."""


@dataclass
class Restored:
    epoch: int = 0
    step: int = 0
    wandb_run_id: str | None = None


def find_resume_point(run_dir: Path, cfg: Any, data_path: Path, accelerator) -> Path | None:
    """The checkpoint to resume from (None: start from scratch), after cleaning up interrupted writes.

    The main process removes the temporary directories a killed checkpoint write left behind before any
    process looks for the latest checkpoint.
    """
    if accelerator.is_main_process:
        remove_stale_temps(run_dir)
    accelerator.wait_for_everyone()
    ckpt = latest_checkpoint(run_dir)
    if ckpt is not None:
        log.info("resuming from %s (training.resume=%s)", ckpt, cfg.training.resume)
        check_resume_matches(run_dir, cfg, data_path)
    elif cfg.training.resume:
        log.warning("training.resume=true but %s has no checkpoint: starting from scratch", run_dir)
    return ckpt


def check_resume_matches(run_dir: Path, cfg: Any, data_path: Path) -> None:
    """Resuming must keep the model and its data: raise RunMismatchError naming what changed."""
    info = load_run_info(run_dir)
    if info is None:
        return
    if "dataset_path" in info and not same_path(info["dataset_path"], data_path):
        raise RunMismatchError(f"this run trained on {info['dataset_path']}, not {data_path}: "
                               "resume with the same env.data_path, or use another hydra.run.dir")
    changed = changed_model_keys(info.get("config", {}), frozen_config(cfg)) if "config" in info else []
    if changed:
        raise RunMismatchError(f"resuming {run_dir} with a different model/data config ({', '.join(changed[:6])}): "
                               "only training.*, wandb.*, gpu settings and debug may change; use another hydra.run.dir")


def record_resumed_config(run_dir: Path, cfg: Any) -> None:
    """Keep an accepted resume's config as the run's own (``run_info.json`` and ``.hydra/config.yaml``):
    a later resume starts from it, so ``training.epochs=N`` given once is not undone by the next restart.
    Only keys a resume may change can differ from the recorded ones (``check_resume_matches``)."""
    from omegaconf import OmegaConf

    from training.run_dir.run_info import write_run_info

    info = load_run_info(run_dir) or {}
    write_run_info(run_dir, {**info, "config": frozen_config(cfg)})
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")


def restore_hydra_config(run_dir: Path) -> None:
    """``.hydra/config.yaml`` back to the run's recorded config (Hydra overwrites it on every launch)."""
    from omegaconf import OmegaConf

    try:
        info = load_run_info(run_dir)
    except ValueError:  # an unreadable run_info.json: nothing to put back
        return
    if info and "config" in info and (run_dir / ".hydra").is_dir():
        OmegaConf.save(OmegaConf.create(info["config"]), run_dir / ".hydra" / "config.yaml")


def load_trainable(model: VWorldModel, sd: dict[str, torch.Tensor]) -> None:
    """Load every trainable tensor strictly (the frozen encoder is not in checkpoints)."""
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.startswith("encoder.")]
    if missing or unexpected:
        raise RunMismatchError(f"checkpoint does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")


def restore(ckpt: Path, model: VWorldModel, optimizer, scheduler, accelerator) -> Restored:
    """Load weights, optimizer, scheduler, GradScaler and this rank's RNG state from ``ckpt``."""
    sd, meta = load_model_file(ckpt)
    if meta.get("encoder_weights_hash") != model.encoder.weights_hash:
        raise RunMismatchError(f"encoder weights hash {model.encoder.weights_hash} differs from the checkpoint's "
                               f"{meta.get('encoder_weights_hash')}: not the encoder this run trained with")
    load_trainable(model, sd)
    opt = load_optim_file(ckpt)
    optimizer.load_state_dict(opt["optimizer"])
    scheduler.load_state_dict(opt["scheduler"])
    restore_scaler(accelerator.scaler, opt.get("scaler"))
    st = load_train_state(ckpt)
    set_rng_state(rank_rng_state(st["rng"], accelerator.process_index))
    return Restored(int(st["epoch"]), int(st["step"]), st.get("wandb_run_id"))


def restore_scaler(scaler, state: dict[str, Any] | None) -> None:
    """Give an fp16 run's GradScaler its saved scale and growth tracker (None on either side: nothing)."""
    if scaler is not None and state:
        scaler.load_state_dict(state)
    elif scaler is not None:
        log.info("the checkpoint holds no GradScaler state (saved without fp16): the loss scale starts afresh")
