"""Do-nothing baseline: hold the arm still and keep the gripper as it was (the model is not consulted)."""

from __future__ import annotations

import torch

from planning.planners.protocol import PlanContext, PlanResult


class HoldPlanner:
    """Returns ``ctx.hold_actions`` at every step: zero OSC motion, the gripper command of the last
    executed (or, at the start, the last recorded) action. It shows what staying put scores, e.g. when
    the start state already satisfies the task or sits close to the goal."""

    name = "hold"
    uses_model = False

    def __init__(self, horizon: int = 5):
        self.horizon = int(horizon)

    @torch.no_grad()
    def plan(self, ctx: PlanContext) -> PlanResult:
        if ctx.hold_actions is None:
            raise ValueError("the hold planner needs ctx.hold_actions (given by the MPC)")
        actions = ctx.hold_actions[:, None].expand(-1, ctx.horizon, -1).clone()  # [B, h, A]
        return PlanResult(actions=actions)
