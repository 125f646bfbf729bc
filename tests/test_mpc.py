"""MPC control flow on a toy env whose dynamics the toy world model knows exactly."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from datasets.normalizer import Normalizer
from planning.execution.mpc import MPC
from planning.objectives import LatentGoalObjective
from planning.planners.cem import CEMPlanner
from planning.planners.protocol import PlanResult
from tests.toy_dynamics import ToyLinearWorldModel

FS, P, D = 2, 2, 4


class PointEnv:
    """x_{t+1} = x_t + a_t W (x in R^8, a in [-1, 1]^7); success = within ``tol`` of ``goal``."""

    action_low, action_high = -np.ones(7), np.ones(7)

    def __init__(self, weight: np.ndarray, goal: np.ndarray, tol: float = 0.05):
        self.w, self.goal, self.tol, self.x = weight, goal, tol, np.zeros(P * D, dtype=np.float32)

    def obs(self) -> dict:
        return {"image": np.zeros((4, 4, 3), np.uint8), "proprio": self.x.astype(np.float32), "state": self.x[:3]}

    def is_success(self) -> bool:
        return bool(np.linalg.norm(self.x - self.goal) < self.tol)

    def step(self, a):
        assert np.all(a >= self.action_low) and np.all(a <= self.action_high)
        self.x = (self.x + a @ self.w).astype(np.float32)
        return self.obs(), 0.0, False, {"success": self.is_success()}


def _setup(b: int = 2, seed: int = 0):
    model = ToyLinearWorldModel(action_dim=7 * FS, patches=P, dim=D, seed=seed)
    w7 = (model.weight[:7] * 0.3).numpy()
    model.weight = torch.as_tensor(np.concatenate([w7, w7]))  # one planning step = FS env steps of w7
    model.action_dim = 7
    norm = Normalizer(torch.zeros(7), torch.ones(7), torch.zeros(P * D), torch.ones(P * D), torch.zeros(3), torch.ones(3))
    rng = np.random.default_rng(seed)
    true_actions = rng.uniform(-0.5, 0.5, size=(b, 3 * FS, 7))
    goals = np.stack([a.sum(0) @ w7 for a in true_actions]).astype(np.float32)  # reachable in 3 planning steps
    envs = [PointEnv(w7, g) for g in goals]
    z_goal = torch.as_tensor(goals).reshape(b, 1, P, D)
    return model, norm, envs, z_goal


def _run(mpc, envs, z_goal):
    hist = [{"images": [], "proprios": [], "actions": []} for _ in envs]
    gens = [torch.Generator().manual_seed(i) for i in range(len(envs))]
    return mpc.run(envs, [e.obs() for e in envs], hist, z_goal, gens)


def test_mpc_with_cem_reaches_the_goal_within_the_budget():
    model, norm, envs, z_goal = _setup()
    cem = CEMPlanner(model, LatentGoalObjective(), horizon=3, num_samples=200, topk=20, opt_steps=10, min_std=0.01)
    res = _run(MPC(cem, model, norm, FS, n_taken_actions=1, max_iter=3, progress=False), envs, z_goal)
    assert res.n_replans == 3 and res.n_env_steps == 3 * FS
    for tr, env in zip(res.traces, envs):
        assert len(tr.actions) == 3 * FS and len(tr.frames) == 3 * FS + 1 and len(tr.success) == 3 * FS + 1
        assert np.linalg.norm(env.x - env.goal) < 0.05
        assert tr.success[-1]
        assert len(tr.planned_eef) == 3 and tr.planned_eef[0].shape == (3 * FS + 1, 3)


class RecordingPlanner:
    """Returns out-of-bounds actions and records what the MPC asked for."""

    name, uses_model = "recording", False

    def __init__(self, horizon: int):
        self.horizon, self.calls = horizon, []

    def plan(self, ctx):
        self.calls.append((ctx.horizon, None if ctx.init_actions is None else ctx.init_actions.shape[1]))
        return PlanResult(actions=torch.full((ctx.batch_size, ctx.horizon, 7 * FS), 100.0))


def test_success_never_stops_execution_and_actions_are_clipped():
    model, norm, envs, _ = _setup(b=1)
    envs[0].goal = envs[0].x.copy()  # already at the goal: success from the start
    planner = RecordingPlanner(horizon=4)
    z_goal = torch.zeros(1, 1, P, D)
    res = _run(MPC(planner, model, norm, FS, n_taken_actions=2, max_iter=3, progress=False), envs, z_goal)
    tr = res.traces[0]
    assert tr.success[0] and not tr.success[-1]  # it kept executing after success
    assert len(tr.actions) == 6 * FS
    assert np.all(np.stack(tr.actions) == 1.0)  # clipped to the env's upper bound
    # shrink_horizon: plan only up to the end of the budget; warm start = the unexecuted rest
    assert planner.calls == [(4, None), (4, 2), (2, 2)]


def test_fixed_horizon_without_shrinking():
    model, norm, envs, _ = _setup(b=1)
    planner = RecordingPlanner(horizon=4)
    _run(MPC(planner, model, norm, FS, n_taken_actions=1, max_iter=3, shrink_horizon=False, progress=False),
         envs, torch.zeros(1, 1, P, D))
    assert [c[0] for c in planner.calls] == [4, 4, 4]


def test_the_progress_log_counts_every_re_plan(caplog):
    model, norm, envs, _ = _setup(b=1)
    with caplog.at_level(logging.INFO, logger="progress"):
        _run(MPC(RecordingPlanner(horizon=4), model, norm, FS, n_taken_actions=1, max_iter=3, progress=True),
             envs, torch.zeros(1, 1, P, D))
    lines = [r.getMessage() for r in caplog.records if r.name == "progress"]
    assert lines and "3/3" in lines[-1] and "100%" in lines[-1], lines


class ContextRecorder(RecordingPlanner):
    def plan(self, ctx):
        self.calls.append(ctx.fixed_dims)
        return PlanResult(actions=torch.zeros(ctx.batch_size, ctx.horizon, 7 * FS))


def test_mpc_marks_action_dims_constant_in_the_training_data():
    """Scripted demos never rotate (action std 0 -> the normaliser's 1e-6 floor): the MPC tells the
    planner which dims of the [7 * FS] planning action those are, so it does not sample noise there."""
    model, _, envs, z_goal = _setup(b=1)
    std = torch.tensor([0.4, 0.2, 0.6, 1e-6, 1e-6, 1e-6, 0.9])
    norm = Normalizer(torch.zeros(7), std, torch.zeros(P * D), torch.ones(P * D), torch.zeros(3), torch.ones(3))
    planner = ContextRecorder(horizon=1)
    _run(MPC(planner, model, norm, FS, n_taken_actions=1, max_iter=1, progress=False), envs, z_goal[:1])
    expected = torch.tensor([False, False, False, True, True, True, False] * FS)
    assert torch.equal(planner.calls[0].cpu(), expected)
    planner = ContextRecorder(horizon=1)  # nothing constant: no mask
    ones = Normalizer(torch.zeros(7), torch.ones(7), torch.zeros(P * D), torch.ones(P * D), torch.zeros(3), torch.ones(3))
    _run(MPC(planner, model, ones, FS, n_taken_actions=1, max_iter=1, progress=False), envs, z_goal[:1])
    assert planner.calls[0] is None


def test_a_schedule_executes_its_steps_and_re_plans_from_the_real_state():
    """n_taken_actions=(3, 1, 1): the first plan's first 3 steps open loop, then one re-plan before each of the
    last 2 steps, each planning only up to the goal time and warm-started from the unexecuted rest."""
    model, norm, envs, _ = _setup(b=1)
    planner = RecordingPlanner(horizon=5)
    mpc = MPC(planner, model, norm, FS, n_taken_actions=(3, 1, 1), max_iter=3, progress=False)
    assert mpc.budget_steps == 5 and mpc.n_taken == [3, 1, 1]
    res = _run(mpc, envs, torch.zeros(1, 1, P, D))
    assert planner.calls == [(5, None), (2, 2), (1, 1)]
    assert res.n_replans == 3 and res.n_env_steps == 5 * FS and len(res.traces[0].actions) == 5 * FS


def test_a_schedule_must_match_the_re_plans():
    model, norm, _, _ = _setup(b=1)
    with pytest.raises(ValueError, match="has 2 re-plans, mpc.max_iter=3"):
        MPC(RecordingPlanner(horizon=4), model, norm, FS, n_taken_actions=(2, 2), max_iter=3, progress=False)


class ObjectiveRecorder(RecordingPlanner):
    """Records which objective each re-plan was scored with."""

    def __init__(self, horizon: int, objective):
        super().__init__(horizon)
        self.objective = objective

    def plan(self, ctx):
        self.calls.append(self.objective)
        return PlanResult(actions=torch.zeros(ctx.batch_size, ctx.horizon, 7 * FS))


def test_the_later_objective_scores_every_re_plan_after_the_first_and_the_planners_own_comes_back():
    model, norm, envs, _ = _setup(b=1)
    first, later = LatentGoalObjective(), LatentGoalObjective(alpha=1.0, alignment_dim=1)
    planner = ObjectiveRecorder(horizon=4, objective=first)
    mpc = MPC(planner, model, norm, FS, n_taken_actions=(2, 1, 1), max_iter=3, progress=False, later_objective=later)
    _run(mpc, envs, torch.zeros(1, 1, P, D))
    assert planner.calls == [first, later, later] and planner.objective is first
    planner = ObjectiveRecorder(horizon=4, objective=first)  # restored after a failure too
    planner.plan = lambda ctx: (_ for _ in ()).throw(RuntimeError("boom")) if planner.objective is later else \
        PlanResult(actions=torch.zeros(ctx.batch_size, ctx.horizon, 7 * FS))
    with pytest.raises(RuntimeError, match="boom"):
        _run(MPC(planner, model, norm, FS, n_taken_actions=(2, 2), max_iter=2, progress=False, later_objective=later),
             envs, torch.zeros(1, 1, P, D))
    assert planner.objective is first
