"""Tests for plan_build.py: ``mpc.n_taken_actions=auto`` made concrete from the task's recipe (tasks.task.MPCRecipe)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from plan_build import apply_mpc_recipe, n_taken_actions
from tasks import get_task

CEM = "planning.planners.cem.CEMPlanner"
RANDOM = "planning.planners.random_shooting.RandomActionPlanner"


class _Model:
    def __init__(self, reads_state: bool = True):
        self.reads_state = reads_state


def _cfg(tmp_path, taken="auto", goal_H=9, target=CEM, readout=True, ensemble=(), **later):
    run = tmp_path / "run"
    (run / "rollout_readout").mkdir(parents=True, exist_ok=True) if readout else run.mkdir(parents=True, exist_ok=True)
    keys = dict.fromkeys(("alpha", "state_weight", "state_tolerance", "state_position", "state_readout"))
    return OmegaConf.create({"ckpt_base_path": str(run), "goal_H": goal_H, "ensemble": list(ensemble),
                             "planner": {"_target_": target}, "mpc": {"n_taken_actions": taken,
                                                                       "later_objective": {**keys, **later}}})


def test_auto_takes_the_tasks_schedule_and_later_cost(tmp_path):
    cfg = _cfg(tmp_path)
    info = apply_mpc_recipe(cfg, get_task("lift"), _Model())
    assert n_taken_actions(cfg) == (6, 1, 1, 1) and info["n_taken_actions"] == [6, 1, 1, 1]
    assert cfg.mpc.later_objective.state_position == "eef" and cfg.mpc.later_objective.state_readout == "rollout"
    assert info["task"] == "lift" and info["notes"] == []
    # Can's recipe: every step, no later objective
    cfg = _cfg(tmp_path, goal_H=20)
    apply_mpc_recipe(cfg, get_task("can"), _Model())
    assert n_taken_actions(cfg) == 1 and cfg.mpc.later_objective.state_weight is None


def test_a_key_given_on_the_command_line_wins_over_the_recipe(tmp_path):
    cfg = _cfg(tmp_path, state_weight=0.5)
    apply_mpc_recipe(cfg, get_task("lift"), _Model())
    assert cfg.mpc.later_objective.state_weight == 0.5 and cfg.mpc.later_objective.state_tolerance == 0.01
    # the run's own readout asked for: kept, and no note about a missing rollout readout
    cfg = _cfg(tmp_path / "m", readout=False, state_readout="model")
    info = apply_mpc_recipe(cfg, get_task("lift"), _Model())
    assert cfg.mpc.later_objective.state_readout == "model" and info["notes"] == []


def test_later_objective_null_keeps_the_schedule_only(tmp_path):
    cfg = _cfg(tmp_path)
    cfg.mpc.later_objective = None
    apply_mpc_recipe(cfg, get_task("lift"), _Model())
    assert n_taken_actions(cfg) == (6, 1, 1, 1) and cfg.mpc.later_objective is None


def test_an_explicit_schedule_is_left_alone(tmp_path):
    cfg = _cfg(tmp_path, taken=9)
    assert apply_mpc_recipe(cfg, get_task("lift"), _Model()) is None
    assert n_taken_actions(cfg) == 9 and cfg.mpc.later_objective.state_weight is None


def test_the_recipe_adapts_to_what_the_run_and_planner_have(tmp_path):
    # no rollout readout in the run: the later cost reads latents with the run's own readout, and says so
    cfg = _cfg(tmp_path, readout=False)
    info = apply_mpc_recipe(cfg, get_task("lift"), _Model())
    assert cfg.mpc.later_objective.state_readout == "model" and "rollout_readout" in info["notes"][0]
    # an ensemble cannot use the rollout readout either
    cfg = _cfg(tmp_path / "e", ensemble=["other_run"])
    apply_mpc_recipe(cfg, get_task("lift"), _Model())
    assert cfg.mpc.later_objective.state_readout == "model"
    # a model that reads no state: no later state cost at all
    cfg = _cfg(tmp_path / "n")
    info = apply_mpc_recipe(cfg, get_task("lift"), _Model(reads_state=False))
    assert cfg.mpc.later_objective.state_weight is None and "reads no state" in info["notes"][0]
    # planners that do not search by cost (a baseline, the prior alone, replay) get the schedule only
    for target in (RANDOM, "planning.planners.prior.PriorPlanner", "planning.planners.replay.ReplayPlanner"):
        cfg = _cfg(tmp_path / target, target=target)
        apply_mpc_recipe(cfg, get_task("lift"), _Model())
        assert n_taken_actions(cfg) == (6, 1, 1, 1) and cfg.mpc.later_objective.state_weight is None, target
    # the prior-seeded CEM searches by cost: it gets the later cost as well
    cfg = _cfg(tmp_path / "cp", target="planning.planners.cem_prior.PriorSeededCEMPlanner")
    apply_mpc_recipe(cfg, get_task("lift"), _Model())
    assert cfg.mpc.later_objective.state_position == "eef"
    # one re-plan only (goal_H 1): nothing after the first plan
    cfg = _cfg(tmp_path / "g", goal_H=1)
    apply_mpc_recipe(cfg, get_task("lift"), _Model())
    assert n_taken_actions(cfg) == 1 and cfg.mpc.later_objective.state_weight is None


def test_no_task_plans_every_step(tmp_path):
    cfg = _cfg(tmp_path)
    apply_mpc_recipe(cfg, None, _Model())
    assert n_taken_actions(cfg) == 1


@pytest.mark.parametrize("taken", ["often", 1.5, True])
def test_a_bad_n_taken_actions_is_one_line(tmp_path, taken):
    with pytest.raises(ValueError, match="mpc.n_taken_actions=.* is not a number of planning steps"):
        n_taken_actions(_cfg(tmp_path, taken=taken))
