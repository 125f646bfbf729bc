"""Conversions between env / dataset observations and the world model's inputs."""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange


def to_model_obs(images: np.ndarray, proprios: np.ndarray, normalizer, device) -> dict[str, torch.Tensor]:
    """uint8 images [B, T, H, W, 3] + raw proprios [B, T, p] -> {"visual" [B,T,3,H,W] in [0,1], "proprio" normalised}."""
    visual = torch.as_tensor(np.ascontiguousarray(images), device=device).float().div_(255.0)
    proprio = torch.as_tensor(np.asarray(proprios, dtype=np.float32), device=device)
    return {"visual": rearrange(visual, "b t h w c -> b t c h w"), "proprio": normalizer.normalize_proprio(proprio)}


@torch.no_grad()
def precompute_features(model, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace ``visual`` by the frozen encoder's ``features`` [B, T, P, E] so that the planner's many
    rollouts from the same observation do not re-run the image encoder (``encode_obs`` takes either)."""
    encoder = getattr(model, "encoder", None)
    if encoder is None or "visual" not in obs:
        return obs
    b = obs["visual"].shape[0]
    feats = encoder(obs["visual"].flatten(0, 1)).unflatten(0, (b, -1))
    return {"features": feats, "proprio": obs["proprio"]}


def images_to_uint8(images: torch.Tensor) -> np.ndarray:
    """[..., 3, H, W] float in [0, 1] -> uint8 [..., H, W, 3]."""
    x = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return np.moveaxis(x, -3, -1)


def action_bounds(normalizer, low: np.ndarray, high: np.ndarray, frameskip: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Env bounds [7] -> normalised bounds [7 * frameskip] (normalisation is affine and increasing per dim)."""
    lo = normalizer.normalize_action(torch.as_tensor(np.tile(low, frameskip), dtype=torch.float32))
    hi = normalizer.normalize_action(torch.as_tensor(np.tile(high, frameskip), dtype=torch.float32))
    return torch.minimum(lo, hi), torch.maximum(lo, hi)


def constant_action_dims(normalizer, frameskip: int) -> torch.Tensor:
    """[7 * frameskip] bool: action dims whose training-data std is at the normaliser's floor.

    Such a dim took one value in every training frame (scripted demos never rotate the gripper), so its
    normalised bounds are huge (env bound / 1e-6) and the model never saw it vary: see ``PlanContext.fixed_dims``.
    """
    from datasets.normalizer import _MIN_STD

    return (normalizer.action_std.detach().cpu() <= 10 * _MIN_STD).repeat(int(frameskip))
