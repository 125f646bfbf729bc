"""The planner contract: every shipped planner (each conf/planner file) satisfies ``planning.planners.protocol.Planner``
and is built by ``build_planner``; a misspelt setting or a wrong name fails in one line."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from planning.objectives import LatentGoalObjective
from planning.planners.factory import build_planner
from planning.planners.protocol import PlanContext, Planner, PlanResult, ReplayContext, context_for
from tests.conftest import ROOT
from tests.toy_dynamics import LatentToyModel, OraclePrior, ToyLinearWorldModel, toy_context

PLANNER_FILES = sorted((ROOT / "conf" / "planner").glob("*.yaml"))


def _load(path):
    """A planner file with its defaults chain merged in (cem_prior_cpu: cem, then cem_prior, then its own budget)."""
    cfg = OmegaConf.load(path)
    if "defaults" not in cfg:
        return cfg
    base = _load(path.parent / f"{cfg.defaults[0]}.yaml")
    return OmegaConf.merge(base, {k: v for k, v in cfg.items() if k != "defaults"})


def _spec(path, **over) -> dict:
    cfg = _load(path)
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
    ctx = context_for(planner, toy_context(model, torch.zeros(2, 3, 4)), torch.zeros(2, 3, 4))
    ctx.hold_actions = torch.zeros(2, 4)
    res = planner.plan(ctx)
    assert isinstance(res, PlanResult) and res.actions.shape == (2, 3, 4)
    calls_before = model.calls
    planner.plan(ctx)
    assert (model.calls > calls_before) == (planner.uses_model or spec["name"] == "replay")  # replay: imagined only


def test_model_free_planners_are_not_given_the_model():
    hold = build_planner({"_target_": "planning.planners.hold.HoldPlanner", "name": "hold", "horizon": 2},
                         model=object(), objective=object())
    assert hold.uses_model is False and not hasattr(hold, "model")


def test_unknown_setting_is_one_line_naming_it_and_what_the_planner_takes():
    with pytest.raises(ValueError) as exc:
        build_planner({"_target_": "planning.planners.random_shooting.RandomActionPlanner", "name": "random",
                       "horizon": 2, "num_sampels": 3})
    msg = str(exc.value)
    assert "\n" not in msg and "num_sampels" in msg and "takes horizon" in msg


def test_name_must_match_the_class_and_target_must_import():
    with pytest.raises(ValueError, match="calls itself 'hold'"):
        build_planner({"_target_": "planning.planners.hold.HoldPlanner", "name": "cem", "horizon": 2})
    with pytest.raises(ValueError, match="cannot be imported"):
        build_planner({"_target_": "planning.nope.Planner", "name": "x"})
    with pytest.raises(ValueError, match="is not a planner"):
        build_planner({"_target_": "planning.objectives.LatentGoalObjective"})


def test_constructor_errors_surface_as_value_errors():
    with pytest.raises(ValueError, match="topk"):
        build_planner({"_target_": "planning.planners.cem.CEMPlanner", "name": "cem", "num_samples": 2, "topk": 5},
                      ToyLinearWorldModel(), LatentGoalObjective())


class _Spy:
    """Wraps a planner's ``plan`` to record every context it is given."""

    def __init__(self, planner):
        self.planner, self.seen = planner, []
        self.name, self.uses_model, self.horizon = planner.name, planner.uses_model, planner.horizon

    def plan(self, ctx):
        self.seen.append(ctx)
        return self.planner.plan(ctx)


@pytest.mark.parametrize("path", PLANNER_FILES, ids=lambda p: p.stem)
def test_only_replay_can_read_the_demonstrations_actions(path):
    """The demonstration's actions reach a planner only through a ReplayContext, which context_for builds for
    the replay planner alone; a plain PlanContext has no field that could hold them."""
    assert not {"reference_actions"} & {f for f in PlanContext.__dataclass_fields__}
    model = LatentToyModel(action_dim=4)
    spec = _spec(path, **({"num_samples": 8, "opt_steps": 1} if "num_samples" in _spec(path) else {}))
    if "topk" in spec:
        spec["topk"] = 2
    if "prior" in spec:
        spec["prior"] = OraclePrior(model)
    planner = build_planner(spec, model, LatentGoalObjective())
    reference = torch.full((2, 3, 4), 0.7)
    ctx = context_for(planner, toy_context(model, torch.zeros(2, 3, 4)), reference)
    ctx.hold_actions = torch.zeros(2, 4)
    reads = isinstance(ctx, ReplayContext)
    assert reads == (spec["name"] == "replay")
    assert not any(torch.equal(getattr(ctx, f), reference) for f in vars(ctx) if isinstance(getattr(ctx, f), torch.Tensor)
                   and f != "reference_actions")
    if reads:
        torch.testing.assert_close(planner.plan(ctx).actions, reference)


def test_the_world_models_cem_takes_no_action_prior():
    """planner=cem / cem_cpu choose actions only by scoring candidates with the predictor: their class takes no
    prior (a config that gives one is refused), and the prior-seeded search is another class and name."""
    import inspect

    from planning.planners.cem import CEMPlanner
    from planning.planners.cem_prior import PriorSeededCEMPlanner

    assert "prior" not in inspect.signature(CEMPlanner).parameters
    for stem in ("cem", "cem_cpu"):
        spec = _spec(ROOT / "conf" / "planner" / f"{stem}.yaml")
        assert not any("prior" in k for k in spec) and spec["_target_"] == "planning.planners.cem.CEMPlanner"
        with pytest.raises(ValueError, match="unknown setting\\(s\\) prior"):
            build_planner({**spec, "prior": "auto"}, LatentToyModel(), LatentGoalObjective())
    for stem in ("cem_prior", "cem_prior_cpu"):
        spec = _spec(ROOT / "conf" / "planner" / f"{stem}.yaml")
        assert spec["name"] == stem and spec["_target_"] == "planning.planners.cem_prior.PriorSeededCEMPlanner"
    assert issubclass(PriorSeededCEMPlanner, CEMPlanner) and PriorSeededCEMPlanner is not CEMPlanner
    with pytest.raises(ValueError, match="needs a trained action prior"):
        PriorSeededCEMPlanner(LatentToyModel(), LatentGoalObjective(), prior=None)


def test_a_config_name_reaches_the_planner():
    spec = _spec(ROOT / "conf" / "planner" / "cem_cpu.yaml")
    planner = build_planner(spec, LatentToyModel(), LatentGoalObjective())
    assert planner.name == "cem_cpu" and planner.num_samples == 64
