"""Model-free and model-based random baselines.

* ``RandomActionPlanner`` (``planner=random``): uniformly random actions inside the env's bounds; the
  world model is not consulted. This is the "random-action baseline" of the evaluation.
* ``RandomShootingPlanner`` (``planner=random_shooting``): draws ``num_samples * opt_steps`` uniform
  sequences, scores them all with the world model and keeps the best: the same rollout budget as CEM
  without the refits, the usual yardstick for CEM.
"""

from __future__ import annotations

import torch

from planning.objectives import LatentGoalObjective
from planning.planners.protocol import PlanContext, PlanResult
from planning.planners.rollout import encode_context, evaluate_candidates, rollout_predictions
from planning.planners.sampling import per_episode_uniform, pin_fixed_dims


def uniform_sequences(ctx: PlanContext, n: int, device) -> torch.Tensor:
    """[B, n, h, A] sequences uniform in [action_low, action_high] (normalised space)."""
    low, high = ctx.action_low.to(device), ctx.action_high.to(device)
    u = per_episode_uniform(ctx.generators, (n, ctx.horizon, low.shape[-1]), device)
    return low + (high - low) * u


class RandomActionPlanner:
    """Random actions, uniform in the env's action box; ignores the model and the goal."""

    name = "random"
    uses_model = False

    def __init__(self, horizon: int = 5):
        self.horizon = int(horizon)

    def plan(self, ctx: PlanContext) -> PlanResult:
        device = ctx.z_goal.device
        return PlanResult(actions=uniform_sequences(ctx, 1, device)[:, 0])


class RandomShootingPlanner:
    """Best of ``num_samples * opt_steps`` uniform random sequences under the world model.

    The candidates are scored in ``opt_steps`` rounds of ``num_samples`` (all episodes batched per
    round, ``chunk_size`` rollouts per forward), keeping the best so far per episode.
    """

    name = "random_shooting"
    uses_model = True
    searches_by_cost = True

    def __init__(self, model, objective: LatentGoalObjective, horizon: int = 5, num_samples: int = 300,
                 opt_steps: int = 30, chunk_size: int = 4096):
        if num_samples < 1 or opt_steps < 1:
            raise ValueError(f"planner.num_samples={num_samples}, planner.opt_steps={opt_steps}: both must be >= 1")
        self.model, self.objective = model, objective
        self.horizon, self.num_samples, self.opt_steps = int(horizon), int(num_samples), int(opt_steps)
        self.chunk_size = int(chunk_size)

    @torch.no_grad()
    def plan(self, ctx: PlanContext) -> PlanResult:
        device = ctx.z_goal.device
        best, best_cost = None, None
        for _ in range(self.opt_steps):
            cand = pin_fixed_dims(ctx, uniform_sequences(ctx, self.num_samples, device))  # [B, N, h, A]
            costs = evaluate_candidates(self.model, self.objective, ctx, cand, self.chunk_size)
            c, i = costs.min(dim=1)
            pick = cand[torch.arange(cand.shape[0], device=device), i]
            if best is None:
                best, best_cost = pick, c
            else:
                better = c < best_cost
                best = torch.where(better[:, None, None], pick, best)
                best_cost = torch.minimum(c, best_cost)
        z = rollout_predictions(self.model, ctx.obs_0, ctx.past_actions, best, z_obs=encode_context(self.model, ctx))
        return PlanResult(actions=best, z_pred=z, cost=self.objective(z, ctx.z_goal))
