"""Build a VWorldModel from typed specs plus the dataset dimensions; no config object is read here.

Training turns its Hydra config into these specs (``training/model_config.py``); a planning run
rebuilds them from the config frozen in its run dir the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.alignment import StateAlignment, StateReadout
from models.decoder import PatchDecoder
from models.dino import DinoEncoder, build_dino_encoder
from models.encoders import ActionEncoder, ProprioEncoder
from models.projection import Projection
from models.visual_world_model import VWorldModel
from models.vit import ViTPredictor


@dataclass(frozen=True)
class EncoderSpec:
    """The frozen encoder: which one (``name``), weights (pretrained / seeded random / a file), input size, output."""

    name: str = "dinov2_vits14"
    pretrained: bool = True
    weights_path: str | None = None
    img_size: int = 196
    feature_key: str = "x_norm_patchtokens"
    seed: int = 0
    num_layers: int = 12


@dataclass(frozen=True)
class PredictorSpec:
    """The frame-causal ViT predictor."""

    depth: int = 6
    heads: int = 5
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    grad_checkpointing: bool = False


@dataclass(frozen=True)
class WorldModelSpec:
    """Everything that shapes a VWorldModel except the dataset's dimensions (see ``build_world_model``)."""

    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    predictor: PredictorSpec = field(default_factory=PredictorSpec)
    projected_dim: int = 64
    alignment_dim: int = 8
    action_emb_dim: int = 16
    proprio_emb_dim: int = 32
    num_hist: int = 3
    num_pred: int = 1
    frameskip: int = 5
    projection_hidden: int = 256
    init_temperature: float = 0.1
    align_weight: float = 1.0
    dyn_weight: float = 0.1
    state_readout: str = "mean"  # "patches": one linear map of every patch's aligned dims; "mean": of their mean
    decoder: bool = False
    decoder_weight: float = 1.0
    target_stop_grad: bool = True
    residual: bool = False

    def __post_init__(self):
        if self.state_readout not in ("mean", "patches"):
            raise ValueError(f"model.state_readout={self.state_readout!r} is not one of mean, patches")
        if not 0 < self.alignment_dim <= self.projected_dim:
            raise ValueError(f"alignment_dim={self.alignment_dim} must be in 1..projected_dim={self.projected_dim}")


ENCODERS = ("dinov2_vits14",)  # the names build_encoder knows (conf/encoder/<name>.yaml)


def check_encoder_name(name: str) -> None:
    """Raise ValueError (one line) unless ``build_encoder`` knows ``name``."""
    if name not in ENCODERS:
        raise ValueError(f"encoder.name={name!r} is not an encoder this project builds ({', '.join(ENCODERS)}); "
                         "a new one is added in models/factory.py (README: Add an encoder)")


def build_encoder(spec: EncoderSpec) -> DinoEncoder:
    """The frozen encoder described by ``spec`` (raises ValueError for a name it does not know)."""
    check_encoder_name(spec.name)
    return build_dino_encoder(pretrained=spec.pretrained, weights_path=spec.weights_path or None,
                              img_size=spec.img_size, feature_key=spec.feature_key, seed=spec.seed,
                              num_layers=spec.num_layers)


def build_world_model(spec: WorldModelSpec, proprio_dim: int, state_dim: int, action_dim: int,
                      encoder: DinoEncoder | None = None) -> VWorldModel:
    """VWorldModel from ``spec`` and the dataset's dims (``encoder``: reuse one already built from
    ``spec.encoder``, e.g. the one that filled the feature cache)."""
    encoder = encoder if encoder is not None else build_encoder(spec.encoder)
    s, p = spec, spec.predictor
    predictor = ViTPredictor(num_frames=s.num_hist, num_patches=encoder.num_patches,
                             in_dim=s.projected_dim + s.action_emb_dim, out_dim=s.projected_dim, depth=p.depth,
                             heads=p.heads, mlp_ratio=p.mlp_ratio, dropout=p.dropout,
                             grad_checkpointing=p.grad_checkpointing)
    return VWorldModel(
        encoder=encoder,
        proprio_encoder=ProprioEncoder(proprio_dim, s.proprio_emb_dim),
        action_encoder=ActionEncoder(action_dim * s.frameskip, s.action_emb_dim),
        projection=Projection(encoder.emb_dim + s.proprio_emb_dim, s.projected_dim, s.projection_hidden),
        predictor=predictor,
        alignment=StateAlignment(state_dim, s.alignment_dim, s.init_temperature),
        state_readout=StateReadout(s.alignment_dim, state_dim,
                                   encoder.num_patches if s.state_readout == "patches" else None)
        if s.dyn_weight > 0 else None,
        decoder=PatchDecoder(s.projected_dim, s.encoder.img_size) if s.decoder else None,
        num_hist=s.num_hist, num_pred=s.num_pred, frameskip=s.frameskip, action_dim=action_dim,
        alignment_dim=s.alignment_dim, align_weight=s.align_weight, dyn_weight=s.dyn_weight,
        decoder_weight=s.decoder_weight, target_stop_grad=s.target_stop_grad, residual=s.residual)
