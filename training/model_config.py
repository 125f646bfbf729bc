"""The thin adapter from a training config (Hydra / OmegaConf, or a run's frozen config) to the typed
model specs of ``models/factory.py``: the only place that knows which config key feeds which field."""

from __future__ import annotations

from typing import Any

from models.factory import (
    DEFAULT_ENCODER,
    EncoderSpec,
    PredictorSpec,
    WorldModelSpec,
    build_encoder,
    build_world_model,
)
from models.image_encoder import ImageEncoder
from models.visual_world_model import VWorldModel
from tasks.registry import get_task


def configured_task(cfg: Any):
    """The registered task ``task.name`` names (None for a config without a task: runs saved before the task group);
    a one-line ValueError naming the known tasks for a name the registry (``tasks/builtin.py``) lacks."""
    name = (cfg.get("task") or {}).get("name")
    return None if name is None else get_task(str(name))


def alignment_dim(cfg: Any) -> int:
    """``cfg.alignment_dim``; when it is null, the task's (``Task.alignment_dim``: its object pose width)."""
    if cfg.get("alignment_dim") is not None:
        return int(cfg.alignment_dim)
    task = configured_task(cfg)
    if task is None:
        raise ValueError("alignment_dim=null takes the task's, but the config names no task (task=<name>)")
    return task.alignment_dim


def apply_task(cfg: Any) -> None:
    """Check ``task=`` against the registry and write the task's ``alignment_dim`` where the config leaves it null
    (so the run records the number it trains with). Raises a one-line ValueError."""
    configured_task(cfg)
    cfg.alignment_dim = alignment_dim(cfg)


def encoder_spec(cfg: Any, views: int = 1) -> EncoderSpec:
    """``cfg.encoder`` and ``cfg.img_size`` -> EncoderSpec; ``views``: the dataset's (cameras side by side in a
    frame, meta.json ``views``): a property of the data, like its dims, not a config key."""
    e = cfg.encoder
    return EncoderSpec(name=str(e.get("name", DEFAULT_ENCODER)), pretrained=bool(e.pretrained), weights_path=e.get("weights_path") or None,
                       img_size=int(cfg.img_size), feature_key=str(e.feature_key), seed=int(e.seed),
                       num_layers=int(e.get("num_layers", 12)), views=int(views))


def world_model_spec(cfg: Any, views: int = 1) -> WorldModelSpec:
    """The model keys of a training config (projected_dim, alignment_dim, action_emb_dim, proprio_emb_dim,
    num_hist, num_pred, frameskip, img_size, encoder.*, predictor.*, model.*, training.grad_checkpointing), for
    frames of ``views`` cameras."""
    m, p = cfg.model, cfg.predictor
    predictor = PredictorSpec(depth=int(p.depth), heads=int(p.heads), mlp_ratio=float(p.mlp_ratio),
                              dropout=float(p.dropout),
                              grad_checkpointing=bool(cfg.training.get("grad_checkpointing", False)))
    return WorldModelSpec(
        encoder=encoder_spec(cfg, views), predictor=predictor, projected_dim=int(cfg.projected_dim),
        alignment_dim=alignment_dim(cfg), action_emb_dim=int(cfg.action_emb_dim),
        proprio_emb_dim=int(cfg.proprio_emb_dim), num_hist=int(cfg.num_hist), num_pred=int(cfg.num_pred),
        frameskip=int(cfg.frameskip), projection_hidden=int(m.projection_hidden),
        init_temperature=float(m.init_temperature), align_weight=float(m.align_weight),
        dyn_weight=float(m.dyn_weight), state_readout=str(m.get("state_readout", "mean")), decoder=bool(m.decoder), decoder_weight=float(m.decoder_weight),
        target_stop_grad=bool(m.target_stop_grad), residual=bool(m.get("residual", False)))


def encoder_from_cfg(cfg: Any, views: int = 1) -> ImageEncoder:
    """The frozen encoder a training config describes, for frames of ``views`` cameras side by side."""
    return build_encoder(encoder_spec(cfg, views))


def world_model_from_cfg(cfg: Any, proprio_dim: int, state_dim: int, action_dim: int,
                         encoder: ImageEncoder | None = None, views: int = 1) -> VWorldModel:
    """The VWorldModel a training config describes, for a dataset of these dims and frames of ``views`` cameras."""
    return build_world_model(world_model_spec(cfg, views), proprio_dim, state_dim, action_dim, encoder=encoder)
