"""CEM on a toy latent dynamics with a known optimum (and its batching / chunking invariances)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from omegaconf import OmegaConf

from planning.objectives import LatentGoalObjective
from planning.planners.cem import CEMPlanner
from planning.planners.random_shooting import RandomActionPlanner, RandomShootingPlanner
from tests.conftest import ROOT
from tests.toy_dynamics import GraspToyModel, ToyLinearWorldModel, grasp_context, toy_context

H, A = 5, 4


def _optimum(b: int, seed: int = 0) -> torch.Tensor:
    return torch.empty(b, H, A).uniform_(-0.6, 0.6, generator=torch.Generator().manual_seed(seed))


def test_cem_reaches_known_optimum_and_beats_random_shooting():
    model = ToyLinearWorldModel(action_dim=A)
    obj = LatentGoalObjective(mode="last")
    opt = _optimum(3)
    ctx = toy_context(model, opt)
    start_cost = obj(model.rollout(ctx.obs_0, torch.zeros(3, H, A))[:, -1:], ctx.z_goal)
    cem = CEMPlanner(model, obj, horizon=H, num_samples=100, topk=10, opt_steps=15, var_scale=1.0, min_std=0.01)
    rs = RandomShootingPlanner(model, obj, horizon=H, num_samples=100, opt_steps=15)
    cem_cost = cem.plan(ctx).cost
    rs_cost = rs.plan(toy_context(model, opt)).cost
    # the optimum has cost 0: CEM gets within 1e-3 (a 10^3 reduction at least) of it for every episode
    assert torch.all(cem_cost < 1e-3), cem_cost
    assert torch.all(cem_cost < start_cost * 1e-3)
    # random shooting with the same 1500 rollouts per episode stays much further away
    assert torch.all(cem_cost * 10 < rs_cost), (cem_cost, rs_cost)


def test_cem_actions_stay_in_bounds_and_shapes():
    model = ToyLinearWorldModel(action_dim=A)
    opt = _optimum(2) * 3  # partly outside the box: the optimum is not reachable, clipping must hold
    ctx = toy_context(model, opt.clamp(-1, 1))
    ctx.action_low, ctx.action_high = -0.5 * torch.ones(A), 0.5 * torch.ones(A)
    res = CEMPlanner(model, LatentGoalObjective(), horizon=H, num_samples=50, topk=5, opt_steps=5).plan(ctx)
    assert res.actions.shape == (2, H, A)
    assert res.z_pred.shape == (2, H, model.patches, model.dim)
    assert res.actions.abs().max() <= 0.5 + 1e-6


def test_cem_batched_equals_per_episode_and_chunk_invariant():
    model = ToyLinearWorldModel(action_dim=A)
    obj = LatentGoalObjective(mode="all", discount=0.9)
    opt = _optimum(3, seed=1)
    kw = dict(horizon=H, num_samples=40, topk=5, opt_steps=4)
    batched = CEMPlanner(model, obj, chunk_size=4096, **kw).plan(toy_context(model, opt)).actions
    chunked = CEMPlanner(model, obj, chunk_size=7, **kw).plan(toy_context(model, opt)).actions
    torch.testing.assert_close(batched, chunked)
    for i in range(3):
        full = toy_context(model, opt)
        one = toy_context(model, opt)
        one.obs_0 = {k: v[i:i + 1] for k, v in full.obs_0.items()}
        one.past_actions, one.z_goal = full.past_actions[i:i + 1], full.z_goal[i:i + 1]
        one.generators = [full.generators[i]]
        torch.testing.assert_close(CEMPlanner(model, obj, **kw).plan(one).actions, batched[i:i + 1])


def test_cem_warm_start_is_used():
    model = ToyLinearWorldModel(action_dim=A)
    opt = _optimum(1, seed=2)
    ctx = toy_context(model, opt)
    ctx.init_actions = opt[:, 1:]
    res = CEMPlanner(model, LatentGoalObjective(), horizon=H, num_samples=2, topk=1, opt_steps=0,
                     var_scale=0.0).plan(ctx)
    torch.testing.assert_close(res.actions[:, : H - 1], opt[:, 1:])
    assert torch.all(res.actions[:, -1] == 0)


def test_random_action_planner_uniform_in_bounds_ignores_goal():
    model = ToyLinearWorldModel(action_dim=A)
    ctx = toy_context(model, _optimum(2))
    ctx.action_low, ctx.action_high = torch.tensor([-1.0, 0.0, 2.0, -3.0]), torch.tensor([1.0, 0.5, 3.0, -2.0])
    acts = RandomActionPlanner(horizon=H).plan(ctx).actions
    assert acts.shape == (2, H, A)
    assert torch.all(acts >= ctx.action_low) and torch.all(acts <= ctx.action_high)
    long = dataclasses.replace(ctx, horizon=500)  # 4,000 draws: mean 1/2 and variance 1/12 of the box
    span = (RandomActionPlanner(horizon=500).plan(long).actions - ctx.action_low) / (ctx.action_high - ctx.action_low)
    assert abs(float(span.mean()) - 0.5) < 0.02 and abs(float(span.var()) - 1 / 12) < 0.005
    plans = []
    for shift in (0.0, 5.0):  # two goals, the generators in the same state: the same draws
        for g, seed in zip(ctx.generators, (0, 1)):
            g.manual_seed(seed)
        ctx.z_goal = ctx.z_goal + shift
        plans.append(RandomActionPlanner(horizon=H).plan(ctx).actions)
    torch.testing.assert_close(plans[0], plans[1])


def test_cem_keeps_dims_the_data_never_varied_at_zero():
    """Dims with ``ctx.fixed_dims`` (std at the normaliser's floor: huge normalised bounds) must not get
    noise: the model never saw them move, so noise there only perturbs the scored predictions."""
    model = ToyLinearWorldModel(action_dim=A)
    opt = _optimum(2)
    opt[..., 1] = 0.0
    ctx = toy_context(model, opt)
    ctx.action_low, ctx.action_high = ctx.action_low.clone(), ctx.action_high.clone()
    ctx.action_low[1], ctx.action_high[1] = -1e6, 1e6  # what (env bound - mean) / 1e-6 gives
    ctx.fixed_dims = torch.tensor([False, True, False, False])
    res = CEMPlanner(model, LatentGoalObjective(), horizon=H, num_samples=50, topk=5, opt_steps=5).plan(ctx)
    assert torch.all(res.actions[..., 1] == 0)
    assert res.actions[..., 0].abs().sum() > 0
    rs = RandomShootingPlanner(model, LatentGoalObjective(), horizon=H, num_samples=20, opt_steps=2).plan(ctx)
    assert torch.all(rs.actions[..., 1] == 0)


def test_cem_action_repeat_searches_one_env_action_per_step():
    """With ``action_repeat`` the plan is one env action per planning step, tiled over the frameskip,
    and CEM still reaches an optimum that has that structure (a 3x smaller search space here)."""
    model = ToyLinearWorldModel(action_dim=6)
    model.frameskip = 3
    step = torch.empty(2, H, 2).uniform_(-0.6, 0.6, generator=torch.Generator().manual_seed(5))
    opt = step.tile(3)  # [B, H, 6]: the same 2-D env action at each of the 3 env steps
    ctx = toy_context(model, opt)
    cem = CEMPlanner(model, LatentGoalObjective(), horizon=H, num_samples=100, topk=10, opt_steps=15,
                     min_std=0.01, action_repeat=True)
    res = cem.plan(ctx)
    a = res.actions.unflatten(-1, (3, 2))
    torch.testing.assert_close(a[..., 0, :], a[..., 1, :])
    torch.testing.assert_close(a[..., 0, :], a[..., 2, :])
    assert torch.all(res.cost < 1e-3), res.cost


def test_cem_action_repeat_reduces_the_warm_start_to_step_means():
    model = ToyLinearWorldModel(action_dim=4)
    model.frameskip = 2
    ctx = toy_context(model, _optimum(1))
    ctx.init_actions = torch.tensor([[[0.2, 0.4, 0.6, 0.0]]]).expand(1, H, 4).clone()
    res = CEMPlanner(model, LatentGoalObjective(), horizon=H, num_samples=2, topk=1, opt_steps=0, var_scale=0.0,
                     action_repeat=True).plan(ctx)
    torch.testing.assert_close(res.actions[0, 0], torch.tensor([0.4, 0.2, 0.4, 0.2]))


def test_cem_binary_gripper_scores_and_returns_only_open_or_close():
    """With ``ctx.gripper`` every scored candidate and the returned plan hold one of the two normalised
    gripper values in the gripper dims, and the other dims stay continuous."""
    from planning.planners.protocol import GripperLevels

    model = ToyLinearWorldModel(action_dim=A)
    ctx = toy_context(model, _optimum(2))
    dims = torch.tensor([False, False, False, True])
    ctx.gripper = GripperLevels(dims=dims, open=torch.full((A,), -0.7), close=torch.full((A,), 0.9))
    seen = []
    real_rollout = model.rollout

    def spy(obs, act):
        seen.append(act[..., 3].flatten())
        return real_rollout(obs, act)

    model.rollout = spy
    res = CEMPlanner(model, LatentGoalObjective(), horizon=H, num_samples=30, topk=5, opt_steps=3).plan(ctx)
    levels = torch.tensor([-0.7, 0.9])
    vals = torch.cat(seen[1:])  # [0] is the toy context's own goal rollout
    assert torch.all((vals[:, None] - levels).abs().min(dim=1).values < 1e-6)
    final = res.actions[..., 3].flatten()
    assert torch.all((final[:, None] - levels).abs().min(dim=1).values < 1e-6)
    assert res.actions[..., :3].unique().numel() > 10


def test_gripper_levels_snap_to_the_nearer_level():
    from planning.planners.protocol import GripperLevels

    g = GripperLevels(dims=torch.tensor([False, True]), open=torch.tensor([0.0, -1.0]), close=torch.tensor([0.0, 2.0]))
    x = torch.tensor([[0.3, 0.4], [0.3, 0.6], [-5.0, -3.0]])
    torch.testing.assert_close(g.snap(x), torch.tensor([[0.3, -1.0], [0.3, 2.0], [-5.0, -1.0]]))


def _record_on_cpu(monkeypatch, fail: bool = False):
    """CEM's iteration recorded and replayed with the stand-in recorder of tests/test_cuda_graph.py."""
    from planning.planners import cuda_graph
    from tests.test_cuda_graph import Recorder

    rec = Recorder(fail=fail)
    monkeypatch.setattr(cuda_graph, "_record", rec)
    monkeypatch.setattr(cuda_graph, "_graphable", lambda x: True)
    return rec


def test_cem_replayed_iterations_equal_eager_ones_with_a_prior(monkeypatch):
    """The iteration is a pure function of its tensors: replaying it on static buffers (as a CUDA graph
    does) gives the eager plan exactly, with the prior's proposal and weight, and every re-plan records."""
    from planning.planners.cem_prior import PriorSeededCEMPlanner
    from tests.toy_dynamics import LatentToyModel, OraclePrior

    model = LatentToyModel(action_dim=A)
    kw = dict(horizon=H, num_samples=30, topk=5, opt_steps=6, prior=OraclePrior(model), prior_weight=3.0)
    eager = PriorSeededCEMPlanner(model, LatentGoalObjective(), cuda_graph=False, **kw).plan(
        toy_context(model, _optimum(2)))
    rec = _record_on_cpu(monkeypatch)
    planner = PriorSeededCEMPlanner(model, LatentGoalObjective(), **kw)
    replayed = planner.plan(toy_context(model, _optimum(2)))
    torch.testing.assert_close(replayed.actions, eager.actions, rtol=0, atol=0)
    torch.testing.assert_close(replayed.cost, eager.cost, rtol=0, atol=0)
    assert rec.records == 1 and rec.replays == kw["opt_steps"] - 1 and planner._graph_checked
    planner.plan(toy_context(model, _optimum(2)))
    assert rec.records == 2


def test_cem_turns_its_graph_off_after_a_failed_recording(monkeypatch, caplog):
    model = ToyLinearWorldModel(action_dim=A)
    kw = dict(horizon=H, num_samples=20, topk=4, opt_steps=4)
    eager = CEMPlanner(model, LatentGoalObjective(), cuda_graph=False, **kw).plan(toy_context(model, _optimum(2)))
    _record_on_cpu(monkeypatch, fail=True)
    planner = CEMPlanner(model, LatentGoalObjective(), **kw)
    with caplog.at_level("WARNING"):
        res = planner.plan(toy_context(model, _optimum(2)))
    torch.testing.assert_close(res.actions, eager.actions, rtol=0, atol=0)
    assert not planner.cuda_graph and "CEM iterations run eagerly from now on" in caplog.text


def test_cem_records_nothing_when_the_predictor_replays_its_own_graphs(monkeypatch):
    model = ToyLinearWorldModel(action_dim=A)
    model.rollout_graphs = True  # compiled with mode reduce-overhead: graphs cannot nest
    rec = _record_on_cpu(monkeypatch)
    CEMPlanner(model, LatentGoalObjective(), horizon=H, num_samples=20, topk=4, opt_steps=4).plan(
        toy_context(model, _optimum(1)))
    assert rec.records == 0


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs it)")
@pytest.mark.parametrize("compiled", [False, True])
def test_cem_on_a_gpu_records_its_iterations_and_plans_as_eagerly(compiled):
    """The real thing: the demo-size world model on CUDA (bf16 rollouts), CEM's iterations recorded as a
    CUDA graph (checked against an eager iteration inside) give the eager plan's cost, also with the
    predictor compiled (mode default, planning's auto)."""
    from benchmarks.plan_latency import build_model, make_context

    model, _ = build_model([], "cuda")
    torch.manual_seed(1)
    torch.nn.init.normal_(model.predictor.head.weight, std=0.2)  # actions must matter
    if compiled:
        torch._dynamo.reset()
        model.compile_for_rollouts("default")
    kw = dict(horizon=4, num_samples=64, topk=8, opt_steps=6)
    eager = CEMPlanner(model, LatentGoalObjective(), cuda_graph=False, **kw).plan(make_context(model, 3, 4, "cuda"))
    planner = CEMPlanner(model, LatentGoalObjective(), **kw)
    graphed = planner.plan(make_context(model, 3, 4, "cuda"))
    assert planner.cuda_graph and planner._graph_checked
    torch.testing.assert_close(graphed.cost, eager.cost, rtol=2e-2, atol=1e-3)
    again = planner.plan(make_context(model, 3, 4, "cuda"))  # a second re-plan records a new graph
    torch.testing.assert_close(again.cost, graphed.cost, rtol=2e-2, atol=1e-3)


def test_a_search_without_iterations_or_samples_is_refused():
    model = ToyLinearWorldModel(action_dim=A)
    with pytest.raises(ValueError, match=r"planner.opt_steps=-1 must be >= 0 \(0: the starting mean"):
        CEMPlanner(model, LatentGoalObjective(), opt_steps=-1)
    with pytest.raises(ValueError, match="both must be >= 1"):
        RandomShootingPlanner(model, LatentGoalObjective(), opt_steps=0)


def _grasp_rate(planner_settings: dict, seeds=range(4)) -> float:
    """Share of toy pick-and-place episodes whose plan ends with the object held at the goal (true toy dynamics)."""
    model, done = GraspToyModel(), []
    for seed in seeds:
        ctx = grasp_context(batch=8, seed=seed)
        plan = CEMPlanner(model, LatentGoalObjective(), **planner_settings).plan(ctx)
        z = model.rollout(ctx.obs_0, plan.actions)[:, -1, 0]  # (arm, object, holding, closed)
        done.append((z[:, 4] > 0.5) & ((z[:, 2:4] - torch.tensor([0.6, 0.6])).norm(dim=-1) < 0.1))
    return torch.cat(done).float().mean().item()


def test_the_default_search_finds_the_grasp_that_plain_cem_misses():
    """The search settings of conf/planner/cem.yaml (iCEM's coloured noise and kept elites, the best candidate
    returned, the gripper as an open / close schedule) against plain CEM, same budget, on the toy grasp: closing
    beside the object holds nothing, so the grasp is a needle that white noise on a snapped gripper rarely hits."""
    cfg = OmegaConf.load(ROOT / "conf" / "planner" / "cem.yaml")
    search = {k: cfg[k] for k in ("keep_elites", "noise_beta", "return_best", "gripper_switches")}
    assert search != {"keep_elites": 0, "noise_beta": 0.0, "return_best": False, "gripper_switches": 0}
    budget = dict(horizon=6, num_samples=100, topk=10, opt_steps=10)
    default, plain = _grasp_rate({**budget, **search}), _grasp_rate(budget)
    assert default >= 0.75 and default >= plain + 0.25, (default, plain)


def test_kept_elites_are_capped_by_the_budget_and_negative_settings_refused():
    model = ToyLinearWorldModel(action_dim=A)
    assert CEMPlanner(model, LatentGoalObjective(), num_samples=8, topk=2, keep_elites=10).keep_elites == 2
    assert CEMPlanner(model, LatentGoalObjective(), num_samples=3, topk=3, keep_elites=10).keep_elites == 2
    with pytest.raises(ValueError, match="keep_elites >= 0"):
        CEMPlanner(model, LatentGoalObjective(), keep_elites=-1)


def test_gradient_refinement_beats_the_same_search_without_it():
    """On the toy linear dynamics a small CEM budget stops short of the optimum (cost 0); the refinement's Adam
    steps through the rollout get much closer from the same search, and never return a plan worse than the search's."""
    model = ToyLinearWorldModel(action_dim=A)
    obj = LatentGoalObjective(mode="last")
    opt = _optimum(4, seed=2)
    budget = dict(horizon=H, num_samples=30, topk=5, opt_steps=3, min_std=0.01)
    plain = CEMPlanner(model, obj, **budget).plan(toy_context(model, opt)).cost
    refined = CEMPlanner(model, obj, refine_steps=60, refine_lr=0.05, **budget).plan(toy_context(model, opt)).cost
    assert torch.all(refined <= plain) and torch.all(refined < 0.1 * plain), (refined, plain)
    one = CEMPlanner(model, obj, refine_steps=1, refine_lr=5.0, **budget).plan(toy_context(model, opt)).cost
    assert torch.all(one <= plain + 1e-6)  # a step far too large is not taken: the search's plan is kept
    with pytest.raises(ValueError, match="refine_steps >= 0 and refine_lr > 0"):
        CEMPlanner(model, obj, refine_steps=-1)


def test_gradient_refinement_holds_the_gripper_schedule_and_moves_the_held_object():
    """On the toy grasp the refinement moves only the arm (the gripper schedule is the search's) and, where the
    search grasped, carries the object closer to its goal."""
    settings = dict(horizon=6, num_samples=100, topk=10, opt_steps=10, keep_elites=10, noise_beta=2.0,
                    return_best=True, gripper_switches=1)
    model = GraspToyModel()
    base = CEMPlanner(model, LatentGoalObjective(), **settings).plan(grasp_context(batch=8, seed=1))
    refined = CEMPlanner(model, LatentGoalObjective(), refine_steps=30, **settings).plan(grasp_context(batch=8, seed=1))
    assert torch.equal(refined.actions[..., 2], base.actions[..., 2])
    assert torch.all(refined.cost <= base.cost + 1e-6) and bool((refined.cost < base.cost - 1e-4).any())


def test_gradient_refinement_runs_through_the_real_predictor():
    from benchmarks.plan_latency import build_model, make_context

    model, _ = build_model(["img_size=14"], "cpu")
    model.eval()
    torch.nn.init.normal_(model.predictor.head.weight, std=0.2)  # actions must matter
    kw = dict(horizon=3, num_samples=16, topk=4, opt_steps=2)
    base = CEMPlanner(model, LatentGoalObjective(), **kw).plan(make_context(model, 2, 3, "cpu"))
    refined = CEMPlanner(model, LatentGoalObjective(), refine_steps=10, refine_lr=0.1, **kw).plan(
        make_context(model, 2, 3, "cpu"))
    assert torch.all(refined.cost <= base.cost + 1e-6) and bool((refined.cost < base.cost).any())
    assert all(p.grad is None for p in model.parameters())  # the model is never trained by a plan
