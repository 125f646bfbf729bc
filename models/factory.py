"""Build a VWorldModel from a (run's) config plus the dataset dimensions; nothing else is read."""

from __future__ import annotations

from typing import Any

from models.alignment import StateAlignment, StateReadout
from models.decoder import PatchDecoder
from models.dino import DinoEncoder, build_dino_encoder
from models.encoders import ActionEncoder, ProprioEncoder
from models.projection import Projection
from models.visual_world_model import VWorldModel
from models.vit import ViTPredictor


def build_encoder(cfg: Any) -> DinoEncoder:
    """The frozen encoder described by ``cfg.encoder`` and ``cfg.img_size``."""
    e = cfg.encoder
    return build_dino_encoder(pretrained=bool(e.pretrained), weights_path=e.get("weights_path") or None,
                              img_size=int(cfg.img_size), feature_key=str(e.feature_key), seed=int(e.seed),
                              num_layers=int(e.get("num_layers", 12)))


def build_world_model(cfg: Any, proprio_dim: int, state_dim: int, action_dim: int = 7,
                      encoder: DinoEncoder | None = None) -> VWorldModel:
    """VWorldModel from ``cfg`` (keys projected_dim, alignment_dim, action_emb_dim, proprio_emb_dim,
    num_hist, num_pred, frameskip, predictor.*, model.*, training.grad_checkpointing)."""
    encoder = encoder if encoder is not None else build_encoder(cfg)
    m, p = cfg.model, cfg.predictor
    projected_dim, action_emb = int(cfg.projected_dim), int(cfg.action_emb_dim)
    alignment_dim = int(cfg.alignment_dim)
    if not 0 < alignment_dim <= projected_dim:
        raise ValueError(f"alignment_dim={alignment_dim} must be in 1..projected_dim={projected_dim}")
    predictor = ViTPredictor(num_frames=int(cfg.num_hist), num_patches=encoder.num_patches,
                             in_dim=projected_dim + action_emb, out_dim=projected_dim, depth=int(p.depth),
                             heads=int(p.heads), mlp_ratio=float(p.mlp_ratio), dropout=float(p.dropout),
                             grad_checkpointing=bool(cfg.training.get("grad_checkpointing", False)))
    dyn_weight = float(m.dyn_weight)
    return VWorldModel(
        encoder=encoder,
        proprio_encoder=ProprioEncoder(proprio_dim, int(cfg.proprio_emb_dim)),
        action_encoder=ActionEncoder(action_dim * int(cfg.frameskip), action_emb),
        projection=Projection(encoder.emb_dim + int(cfg.proprio_emb_dim), projected_dim,
                              int(m.projection_hidden)),
        predictor=predictor,
        alignment=StateAlignment(state_dim, alignment_dim, float(m.init_temperature)),
        state_readout=StateReadout(alignment_dim, state_dim) if dyn_weight > 0 else None,
        decoder=PatchDecoder(projected_dim, int(cfg.img_size)) if m.decoder else None,
        num_hist=int(cfg.num_hist), num_pred=int(cfg.num_pred), frameskip=int(cfg.frameskip),
        action_dim=action_dim, alignment_dim=alignment_dim, align_weight=float(m.align_weight),
        dyn_weight=dyn_weight, decoder_weight=float(m.decoder_weight), target_stop_grad=bool(m.target_stop_grad),
        residual=bool(m.get("residual", False)))
