"""An ensemble of world models planned with as one (planning.ensemble), and the disagreement cost."""

from __future__ import annotations

import pytest
import torch

from planning.ensemble import WorldModelEnsemble
from planning.objectives import LatentGoalObjective
from planning.planners.cem import CEMPlanner
from tests.toy_dynamics import LatentToyModel, toy_context

H, A, P, D = 4, 4, 1, 4


class Member(LatentToyModel):
    """The toy linear model z' = z + a W with the attributes an ensemble member has; ``read_state`` reads the
    latent itself. ``lever`` (a [D] row) is what action dim 2 does in this member: nothing in the true dynamics."""

    num_hist, frameskip, alignment_dim = 1, 1, 0

    def __init__(self, lever: torch.Tensor | None = None):
        super().__init__(action_dim=A, patches=P, dim=D)
        self.weight = torch.zeros(A, P * D)
        self.weight[0, 0] = self.weight[1, 1] = 1.0  # dims 0 and 1 move latent dims 0 and 1; dims 2 and 3 nothing
        if lever is not None:
            self.weight[2] = lever
        self.projected_dim, self.encoder = D, torch.nn.Identity()

    def read_state(self, z: torch.Tensor) -> torch.Tensor:
        return z.flatten(-2)


def _true_cost(plan: torch.Tensor, ctx) -> torch.Tensor:
    truth = Member()
    return LatentGoalObjective()(truth.rollout(ctx.obs_0, plan)[:, -1:], ctx.z_goal)


def _context(b: int = 3):
    target = torch.zeros(b, H, A)
    target[..., 0] = 0.5  # the true optimum: 0.5 on action dim 0 at every step, nothing else
    return toy_context(Member(), target)


def test_latents_are_the_members_side_by_side_and_the_cost_is_their_mean():
    a, b = Member(torch.tensor([2.0, 0, 0, 0])), Member(torch.tensor([-2.0, 0, 0, 0]))
    ens = WorldModelEnsemble([a, b])
    ctx = _context(2)
    act = torch.rand(2, H, A, generator=torch.Generator().manual_seed(0))
    z = ens.rollout(ctx.obs_0, act)  # [B, H + 1, P, 2 * D]
    assert z.shape == (2, H + 1, P, 2 * D) and ens.projected_dim == 2 * D
    za, zb = ens.split(z)
    assert torch.allclose(za, a.rollout(ctx.obs_0, act)) and torch.allclose(zb, b.rollout(ctx.obs_0, act))
    goal = ens.encode_obs({"proprio": ctx.z_goal.flatten(-2)})  # each member's own encoding of the goal
    obj = LatentGoalObjective()
    mean = (obj(za[:, -1:], ctx.z_goal) + obj(zb[:, -1:], ctx.z_goal)) / 2
    assert torch.allclose(obj(z[:, -1:], goal), mean)


def test_disagreement_is_zero_where_members_agree_and_grows_with_their_spread():
    ens = WorldModelEnsemble([Member(torch.tensor([2.0, 0, 0, 0])), Member(torch.tensor([-2.0, 0, 0, 0]))])
    ctx = _context(1)
    still, lever = torch.zeros(1, H, A), torch.zeros(1, H, A)
    still[..., 0], lever[..., 2] = 0.5, 0.5  # dim 2: +1 in one member, -1 in the other, per step
    z_still, z_lever = ens.rollout(ctx.obs_0, still), ens.rollout(ctx.obs_0, lever)
    assert torch.allclose(ens.disagreement(z_still), torch.zeros(1, H + 1))
    # after k steps the members read latent dim 0 as +k and -k: variance k^2, averaged over the 4 state dims
    assert torch.allclose(ens.disagreement(z_lever)[0], torch.arange(H + 1.0) ** 2 / D)


def test_members_with_another_layout_or_encoder_are_refused_in_one_line():
    other = Member()
    other.frameskip = 5
    with pytest.raises(ValueError, match="differs from member 0 in frameskip"):
        WorldModelEnsemble([Member(), other])
    other = Member()
    other.encoder = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="another image encoder"):
        WorldModelEnsemble([Member(), other])
    with pytest.raises(ValueError, match="at least two"):
        WorldModelEnsemble([Member()])


def test_a_disagreement_weight_without_an_ensemble_is_refused():
    with pytest.raises(ValueError, match="ensemble"):
        LatentGoalObjective(disagreement_weight=1.0)
    with pytest.raises(ValueError, match="disagreement_weight"):
        LatentGoalObjective(disagreement_weight=-1.0, disagreement=lambda z: z)


def test_the_ensemble_with_its_disagreement_plans_what_one_members_error_would_spoil():
    """One member believes action dim 2 moves latent dim 0 (it does nothing): CEM through that member alone
    uses the lever and misses the true goal. The ensemble (that member, one with the opposite belief and one
    without) penalised by its disagreement keeps dim 2 still and reaches the goal under the true dynamics."""
    wrong = Member(torch.tensor([3.0, 0, 0, 0]))
    ensemble = WorldModelEnsemble([wrong, Member(torch.tensor([-3.0, 0, 0, 0])), Member()])
    settings = dict(horizon=H, num_samples=200, topk=20, opt_steps=20, min_std=0.01)
    alone = CEMPlanner(wrong, LatentGoalObjective(), **settings).plan(_context())
    ctx = _context()
    goal = ensemble.encode_obs({"proprio": ctx.z_goal.flatten(-2)})
    ctx.z_goal = goal
    obj = LatentGoalObjective(disagreement_weight=1.0, disagreement=ensemble.disagreement)
    together = CEMPlanner(ensemble, obj, **settings).plan(ctx)
    base = _context()
    cost_alone, cost_together = _true_cost(alone.actions, base), _true_cost(together.actions, base)
    assert torch.all(cost_together < 1e-2), cost_together
    assert torch.all(cost_together * 10 < cost_alone), (cost_together, cost_alone)
