"""Plans proposed by a goal-conditioned action prior, rolled out through the world model.

The prior (``models.action_prior.ActionPrior``: any callable ``(z [B, P, D], z_goal [B, P, D],
steps_left [B]) -> chunk [B, A]``) picks each next action chunk from the latent the world model
predicts after the previous ones, so a proposal is a closed loop in imagination. CEM starts its
search there (``CEMPlanner(prior=...)``); :class:`PriorPlanner` executes the proposal as it is (the
baseline that shows what the model's search adds to the prior).
"""

from __future__ import annotations

import torch

from planning.planners.protocol import PlanContext, PlanResult
from planning.planners.rollout import encode_context, rollout_autocast
from planning.planners.sampling import pin_fixed_dims


def bound_actions(ctx: PlanContext, actions: torch.Tensor) -> torch.Tensor:
    """Normalised ``actions`` [..., A] clipped to the env bounds, fixed dims pinned, gripper snapped."""
    low, high = ctx.action_low.to(actions), ctx.action_high.to(actions)
    actions = pin_fixed_dims(ctx, torch.maximum(torch.minimum(actions, high), low))
    return ctx.gripper.snap(actions) if ctx.gripper is not None else actions


@torch.no_grad()
def propose(model, prior, ctx: PlanContext) -> tuple[torch.Tensor, torch.Tensor]:
    """The prior's ``ctx.horizon``-step plan for every episode of ``ctx``.

    Returns:
        actions [B, h, A] normalised (in bounds), z_pred [B, h, P, D]: the model's latent after each.
    """
    z_obs = encode_context(model, ctx)
    if z_obs is None:
        raise ValueError("the action prior needs a world model with latent rollouts (encode_obs / rollout_latents)")
    z_goal = ctx.z_goal[:, -1].float()  # [B, P, D]
    z_all, acts = z_obs.float(), ctx.past_actions.to(z_obs)  # [B, T0 + k, P, D], [B, T0 - 1 + k, A]
    actions = []
    for k in range(ctx.horizon):
        steps_left = torch.full((1,), ctx.horizon - k, device=z_all.device)
        # one episode per call: an episode's proposal does not depend on which episodes share its batch
        chunk = torch.cat([prior(z_all[i:i + 1, -1], z_goal[i:i + 1], steps_left) for i in range(ctx.batch_size)])
        actions.append(bound_actions(ctx, chunk.float()))
        acts = torch.cat([acts, actions[-1][:, None]], dim=1)
        with rollout_autocast(z_all.device):  # one predicted step: the frames so far are the model's context
            z_next = model.rollout_latents(z_all, acts)[:, -1:].float()
        z_all = torch.cat([z_all, z_next], dim=1)
    return torch.stack(actions, dim=1), z_all[:, z_obs.shape[1]:]


class PriorPlanner:
    """Executes the action prior's proposal (no search): ``planner=prior``.

    Args:
        model: world model (rolls the proposal out); objective: only to report the plan's cost;
        prior: the trained prior (``RUN/action_prior``, loaded by ``plan.py``); horizon: planning steps.
    """

    name = "prior"
    uses_model = True

    def __init__(self, model, objective, prior, horizon: int = 5):
        if prior is None:
            raise ValueError("planner=prior needs a trained action prior (python -m training.action_prior RUN)")
        self.model, self.objective, self.prior, self.horizon = model, objective, prior, int(horizon)

    @torch.no_grad()
    def plan(self, ctx: PlanContext) -> PlanResult:
        actions, z = propose(self.model, self.prior, ctx)
        return PlanResult(actions=actions, z_pred=z, cost=self.objective(z, ctx.z_goal))
