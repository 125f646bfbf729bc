"""The gripper as a discrete choice: schedule tables, sampling, refits, and a CEM that finds a grasp plain CEM misses."""

from __future__ import annotations

import pytest
import torch

from planning.planners import gripper_schedules as gs


def test_schedule_tables_hold_every_schedule_with_at_most_the_allowed_switches():
    one = gs.schedule_table(4, 1)
    assert one.shape == (5, 4) and one[-1].sum() == 0 and one[0].all()  # k = h: never; k = 0: from the start
    assert all(int((row[1:] != row[:-1]).sum()) <= 1 for row in one)
    two = gs.schedule_table(4, 2)
    assert two.shape == (4 * 5 // 2 + 1, 4) and len({tuple(r.tolist()) for r in two}) == len(two)
    assert all(int((row[1:] != row[:-1]).sum()) + int(row[0]) <= 2 for row in two)
    assert torch.equal(two[gs.index_of(two[[3, 7]], two)], two[[3, 7]])
    assert gs.index_of(torch.tensor([[True, False, True, False]]), two).item() == -1  # three switches: none
    with pytest.raises(ValueError, match="gripper_switches"):
        gs.schedule_table(4, 3)


def test_sampling_follows_the_probabilities_and_the_refit_moves_to_the_elites():
    probs = torch.tensor([[0.7, 0.2, 0.1, 0.0]])
    idx = gs.sample(probs, torch.rand(1, 20000, generator=torch.Generator().manual_seed(0)))
    freq = torch.bincount(idx[0], minlength=4).float() / 20000
    torch.testing.assert_close(freq, probs[0], atol=0.02, rtol=0)
    new = gs.refit(probs, torch.tensor([[3, 3, 3, 1]]), smoothing=0.0, floor=0.0)
    torch.testing.assert_close(new, torch.tensor([[0.0, 0.25, 0.0, 0.75]]))
    assert gs.refit(probs, torch.tensor([[3, 3]]), smoothing=0.5, floor=0.1).min() > 0  # nothing ruled out
    warm = gs.initial_probs(gs.schedule_table(3, 1), torch.tensor([2, -1]))
    assert warm[0, 2] > 0.5 and torch.allclose(warm[1], torch.full((4,), 0.25))
