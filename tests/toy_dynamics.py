"""A toy latent world model with a known optimum, for planner tests (same rollout contract as the real one)."""

from __future__ import annotations

import torch
from einops import rearrange

from planning.base import PlanContext


class ToyLinearWorldModel:
    """z_{t+1} = z_t + W a_t on latents [P, D]; encode_obs reads the latent straight from ``proprio``.

    ``obs["proprio"]`` is [B, T, P * D]; ``rollout(obs_0, act)`` follows the DINO-WM contract
    (act [B, L, A], L >= T0 -> [B, L + 1, P, D], frame T0 + k after act[:, T0 - 1 + k]).
    """

    def __init__(self, action_dim: int = 4, patches: int = 2, dim: int = 4, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.patches, self.dim, self.action_dim = patches, dim, action_dim
        self.weight = torch.randn(action_dim, patches * dim, generator=g) / action_dim ** 0.5
        self.calls = 0

    def encode_obs(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return rearrange(obs["proprio"], "b t (p d) -> b t p d", p=self.patches)

    def rollout(self, obs_0: dict[str, torch.Tensor], act: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        z0 = self.encode_obs(obs_0)
        t0 = z0.shape[1]
        frames, z = list(z0.unbind(1)), z0[:, -1]
        for k in range(t0 - 1, act.shape[1]):
            z = z + rearrange(act[:, k] @ self.weight, "b (p d) -> b p d", p=self.patches)
            frames.append(z)
        return torch.stack(frames, dim=1)


def toy_context(model: ToyLinearWorldModel, optimum: torch.Tensor, seed: int = 0, t0: int = 1) -> PlanContext:
    """A context whose goal is reached exactly by the action sequences ``optimum`` [B, h, A]."""
    b, h, a = optimum.shape
    g = torch.Generator().manual_seed(1000 + seed)
    z_now = torch.randn(b, t0, model.patches * model.dim, generator=g)
    obs = {"proprio": z_now, "visual": torch.zeros(b, t0, 3, 2, 2)}
    past = torch.zeros(b, t0 - 1, a)
    z_goal = model.rollout(obs, torch.cat([past, optimum], 1))[:, -1:]
    return PlanContext(obs_0=obs, past_actions=past, z_goal=z_goal, horizon=h,
                       generators=[torch.Generator().manual_seed(seed * 100 + i) for i in range(b)],
                       action_low=-torch.ones(a), action_high=torch.ones(a))


class LatentToyModel(ToyLinearWorldModel):
    """The toy linear model with the latent-rollout API the prior needs."""

    def rollout_latents(self, z_obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        frames, z = list(z_obs.unbind(1)), z_obs[:, -1]
        for k in range(z_obs.shape[1] - 1, act.shape[1]):
            z = z + (act[:, k] @ self.weight).unflatten(-1, (self.patches, self.dim))
            frames.append(z)
        return torch.stack(frames, dim=1)


class OraclePrior:
    """The least-squares action that covers 1/steps_left of the way to the goal (exact for the toy)."""

    def __init__(self, model: LatentToyModel):
        self.pinv, self.seen = torch.linalg.pinv(model.weight), []

    def __call__(self, z, z_goal, steps_left):
        self.seen.append(steps_left.tolist())
        return ((z_goal - z).flatten(1) / steps_left[:, None]) @ self.pinv
