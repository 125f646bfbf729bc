"""The thin adapter from a training config (Hydra / OmegaConf, or a run's frozen config) to the typed
model specs of ``models/factory.py``: the only place that knows which config key feeds which field."""

from __future__ import annotations

from typing import Any

from models.dino import DinoEncoder
from models.factory import EncoderSpec, PredictorSpec, WorldModelSpec, build_encoder, build_world_model
from models.visual_world_model import VWorldModel


def encoder_spec(cfg: Any) -> EncoderSpec:
    """``cfg.encoder`` and ``cfg.img_size`` -> EncoderSpec."""
    e = cfg.encoder
    return EncoderSpec(name=str(e.get("name", "dinov2_vits14")), pretrained=bool(e.pretrained), weights_path=e.get("weights_path") or None,
                       img_size=int(cfg.img_size), feature_key=str(e.feature_key), seed=int(e.seed),
                       num_layers=int(e.get("num_layers", 12)))


def world_model_spec(cfg: Any) -> WorldModelSpec:
    """The model keys of a training config (projected_dim, alignment_dim, action_emb_dim, proprio_emb_dim,
    num_hist, num_pred, frameskip, img_size, encoder.*, predictor.*, model.*, training.grad_checkpointing)."""
    m, p = cfg.model, cfg.predictor
    predictor = PredictorSpec(depth=int(p.depth), heads=int(p.heads), mlp_ratio=float(p.mlp_ratio),
                              dropout=float(p.dropout),
                              grad_checkpointing=bool(cfg.training.get("grad_checkpointing", False)))
    return WorldModelSpec(
        encoder=encoder_spec(cfg), predictor=predictor, projected_dim=int(cfg.projected_dim),
        alignment_dim=int(cfg.alignment_dim), action_emb_dim=int(cfg.action_emb_dim),
        proprio_emb_dim=int(cfg.proprio_emb_dim), num_hist=int(cfg.num_hist), num_pred=int(cfg.num_pred),
        frameskip=int(cfg.frameskip), projection_hidden=int(m.projection_hidden),
        init_temperature=float(m.init_temperature), align_weight=float(m.align_weight),
        dyn_weight=float(m.dyn_weight), state_readout=str(m.get("state_readout", "mean")), decoder=bool(m.decoder), decoder_weight=float(m.decoder_weight),
        target_stop_grad=bool(m.target_stop_grad), residual=bool(m.get("residual", False)))


def encoder_from_cfg(cfg: Any) -> DinoEncoder:
    """The frozen encoder a training config describes."""
    return build_encoder(encoder_spec(cfg))


def world_model_from_cfg(cfg: Any, proprio_dim: int, state_dim: int, action_dim: int,
                         encoder: DinoEncoder | None = None) -> VWorldModel:
    """The VWorldModel a training config describes, for a dataset of these dims."""
    return build_world_model(world_model_spec(cfg), proprio_dim, state_dim, action_dim, encoder=encoder)
