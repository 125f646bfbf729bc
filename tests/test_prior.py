"""planning.planners.prior: proposals rolled out through the model, the prior-only planner, and CEM seeded by it."""

from __future__ import annotations

import torch

from planning.objectives import LatentGoalObjective
from planning.planners.cem import CEMPlanner
from planning.planners.cem_prior import PriorSeededCEMPlanner
from planning.planners.prior import PriorPlanner, propose
from tests.toy_dynamics import LatentToyModel, OraclePrior, toy_context

H, A = 4, 4


def _ctx(model, seed=0):
    opt = torch.empty(2, H, A).uniform_(-0.4, 0.4, generator=torch.Generator().manual_seed(seed))
    return toy_context(model, opt)


def test_proposal_is_closed_loop_in_the_model_and_counts_down_the_steps():
    model = LatentToyModel(action_dim=A)
    prior = OraclePrior(model)
    ctx = _ctx(model)
    actions, z = propose(model, prior, ctx)
    assert actions.shape == (2, H, A) and z.shape == (2, H, model.patches, model.dim)
    assert prior.seen == [[H - k] for k in range(H) for _ in range(2)]  # one call per episode and step
    assert torch.allclose(z[:, -1:], ctx.z_goal, atol=1e-4)  # the oracle proposal ends at the goal


def test_prior_planner_and_bounds():
    model = LatentToyModel(action_dim=A)
    ctx = _ctx(model)
    ctx.action_low, ctx.action_high = -0.1 * torch.ones(A), 0.1 * torch.ones(A)
    res = PriorPlanner(model, LatentGoalObjective(), OraclePrior(model), horizon=H).plan(ctx)
    assert res.actions.abs().max() <= 0.1 + 1e-6  # proposals are clipped to the env bounds
    assert res.cost.shape == (2,)


def test_cem_seeded_by_the_prior_beats_cem_from_zeros_at_the_same_budget():
    model = LatentToyModel(action_dim=A)
    obj = LatentGoalObjective()
    kw = dict(horizon=H, num_samples=16, topk=4, opt_steps=2, min_std=0.01)
    plain = CEMPlanner(model, obj, **kw).plan(_ctx(model)).cost
    seeded = PriorSeededCEMPlanner(model, obj, prior=OraclePrior(model), prior_std=0.05, **kw).plan(_ctx(model)).cost
    assert torch.all(seeded < 1e-3) and torch.all(seeded * 10 < plain), (seeded, plain)


def test_prior_weight_keeps_cem_at_the_proposal_when_the_model_cannot_tell_plans_apart():
    model = LatentToyModel(action_dim=A)
    flat = lambda z, g: torch.zeros(z.shape[0])  # noqa: E731  a cost that ranks every plan equal
    prior = OraclePrior(model)
    ctx = _ctx(model)
    proposal, _ = propose(model, prior, ctx)
    kw = dict(horizon=H, num_samples=32, topk=4, opt_steps=3, min_std=0.01, prior=prior, prior_std=0.3)
    free = PriorSeededCEMPlanner(model, flat, prior_weight=0.0, **kw).plan(_ctx(model)).actions
    held = PriorSeededCEMPlanner(model, flat, prior_weight=1.0, **kw).plan(_ctx(model)).actions
    assert (held - proposal).abs().max() < 0.5 * (free - proposal).abs().max()


def test_proposal_latents_are_the_models_rollout_of_its_actions():
    from planning.planners.rollout import encode_context, rollout_predictions

    model = LatentToyModel(action_dim=A)
    ctx = toy_context(model, torch.zeros(2, H, A), t0=2)  # two history frames: the context grows from there
    actions, z = propose(model, OraclePrior(model), ctx)
    ref = rollout_predictions(model, ctx.obs_0, ctx.past_actions, actions, z_obs=encode_context(model, ctx))
    assert torch.allclose(z, ref, atol=1e-6)


def test_prior_seeded_plans_report_their_distance_from_the_proposal():
    """info: the executed (first) step's RMS distance from the proposal and whether its gripper differs."""
    model = LatentToyModel(action_dim=A)
    kw = dict(horizon=H, num_samples=16, topk=4, opt_steps=2, min_std=0.01)
    at_proposal = PriorSeededCEMPlanner(model, LatentGoalObjective(), prior=OraclePrior(model), opt_steps=0,
                                        **{k: v for k, v in kw.items() if k != "opt_steps"}).plan(_ctx(model))
    assert torch.all(at_proposal.info["proposal_distance"] == 0) and torch.all(at_proposal.info["gripper_differs"] == 0)
    flat = lambda z, g: torch.zeros(z.shape[0])  # noqa: E731
    moved = PriorSeededCEMPlanner(model, flat, prior=OraclePrior(model), prior_weight=0.0, prior_std=1.0, **kw)
    info = moved.plan(_ctx(model)).info
    assert info["proposal_distance"].shape == (2,) and torch.all(info["proposal_distance"] > 0)
    assert CEMPlanner(model, LatentGoalObjective(), **kw).plan(_ctx(model)).info is None


def test_refinement_descends_the_prior_seeded_score_with_its_anchor():
    """``refine_steps`` in the prior-seeded search refines the score the search ranked by: the latent cost plus
    ``prior_weight`` x the distance from the proposal. With a cost that pulls away from the proposal and a heavy
    anchor, the refined plan's score never rises (a refinement blind to the anchor walks off the proposal and
    raises it), and without the anchor the refinement does walk off."""
    model = LatentToyModel(action_dim=A)
    prior = OraclePrior(model)
    pull = lambda z, g: z[:, -1].pow(2).mean(dim=(-2, -1))  # noqa: E731  optimum away from the proposal
    kw = dict(horizon=H, num_samples=16, topk=4, opt_steps=2, min_std=0.01, prior=prior, prior_std=0.05,
              prior_weight=100.0)
    proposal, _ = propose(model, prior, _ctx(model))
    base = PriorSeededCEMPlanner(model, pull, **kw)
    refined = PriorSeededCEMPlanner(model, pull, refine_steps=30, refine_lr=0.05, **kw)
    a0, a1 = base.plan(_ctx(model)).actions, refined.plan(_ctx(model)).actions

    def score(actions):
        from planning.planners.rollout import encode_context, rollout_predictions

        ctx = _ctx(model)
        z = rollout_predictions(model, ctx.obs_0, ctx.past_actions, actions, z_obs=encode_context(model, ctx))
        return pull(z, None) + base.anchor_cost(actions[:, None], proposal[:, None])[:, 0]

    assert torch.all(score(a1) <= score(a0) + 1e-6)
    free = PriorSeededCEMPlanner(model, pull, refine_steps=30, refine_lr=0.05, **{**kw, "prior_weight": 0.0})
    assert (free.plan(_ctx(model)).actions - proposal).abs().max() > (a1 - proposal).abs().max() + 0.05
