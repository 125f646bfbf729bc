"""The planner contract: every shipped planner (each conf/planner file) satisfies ``planning.base.Planner``
and is built by ``build_planner``; a misspelt setting or a wrong name fails in one line."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from planning.base import Planner, PlanResult, build_planner
from planning.objectives import LatentGoalObjective
from tests.conftest import ROOT
from tests.toy_dynamics import LatentToyModel, OraclePrior, ToyLinearWorldModel, toy_context

PLANNER_FILES = sorted((ROOT / "conf" / "planner").glob("*.yaml"))


def _spec(path, **over) -> dict:
    cfg = OmegaConf.load(path)
    if "defaults" in cfg:  # cem_cpu: the cem file plus its own budget
        base = OmegaConf.load(path.parent / f"{cfg.defaults[0]}.yaml")
        cfg = OmegaConf.merge(base, {k: v for k, v in cfg.items() if k != "defaults"})
    cfg.horizon = 3  # ${goal_H} in the files
    return {**OmegaConf.to_container(cfg), **over}


@pytest.mark.parametrize("path", PLANNER_FILES, ids=lambda p: p.stem)
def test_every_planner_file_builds_a_planner_that_plans(path):
    model = LatentToyModel(action_dim=4)
    spec = _spec(path, **({"num_samples": 8, "opt_steps": 2} if "num_samples" in _spec(path) else {}))
    if "topk" in spec:
        spec["topk"] = 2
    if "prior" in spec:  # plan.py loads RUN/action_prior in place of "auto"
        spec["prior"] = OraclePrior(model)
    planner = build_planner(spec, model, LatentGoalObjective())
    assert isinstance(planner, Planner) and planner.name == spec["name"] and planner.horizon == 3
    ctx = toy_context(model, torch.zeros(2, 3, 4))
    ctx.reference_actions, ctx.hold_actions = torch.zeros(2, 3, 4), torch.zeros(2, 4)
    res = planner.plan(ctx)
    assert isinstance(res, PlanResult) and res.actions.shape == (2, 3, 4)
    calls_before = model.calls
    planner.plan(ctx)
    assert (model.calls > calls_before) == (planner.uses_model or spec["name"] == "replay")  # replay: imagined only


def test_model_free_planners_are_not_given_the_model():
    hold = build_planner({"_target_": "planning.hold.HoldPlanner", "name": "hold", "horizon": 2},
                         model=object(), objective=object())
    assert hold.uses_model is False and not hasattr(hold, "model")


def test_unknown_setting_is_one_line_naming_it_and_what_the_planner_takes():
    with pytest.raises(ValueError) as exc:
        build_planner({"_target_": "planning.random_shooting.RandomActionPlanner", "name": "random",
                       "horizon": 2, "num_sampels": 3})
    msg = str(exc.value)
    assert "\n" not in msg and "num_sampels" in msg and "takes horizon" in msg


def test_name_must_match_the_class_and_target_must_import():
    with pytest.raises(ValueError, match="calls itself 'hold'"):
        build_planner({"_target_": "planning.hold.HoldPlanner", "name": "cem", "horizon": 2})
    with pytest.raises(ValueError, match="cannot be imported"):
        build_planner({"_target_": "planning.nope.Planner", "name": "x"})
    with pytest.raises(ValueError, match="is not a planner"):
        build_planner({"_target_": "planning.objectives.LatentGoalObjective"})


def test_constructor_errors_surface_as_value_errors():
    with pytest.raises(ValueError, match="topk"):
        build_planner({"_target_": "planning.cem.CEMPlanner", "name": "cem", "num_samples": 2, "topk": 5},
                      ToyLinearWorldModel(), LatentGoalObjective())
