"""planning.planners.sampling: each episode's draws come from its own generator, whatever the batch."""

from __future__ import annotations

import torch

from planning.planners.sampling import per_episode_noise_steps


def test_noise_for_every_iteration_equals_one_draw_per_iteration():
    """CEM draws all of a re-plan's noise at once: the numbers per-iteration draws from the same
    per-episode generators give, so plans (and the benchmark tables) do not change."""
    shape = (6, 3, 2)
    gens = [torch.Generator().manual_seed(s) for s in (3, 7)]
    at_once = per_episode_noise_steps(gens, 4, shape, "cpu")
    gens = [torch.Generator().manual_seed(s) for s in (3, 7)]
    one_by_one = torch.stack([torch.stack([torch.randn(shape, generator=g) for g in gens]) for _ in range(4)])
    assert at_once.shape == (4, 2, *shape) and torch.equal(at_once, one_by_one)
    assert per_episode_noise_steps(gens, 0, shape, "cpu").shape == (0, 2, *shape)
