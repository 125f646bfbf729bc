"""The latent goal objective: last-step vs discounted all-step costs and the aligned-dims term."""

from __future__ import annotations

import pytest
import torch

from planning.objectives import LatentGoalObjective


def test_last_step_mode_only_sees_the_final_step():
    goal = torch.zeros(2, 1, 3, 8)
    z = torch.zeros(2, 4, 3, 8)
    z[:, :3] = 5.0  # far away before the end, at the goal at the end
    assert torch.all(LatentGoalObjective(mode="last")(z, goal) == 0)
    z[1, -1] = 1.0
    cost = LatentGoalObjective(mode="last")(z, goal)
    assert cost[0] == 0 and cost[1] == pytest.approx(1.0)


def test_last_step_mode_equals_the_weighted_sum_and_ignores_non_finite_earlier_steps():
    """Mode "last" compares only the last step: the same cost as weighting every step's cost with
    (0, ..., 0, 1), without computing the others (an inf earlier on no longer turns it into NaN)."""
    torch.manual_seed(0)
    obj = LatentGoalObjective(mode="last", alpha=2.0, alignment_dim=3)
    z, goal = torch.randn(5, 4, 6, 8), torch.randn(5, 1, 6, 8)
    weighted = obj.per_step(z, goal) @ obj.step_weights(4)
    assert torch.equal(obj(z, goal), weighted)
    z[:, 0] = float("inf")
    assert torch.equal(obj(z, goal), weighted)


def test_all_mode_discounts_earlier_steps():
    obj = LatentGoalObjective(mode="all", discount=0.5)
    w = obj.step_weights(3)
    torch.testing.assert_close(w, torch.tensor([1.0, 2.0, 4.0]) / 7)
    goal = torch.zeros(1, 1, 2, 4)
    z = torch.zeros(1, 3, 2, 4)
    z[:, 0] = 1.0
    assert obj(z, goal).item() == pytest.approx(1 / 7)
    assert obj(z, goal.squeeze(1)).item() == pytest.approx(1 / 7)


def test_aligned_term_compares_patch_means_of_the_aligned_dims():
    goal = torch.zeros(1, 1, 2, 6)
    z = torch.zeros(1, 1, 2, 6)
    z[0, 0, 0, 0], z[0, 0, 1, 0] = 1.0, -1.0  # aligned dim 0: patch mean 0, so only the latent term
    base = LatentGoalObjective(alpha=0.0)(z, goal)
    assert LatentGoalObjective(alpha=10.0, alignment_dim=2)(z, goal) == pytest.approx(base.item())
    z[0, 0, :, 1] = 2.0  # aligned dim 1 shifted on every patch: patch mean 2, aligned term = 4 / 2
    base = LatentGoalObjective(alpha=0.0)(z, goal)
    cost = LatentGoalObjective(alpha=3.0, alignment_dim=2)(z, goal)
    assert cost.item() == pytest.approx(base.item() + 3.0 * 2.0)
    # dims past alignment_dim never enter the aligned term
    assert LatentGoalObjective(alpha=3.0, alignment_dim=1)(z, goal).item() == pytest.approx(base.item())


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError):
        LatentGoalObjective(mode="median")
