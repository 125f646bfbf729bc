"""Frozen DINOv2 ViT-S/14 image encoder (transformers ``Dinov2Model``) and its weight sources.

Weight sources, in order (see :func:`build_dino_encoder`):

1. ``weights_path``: a file in the official ``dinov2_vits14_pretrain.pth`` key format
   (``cls_token``, ``pos_embed``, ``mask_token``, ``patch_embed.proj.*``, ``blocks.N.*``, ``norm.*``),
   converted to the Hugging Face layout by :func:`official_to_hf`;
2. a local Hugging Face snapshot / cache of ``facebook/dinov2-small`` at a pinned revision;
3. a download of that snapshot when a network is there (not when ``HF_HUB_OFFLINE=1``).

``pretrained=False`` builds seeded random weights (identical for the same seed), and says so loudly.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from transformers import Dinov2Config, Dinov2Model

from utils.errors import first_line

log = logging.getLogger(__name__)

HF_REPO_ID = "facebook/dinov2-small"
HF_REVISION = "ed25f3a31f01632728cabb09d1542f84ab7b0056"  # pinned commit of facebook/dinov2-small
OFFICIAL_FILE_NAME = "dinov2_vits14_pretrain.pth"
OFFICIAL_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURE_KEYS = ("x_norm_patchtokens", "cls")
EMBED_DIM = 384
PATCH_SIZE = 14


def vits14_config(num_layers: int = 12) -> Dinov2Config:
    """The ViT-S/14 configuration of DINOv2 (384 wide, 6 heads, layerscale, 518-px position grid)."""
    return Dinov2Config(hidden_size=EMBED_DIM, num_hidden_layers=num_layers, num_attention_heads=6,
                        intermediate_size=4 * EMBED_DIM, mlp_ratio=4, patch_size=PATCH_SIZE, image_size=518,
                        layerscale_value=1.0, layer_norm_eps=1e-6, qkv_bias=True, use_swiglu_ffn=False)


def _attn_names(hf_keys: set[str]) -> dict[str, str]:
    """Names of the attention sub-modules in this transformers version's Dinov2 layout."""
    if any(".attention.q_proj." in k for k in hf_keys):
        return {"q": "attention.q_proj", "k": "attention.k_proj", "v": "attention.v_proj",
                "o": "attention.o_proj", "ls1": "layer_scale1.lambda1", "ls2": "layer_scale2.lambda1"}
    return {"q": "attention.attention.query", "k": "attention.attention.key",
            "v": "attention.attention.value", "o": "attention.output.dense",
            "ls1": "layer_scale1.lambda1", "ls2": "layer_scale2.lambda1"}


# official DINOv2 key -> Hugging Face Dinov2Model key, outside the blocks (mask_token also changes shape)
_TOP_KEYS = {
    "cls_token": "embeddings.cls_token",
    "pos_embed": "embeddings.position_embeddings",
    "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
    "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
    "norm.weight": "layernorm.weight",
    "norm.bias": "layernorm.bias",
}


def _qkv_keys(i: int, n: dict[str, str]) -> list[tuple[str, tuple[str, str, str]]]:
    """(official fused qkv key, its HF query / key / value keys) of block ``i``, weight and bias."""
    b, h = f"blocks.{i}.", f"encoder.layer.{i}."
    return [(f"{b}attn.qkv.{part}", tuple(f"{h}{n[c]}.{part}" for c in ("q", "k", "v"))) for part in ("weight", "bias")]


def _block_keys(i: int, n: dict[str, str]) -> list[tuple[str, str]]:
    """(official key, HF key) of block ``i``'s tensors that map one to one (all but the fused qkv)."""
    b, h = f"blocks.{i}.", f"encoder.layer.{i}."
    pairs = [(f"{b}ls1.gamma", f"{h}{n['ls1']}"), (f"{b}ls2.gamma", f"{h}{n['ls2']}")]
    for part in ("weight", "bias"):
        pairs.append((f"{b}attn.proj.{part}", f"{h}{n['o']}.{part}"))
        pairs += [(f"{b}{name}.{part}", f"{h}{name}.{part}") for name in ("norm1", "norm2", "mlp.fc1", "mlp.fc2")]
    return pairs


def official_to_hf(sd: dict[str, torch.Tensor], hf_keys: set[str]) -> dict[str, torch.Tensor]:
    """Convert an official DINOv2 state dict to the Hugging Face ``Dinov2Model`` layout.

    ``blocks.N.attn.qkv`` [3*384, 384] is split into query / key / value. ``hf_keys`` are the keys of
    the target model's state dict (the attention names differ between transformers versions).
    """
    n = _attn_names(hf_keys)
    out = {hf: sd[official] for official, hf in _TOP_KEYS.items()}
    out["embeddings.mask_token"] = sd["mask_token"].reshape(1, -1)
    for i in sorted({int(k.split(".")[1]) for k in sd if k.startswith("blocks.")}):
        for qkv, hf_keys_qkv in _qkv_keys(i, n):  # the fused [3 * 384, ...] tensor split in three
            out.update(zip(hf_keys_qkv, sd[qkv].chunk(3, dim=0)))
        out.update({hf: sd[official] for official, hf in _block_keys(i, n)})
    unknown = [k for k in sd if not (k.startswith("blocks.") or k in _TOP_KEYS or k == "mask_token")]
    if unknown:
        raise KeyError(f"unexpected keys in the official DINOv2 state dict: {unknown[:5]}")
    return out


def hf_to_official(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`official_to_hf` (used to export / test): HF layout -> official keys."""
    n = _attn_names(set(sd))
    out = {official: sd[hf] for official, hf in _TOP_KEYS.items()}
    out["mask_token"] = sd["embeddings.mask_token"].reshape(1, -1)
    for i in sorted({int(k.split(".")[2]) for k in sd if k.startswith("encoder.layer.")}):
        out.update({qkv: torch.cat([sd[k] for k in hf_qkv], dim=0) for qkv, hf_qkv in _qkv_keys(i, n)})
        out.update({official: sd[hf] for official, hf in _block_keys(i, n)})
    return out


def state_dict_hash(sd: dict[str, torch.Tensor]) -> str:
    """sha256 over the sorted keys and the float32 bytes of a state dict (16 hex digits)."""
    h = hashlib.sha256()
    for k in sorted(sd):
        h.update(k.encode())
        h.update(sd[k].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class DinoEncoder(nn.Module):
    """Frozen DINOv2 encoder: images [B, 3, H, W] in [0, 1] -> features [B, P, 384].

    Images are resized to ``img_size`` (a multiple of 14; P = (img_size / 14)^2 patch tokens) and
    normalised with the ImageNet mean / std. ``feature_key="cls"`` returns the CLS token as P = 1.
    ``views`` = V > 1: each image holds V square views side by side ([B, 3, H, V * W]); every view is resized and
    encoded on its own (its own positional embeddings, no attention across views) and the V token sets follow
    each other, P = V x one view's.
    """

    name = "dinov2_vits14"
    patch_size = PATCH_SIZE  # read by the settings check and the cache tool through the factory's registry
    feature_keys = FEATURE_KEYS
    emb_dim = EMBED_DIM

    def __init__(self, model: Dinov2Model, img_size: int = 196, feature_key: str = "x_norm_patchtokens",
                 pretrained: bool = True, weights_source: str = "", views: int = 1):
        super().__init__()
        if img_size % PATCH_SIZE:
            raise ValueError(f"img_size must be a multiple of {PATCH_SIZE}, got {img_size}")
        if views < 1:
            raise ValueError(f"views must be >= 1, got {views}")
        self.views = int(views)
        if feature_key not in FEATURE_KEYS:
            raise ValueError(f"feature_key must be one of {FEATURE_KEYS}, got {feature_key!r}")
        self.model = model
        self.img_size, self.feature_key = img_size, feature_key
        self.pretrained, self.weights_source = pretrained, weights_source
        self.emb_dim = model.config.hidden_size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.weights_hash = state_dict_hash(model.state_dict())
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    @property
    def num_patches(self) -> int:
        return self.views * (1 if self.feature_key == "cls" else (self.img_size // PATCH_SIZE) ** 2)

    def cache_key(self) -> str:
        """Identifies the features this encoder produces (name, weights, image size, feature key, views > 1)."""
        views = f"-v{self.views}" if self.views > 1 else ""
        return f"{self.name}-{self.weights_hash}-{self.img_size}-{self.feature_key}{views}"

    def train(self, mode: bool = True) -> DinoEncoder:
        return super().train(False)  # always frozen, eval mode

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images float [B, 3, H, V * W] in [0, 1] -> features float [B, P, 384] (P = V x one view's tokens)."""
        x = images.to(self.mean.dtype)
        if self.views > 1:
            if x.shape[-1] % self.views:
                raise ValueError(f"an image of width {x.shape[-1]} does not hold {self.views} views side by side")
            x = rearrange(x, "b c h (v w) -> (b v) c h w", v=self.views)
        if x.shape[-2:] != (self.img_size, self.img_size):
            x = F.interpolate(x, size=(self.img_size, self.img_size), mode="bilinear",
                              align_corners=False, antialias=True)
        x = (x - self.mean) / self.std
        hidden = self.model(pixel_values=x).last_hidden_state  # [B * V, 1 + P / V, 384], layer-normed
        tokens = hidden[:, :1] if self.feature_key == "cls" else hidden[:, 1:]
        return rearrange(tokens, "(b v) p d -> b (v p) d", v=self.views)


class UnreadableWeightsError(FileNotFoundError):
    """The weights file named is there but holds no usable ViT-S/14 state dict: to callers it is the same as
    no weights found (one line, exit 2), with the reason in the message."""


def _load_official(path: Path, model: Dinov2Model) -> None:
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
            sd = sd["model"]
        if not isinstance(sd, dict):
            raise ValueError(f"holds a {type(sd).__name__}, not a state dict")
        model.load_state_dict(official_to_hf(sd, set(model.state_dict())), strict=True)
    except (EOFError, RuntimeError, ValueError, KeyError, pickle.UnpicklingError) as exc:
        raise UnreadableWeightsError(f"{path} is not a readable DINOv2 ViT-S/14 checkpoint: "
                                     f"{first_line(exc)}") from exc


def _load_hf_snapshot() -> Dinov2Model:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    return Dinov2Model.from_pretrained(HF_REPO_ID, revision=HF_REVISION, local_files_only=offline)


def build_dino_encoder(pretrained: bool = True, weights_path: str | Path | None = None, img_size: int = 196,
                       feature_key: str = "x_norm_patchtokens", seed: int = 0,
                       num_layers: int = 12, views: int = 1) -> DinoEncoder:
    """Build the frozen encoder from the first reachable weight source (see module docstring).

    ``num_layers`` < 12 is only meant for random-weight tests. Raises ``FileNotFoundError`` with the
    places to put the weights when ``pretrained`` and no source is reachable.
    """
    if not pretrained:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = Dinov2Model(vits14_config(num_layers))
        log.warning("ENCODER USES RANDOM WEIGHTS (encoder.pretrained=false, seed %d): features are not "
                    "DINOv2 features", seed)
        return DinoEncoder(model, img_size, feature_key, pretrained=False, weights_source=f"random(seed={seed})",
                           views=views)
    if num_layers != 12:
        raise ValueError(f"pretrained DINOv2 ViT-S/14 has 12 layers, got num_layers={num_layers}")
    if weights_path:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"encoder.weights_path={path} does not exist (download {OFFICIAL_URL})")
        model = Dinov2Model(vits14_config())
        _load_official(path, model)
        log.info("DINOv2 weights loaded from official file %s", path)
        return DinoEncoder(model, img_size, feature_key, pretrained=True, weights_source=str(path), views=views)
    try:
        model = _load_hf_snapshot()
    except OSError as e:
        raise FileNotFoundError(
            f"no DINOv2 ViT-S/14 weights reachable: put {OFFICIAL_FILE_NAME} (from {OFFICIAL_URL}) somewhere "
            f"and pass encoder.weights_path=/path/to/{OFFICIAL_FILE_NAME}, or place a Hugging Face snapshot "
            f"of {HF_REPO_ID} (revision {HF_REVISION[:8]}) in the HF cache (HF_HOME), or run once online; "
            f"encoder.pretrained=false trains with a random encoder. ({type(e).__name__})") from None
    log.info("DINOv2 weights loaded from the Hugging Face snapshot %s@%s", HF_REPO_ID, HF_REVISION[:8])
    return DinoEncoder(model, img_size, feature_key, pretrained=True, weights_source=f"hf:{HF_REPO_ID}@{HF_REVISION}",
                       views=views)
