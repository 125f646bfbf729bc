"""Per-episode random draws of the sampling planners (each episode from its own seeded generator, so its samples
do not depend on which other episodes share the batch), and the action dims they keep fixed."""

from __future__ import annotations

import torch

from planning.planners.protocol import PlanContext


def pin_fixed_dims(ctx: PlanContext, actions: torch.Tensor) -> torch.Tensor:
    """``actions`` [..., A] (normalised) with ``ctx.fixed_dims`` set to 0, the training data's only value."""
    if ctx.fixed_dims is None:
        return actions
    return actions.masked_fill(ctx.fixed_dims.to(actions.device), 0.0)


def per_episode_noise_steps(generators: list[torch.Generator], steps: int, shape: tuple[int, ...], device,
                            dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise [steps, B, *shape] for ``steps`` iterations: episode ``i`` drawn from
    ``generators[i]`` (CPU), iteration by iteration (the numbers one draw per iteration would give), and
    moved to ``device`` in one copy that does not wait for the GPU (pinned host memory)."""
    noise = torch.empty(steps, len(generators), *shape, dtype=dtype)
    for k in range(steps):
        for i, g in enumerate(generators):
            noise[k, i] = torch.randn(shape, generator=g, dtype=dtype)
    device = torch.device(device)
    if device.type == "cuda":
        return noise.pin_memory().to(device, non_blocking=True)
    return noise.to(device)


def per_episode_uniform(generators: list[torch.Generator], shape: tuple[int, ...], device, dtype=torch.float32):
    """Uniform [0, 1) noise [B, *shape], episode ``i`` drawn from ``generators[i]`` (CPU), moved to device."""
    return torch.stack([torch.rand(shape, generator=g, dtype=dtype) for g in generators]).to(device)
