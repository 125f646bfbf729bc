"""Open-loop replay baseline: execute the dataset's own actions from the start frame."""

from __future__ import annotations

import torch

from planning.planners.protocol import PlanResult, ReadsDemonstration, ReplayContext
from planning.planners.rollout import encode_context, rollout_predictions


class ReplayPlanner(ReadsDemonstration):
    """Returns ``ctx.reference_actions`` (the recorded actions from the current step), open loop: the only
    planner given the demonstration's actions (a :class:`~planning.planners.protocol.ReadsDemonstration`, so the MPC hands
    it a :class:`~planning.planners.protocol.ReplayContext`).

    When a model is given, the plan's predicted latents are computed too (for imagined frames and the
    latent distance of the recorded actions), but they never change the actions.
    """

    name = "replay"
    uses_model = False

    def __init__(self, model=None, objective=None, horizon: int = 5):
        self.model, self.objective, self.horizon = model, objective, int(horizon)

    @torch.no_grad()
    def plan(self, ctx: ReplayContext) -> PlanResult:
        if getattr(ctx, "reference_actions", None) is None:
            raise ValueError("the replay planner needs the dataset actions (goal_source: dset)")
        actions = ctx.reference_actions[:, : ctx.horizon]
        if self.model is None:
            return PlanResult(actions=actions)
        z = rollout_predictions(self.model, ctx.obs_0, ctx.past_actions, actions, z_obs=encode_context(self.model, ctx))
        cost = self.objective(z, ctx.z_goal) if self.objective is not None else None
        return PlanResult(actions=actions, z_pred=z, cost=cost)
