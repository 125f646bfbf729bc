"""The batched, chunked latent rollout the model-based planners share, and the dtype it runs in.

Shapes: ``B`` episodes planned together, ``N`` candidate sequences per episode, ``h`` planned steps,
``A = action_dim * frameskip``, ``T0`` history frames, ``P`` patches, ``D`` = projected_dim. Every action here is
in the model's *normalised* space.
"""

from __future__ import annotations

import contextlib

import torch
from einops import rearrange

from planning.objectives import LatentGoalObjective
from planning.planners.protocol import PlanContext


def supports_latent_rollout(model) -> bool:
    """True for world models that can roll out from encoded observations (``rollout_latents``)."""
    return hasattr(model, "rollout_latents") and hasattr(model, "encode_obs")


def rollout_dtype(device: torch.device | str) -> torch.dtype | None:
    """Autocast dtype of planning rollouts on ``device``: bf16 on a CUDA GPU that has it, else None (fp32)."""
    device = torch.device(device)
    native = device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.bfloat16 if native else None


def rollout_autocast(device: torch.device | str):
    """Context for the model calls of a rollout: bf16 autocast on CUDA, nothing (fp32) elsewhere. Without
    autocast's cache of cast weights (640 k parameters: nothing to save), so a CUDA graph recorded inside
    it never refers to cast weights another autocast region owns."""
    dtype = rollout_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype, cache_enabled=False)


def rollout_predictions(model, obs_0: dict[str, torch.Tensor], past_actions: torch.Tensor,
                        actions: torch.Tensor, z_obs: torch.Tensor | None = None) -> torch.Tensor:
    """Predicted latents after each planned action.

    Args:
        model: world model with ``rollout(obs_0, act)`` (DINO-WM semantics: ``act`` [b, L, A] with
            L >= T0 gives [b, L + 1, P, D], where frame ``T0 + k`` is the prediction after ``act[:, T0-1+k]``).
        obs_0: {"visual" or "features": [b, T0, ...], "proprio": [b, T0, p]}.
        past_actions: [b, T0 - 1, A].
        actions: [b, h, A] planned actions (the first one is applied at the current frame).
        z_obs: [b, T0, P, D] the encoded ``obs_0`` if already known (then the model's step API is used).
    Returns:
        [b, h, P, D] float32: frame ``k`` is the prediction after ``actions[:, k]``.

    The model runs under :func:`rollout_autocast` (bf16 on CUDA); observations are encoded and the
    predicted latents kept and returned in fp32, so objectives compare fp32 latents.
    """
    t0 = obs_0["proprio"].shape[1]
    act = torch.cat([past_actions.to(actions), actions], dim=1)
    if z_obs is None and supports_latent_rollout(model):
        z_obs = model.encode_obs(obs_0)
    with rollout_autocast(actions.device):
        z = model.rollout(obs_0, act) if z_obs is None else model.rollout_latents(z_obs.float(), act)
    return z[:, t0:].float()


def encode_context(model, ctx: PlanContext) -> torch.Tensor | None:
    """[B, T0, P, D] encoded ``ctx.obs_0`` when the model supports latent rollouts, else None."""
    return model.encode_obs(ctx.obs_0) if supports_latent_rollout(model) else None


def expand_obs(obs_0: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pick rows ``index`` [n] of every tensor in ``obs_0`` ([B, ...] -> [n, ...])."""
    return {k: v[index] for k, v in obs_0.items()}


@torch.no_grad()
def evaluate_candidates(model, objective: LatentGoalObjective, ctx: PlanContext, candidates: torch.Tensor,
                        chunk_size: int, z_obs: torch.Tensor | None = None) -> torch.Tensor:
    """Objective of every candidate sequence of every episode, in batched chunks.

    All ``B * N`` rollouts go through the model together, ``chunk_size`` of them per forward pass
    (this bounds memory; it is not a loop over episodes). Observations are encoded once per episode.
    Rollouts run in bf16 on CUDA (:func:`rollout_predictions`); costs are computed in fp32.

    Args:
        candidates: [B, N, h, A] normalised action sequences.
        z_obs: [B, T0, P, D] ``ctx.obs_0`` already encoded (:func:`encode_context`), or None: encoded here.
    Returns:
        [B, N] costs.
    """
    b, n = candidates.shape[:2]
    flat = rearrange(candidates, "b n h a -> (b n) h a")
    episode_of = torch.arange(b * n, device=flat.device) // n  # [B*N]: no host sync (CEM graphs this call)
    if z_obs is None:
        z_obs = encode_context(model, ctx)
    costs = []
    for start in range(0, b * n, max(1, chunk_size)):
        idx = episode_of[start:start + chunk_size]
        # latent rollouts read only the number of history frames of obs_0: its frames are not copied per sample
        obs = expand_obs(ctx.obs_0, idx) if z_obs is None else ctx.obs_0
        z = rollout_predictions(model, obs, ctx.past_actions[idx], flat[start:start + chunk_size],
                                z_obs=None if z_obs is None else z_obs[idx])
        costs.append(objective(z, ctx.z_goal[idx].float()))
    return rearrange(torch.cat(costs), "(b n) -> b n", b=b)
