"""Rebuild a trained world model from its run directory (the run's own config + a checkpoint only).

Training owns the run-dir format (``run_info.json``, ``.hydra/config.yaml``, ``checkpoints/``), so the
loader lives here; planning entry points (``plan.py``) call it and hand the model to ``planning/``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from datasets.normalizer import Normalizer
from models.visual_world_model import VWorldModel
from training.model_config import world_model_from_cfg
from training.run_dir.checkpoint import load_model_file, load_train_state, resolve_checkpoint

log = logging.getLogger(__name__)


@dataclass
class LoadedRun:
    """A trained run: ``model`` (eval, on device), its ``cfg``, ``normalizer``, episode ``split``
    {"train": [...], "val": [...]}, ``dataset_path``, the checkpoint's ``step``, directory and the
    wandb run id it was trained under (or None)."""

    model: VWorldModel
    cfg: DictConfig
    normalizer: Normalizer
    split: dict[str, list[int]]
    dataset_path: Path
    step: int
    checkpoint_dir: Path
    wandb_run_id: str | None = None


def load_world_model(run_dir: str | Path, model_epoch: str | int = "latest",
                     device: str | torch.device = "cpu") -> LoadedRun:
    """Load ``run_dir`` (a training run dir) at checkpoint ``model_epoch`` ("latest" or a step number).

    The model is rebuilt from the run's own config (frozen in ``run_info.json`` at its first launch;
    ``.hydra/config.yaml`` for older runs) and ``run_dir/run_info.json`` only;
    the frozen encoder is rebuilt from the same source and its weights hash is verified.
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / ".hydra" / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path} not found: is {run_dir} a training run directory?")
    info = json.loads((run_dir / "run_info.json").read_text())
    # the config frozen at the run's first launch (Hydra rewrites .hydra/config.yaml on every rerun)
    cfg = OmegaConf.create(info["config"]) if "config" in info else OmegaConf.load(cfg_path)
    ckpt = resolve_checkpoint(run_dir, model_epoch)
    sd, meta = load_model_file(ckpt)
    dims = info["dims"]
    model = world_model_from_cfg(cfg, dims["proprio_dim"], dims["state_dim"], dims["action_dim"],
                                 views=int(dims.get("views", 1)))  # runs before multi-view data: 1
    want = meta.get("encoder_weights_hash")
    if want != model.encoder.weights_hash:
        raise RuntimeError(f"encoder weights hash {model.encoder.weights_hash} ({model.encoder.weights_source}) "
                           f"differs from the checkpoint's {want}: the run was trained with other encoder weights")
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.startswith("encoder.")]
    if missing or unexpected:
        raise RuntimeError(f"{ckpt}: checkpoint does not match the model: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
    model = model.to(device).eval()
    if not model.encoder.pretrained:
        log.warning("run %s was trained with a RANDOM encoder (encoder.pretrained=false)", run_dir)
    state = load_train_state(ckpt)
    return LoadedRun(model=model, cfg=cfg, normalizer=Normalizer.load(run_dir), split=info["split"],
                     dataset_path=Path(info["dataset_path"]), step=int(state["step"]), checkpoint_dir=ckpt,
                     wandb_run_id=state.get("wandb_run_id"))
