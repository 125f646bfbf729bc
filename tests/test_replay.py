"""Replay baseline: the recorded actions from the current step, open loop; the model only predicts them."""

import pytest
import torch

from planning.objectives import LatentGoalObjective
from planning.planners.replay import ReplayPlanner
from planning.planners.rollout import rollout_predictions
from tests.toy_dynamics import ToyLinearWorldModel, toy_context


def _ctx(model, h=3):
    optimum = torch.randn(2, h, 4, generator=torch.Generator().manual_seed(0))
    ctx = toy_context(model, optimum)
    ctx.reference_actions = torch.arange(2 * 5 * 4, dtype=torch.float32).reshape(2, 5, 4) / 40
    return ctx, optimum


def test_returns_the_recorded_actions_cut_to_the_horizon_without_a_model():
    ctx, _ = _ctx(ToyLinearWorldModel())
    res = ReplayPlanner(horizon=3).plan(ctx)
    torch.testing.assert_close(res.actions, ctx.reference_actions[:, :3])
    assert res.z_pred is None and res.cost is None


def test_with_a_model_the_prediction_and_cost_of_the_recorded_actions_are_reported():
    model = ToyLinearWorldModel()
    ctx, optimum = _ctx(model)
    obj = LatentGoalObjective()
    res = ReplayPlanner(model, obj, horizon=3).plan(ctx)
    torch.testing.assert_close(res.actions, ctx.reference_actions[:, :3])  # the model never changes them
    torch.testing.assert_close(res.z_pred, rollout_predictions(model, ctx.obs_0, ctx.past_actions, res.actions))
    torch.testing.assert_close(res.cost, obj(res.z_pred, ctx.z_goal))
    ctx.reference_actions = torch.cat([optimum, optimum[:, -1:]], 1)  # the goal's own actions: zero cost
    assert ReplayPlanner(model, obj, horizon=3).plan(ctx).cost.abs().max() < 1e-5


def test_without_recorded_actions_it_refuses():
    ctx, _ = _ctx(ToyLinearWorldModel())
    ctx.reference_actions = None
    with pytest.raises(ValueError, match="dataset actions"):
        ReplayPlanner().plan(ctx)
