"""Build a VWorldModel from typed specs plus the dataset dimensions; no config object is read here.

Training turns its Hydra config into these specs (``training/model_config.py``); a planning run
rebuilds them from the config frozen in its run dir the same way.

Encoders are picked by name from a registry (:data:`ENCODERS`, filled by :func:`register_encoder`): the name's
builder makes the encoder from an :class:`EncoderSpec`, and its class tells the settings check and the cache tool,
before anything is built, what they check (``patch_size``, ``feature_keys``, ``emb_dim``: see
``models/image_encoder.py``). Nothing outside this file and the encoder's own module names an encoder's specifics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from models.alignment import StateAlignment, StateReadout
from models.decoder import PatchDecoder
from models.dino import DinoEncoder, build_dino_encoder
from models.encoders import ActionEncoder, ProprioEncoder
from models.image_encoder import ImageEncoder, views_of
from models.projection import Projection
from models.visual_world_model import VWorldModel
from models.vit import ViTPredictor

DEFAULT_ENCODER = "dinov2_vits14"  # what a config without ``encoder.name`` (a run saved before the key) means


@dataclass(frozen=True)
class EncoderSpec:
    """The frozen encoder: which one (``name``), weights (pretrained / seeded random / a file), input size, output.
    Each encoder's builder reads the fields it uses (``num_layers``, ``weights_path``: DINOv2's)."""

    name: str = DEFAULT_ENCODER
    pretrained: bool = True
    weights_path: str | None = None
    img_size: int = 196
    feature_key: str = "x_norm_patchtokens"
    seed: int = 0
    num_layers: int = 12
    views: int = 1  # square views side by side in each frame (the dataset's meta.json ``views``), encoded each alone


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


@dataclass(frozen=True)
class RegisteredEncoder:
    """One entry of :data:`ENCODERS`: the encoder's class (read before building: ``patch_size``, ``feature_keys``,
    ``emb_dim``) and its builder (an :class:`EncoderSpec` -> the frozen encoder, an instance of ``cls``)."""

    cls: type
    build: Callable[[EncoderSpec], ImageEncoder]


ENCODERS: dict[str, RegisteredEncoder] = {}  # name (``encoder.name``, conf/encoder/<name>.yaml) -> its entry
CLASS_ATTRIBUTES = ("patch_size", "feature_keys", "emb_dim")  # what the checks read of a class


def register_encoder(name: str, cls: type, build: Callable[[EncoderSpec], ImageEncoder]) -> None:
    """Make ``encoder.name=<name>`` build ``build(spec)`` (an instance of ``cls`` whose ``name`` is ``name``).
    Registering a name again with the same class replaces its builder; with another class raises ValueError."""
    missing = [a for a in CLASS_ATTRIBUTES if not hasattr(cls, a)]
    if missing:
        raise TypeError(f"encoder class {cls.__name__} lacks {', '.join(missing)} (models/image_encoder.py)")
    if not (isinstance(cls.patch_size, int) and cls.patch_size >= 1 and cls.feature_keys
            and all(isinstance(k, str) for k in cls.feature_keys)):
        raise TypeError(f"encoder class {cls.__name__}: patch_size must be an int >= 1 and feature_keys a "
                        f"non-empty tuple of names, got {cls.patch_size!r}, {cls.feature_keys!r}")
    if name in ENCODERS and ENCODERS[name].cls is not cls:
        raise ValueError(f"encoder {name!r} is registered already (class {ENCODERS[name].cls.__name__})")
    ENCODERS[name] = RegisteredEncoder(cls, build)


def check_encoder_name(name: str) -> None:
    """Raise ValueError (one line) unless ``build_encoder`` knows ``name``."""
    if name not in ENCODERS:
        raise ValueError(f"encoder.name={name!r} is not an encoder this project builds ({', '.join(ENCODERS)}); "
                         "a new one is added in models/factory.py (README: Add an encoder)")


def encoder_class(name: str) -> type:
    """The class of the encoder ``name`` (its ``patch_size``, ``feature_keys``, ``emb_dim``); ValueError for a name
    the registry lacks."""
    check_encoder_name(name)
    return ENCODERS[name].cls


def build_encoder(spec: EncoderSpec) -> ImageEncoder:
    """The frozen encoder described by ``spec`` (raises ValueError for a name it does not know)."""
    check_encoder_name(spec.name)
    encoder = ENCODERS[spec.name].build(spec)
    if getattr(encoder, "name", None) != spec.name:
        raise ValueError(f"the builder of encoder {spec.name!r} made one named {getattr(encoder, 'name', None)!r}")
    if views_of(encoder) != spec.views:
        raise ValueError(f"encoder {spec.name!r} takes {views_of(encoder)} view(s) per frame, the data holds "
                         f"{spec.views}: convert with one camera (--camera agentview) or give the encoder views")
    return encoder


def _build_dino(spec: EncoderSpec) -> DinoEncoder:
    return build_dino_encoder(pretrained=spec.pretrained, weights_path=spec.weights_path or None,
                              img_size=spec.img_size, feature_key=spec.feature_key, seed=spec.seed,
                              num_layers=spec.num_layers, views=spec.views)


register_encoder("dinov2_vits14", DinoEncoder, _build_dino)


def build_world_model(spec: WorldModelSpec, proprio_dim: int, state_dim: int, action_dim: int,
                      encoder: ImageEncoder | None = None) -> VWorldModel:
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
        decoder=PatchDecoder(s.projected_dim, s.encoder.img_size, views=views_of(encoder))
        if s.decoder else None,
        num_hist=s.num_hist, num_pred=s.num_pred, frameskip=s.frameskip, action_dim=action_dim,
        alignment_dim=s.alignment_dim, align_weight=s.align_weight, dyn_weight=s.dyn_weight,
        decoder_weight=s.decoder_weight, target_stop_grad=s.target_stop_grad, residual=s.residual)
