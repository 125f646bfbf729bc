"""The do-nothing baseline: zero arm motion, the gripper kept at its last command, the model unused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datasets.normalizer import Normalizer
from planning.execution.mpc import MPC
from planning.planners.hold import HoldPlanner
from tests.toy_dynamics import ToyLinearWorldModel, toy_context


def test_hold_planner_repeats_the_hold_action_over_the_horizon():
    model = ToyLinearWorldModel(action_dim=4)
    ctx = toy_context(model, torch.zeros(2, 3, 4))
    ctx.hold_actions = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    res = HoldPlanner(horizon=3).plan(ctx)
    assert res.actions.shape == (2, 3, 4)
    torch.testing.assert_close(res.actions, ctx.hold_actions[:, None].expand(2, 3, 4))  # each episode its own
    assert model.calls == 1  # only the toy context's own goal rollout: the planner never ran the model


def test_hold_planner_without_hold_actions_is_an_error():
    model = ToyLinearWorldModel(action_dim=4)
    with pytest.raises(ValueError, match="hold_actions"):
        HoldPlanner().plan(toy_context(model, torch.zeros(1, 2, 4)))


def test_mpc_hold_actions_are_zero_motion_with_the_last_gripper_command():
    fs = 2
    norm = Normalizer(action_mean=torch.full((7,), 0.5), action_std=torch.full((7,), 2.0),
                      proprio_mean=torch.zeros(9), proprio_std=torch.ones(9),
                      state_mean=torch.zeros(3), state_std=torch.ones(3))
    mpc = MPC(HoldPlanner(), model=None, normalizer=norm, frameskip=fs)
    last = np.array([[0.3, 0.1, -0.2, 0, 0, 0, 1.0], [0.0, 0.0, 0.5, 0, 0, 0, -1.0]], dtype=np.float32)
    raw = norm.denormalize_action(mpc._hold_actions(last)).numpy().reshape(2, fs, 7)
    np.testing.assert_allclose(raw[..., :6], 0.0, atol=1e-6)
    np.testing.assert_allclose(raw[0, :, 6], 1.0, atol=1e-6)
    np.testing.assert_allclose(raw[1, :, 6], -1.0, atol=1e-6)
