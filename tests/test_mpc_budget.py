"""MPC budget rules, in one place: re-plans, executed steps, and the budgets that are refused."""

import pytest

from planning.execution.mpc_budget import MPCBudget


def test_default_budget_ends_at_the_goal():
    b = MPCBudget(goal_H=6, n_taken_actions=2, horizon=6)
    assert (b.iterations, b.steps) == (3, 6)
    assert MPCBudget(goal_H=5).iterations == 5


def test_explicit_max_iter_may_run_past_the_goal():
    b = MPCBudget(goal_H=5, n_taken_actions=2, max_iter=3)
    assert (b.iterations, b.steps) == (3, 6)


@pytest.mark.parametrize("kw, match", [
    ({"goal_H": 5, "n_taken_actions": 2}, "not a multiple of mpc.n_taken_actions=2"),
    ({"goal_H": 4, "n_taken_actions": 2, "horizon": 1}, "planner.horizon=1 is shorter"),
    ({"goal_H": 4, "n_taken_actions": 0}, "must be >= 1"),
    ({"goal_H": 4, "max_iter": 0}, "mpc.max_iter must be >= 1"),
])
def test_bad_budgets_are_refused_in_one_line(kw, match):
    with pytest.raises(ValueError, match=match) as exc:
        MPCBudget(**kw)
    assert "\n" not in str(exc.value)


def test_a_schedule_sets_the_re_plans_and_ends_at_the_goal():
    b = MPCBudget(goal_H=9, n_taken_actions=(6, 1, 1, 1), horizon=9)
    assert (b.iterations, b.steps, b.schedule) == (4, 9, (6, 1, 1, 1))
    assert MPCBudget(goal_H=6, n_taken_actions=2).schedule == (2, 2, 2)


@pytest.mark.parametrize("kw, match", [
    ({"goal_H": 9, "n_taken_actions": (6, 1, 1)}, r"adds up to 8 planning steps, not goal_H=9"),
    ({"goal_H": 4, "n_taken_actions": (2, 2), "max_iter": 3}, "is 2 re-plans, mpc.max_iter=3"),
    ({"goal_H": 4, "n_taken_actions": (3, 1), "horizon": 2}, "planner.horizon=2 is shorter"),
    ({"goal_H": 4, "n_taken_actions": (4, 0)}, "must be >= 1"),
    ({"goal_H": 4, "n_taken_actions": ()}, "must be >= 1"),
])
def test_bad_schedules_are_refused_in_one_line(kw, match):
    with pytest.raises(ValueError, match=match) as exc:
        MPCBudget(**kw)
    assert "\n" not in str(exc.value)
