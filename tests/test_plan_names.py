"""What planned, in every output: cem is the world model alone (the run's action prior is never loaded), the
prior-seeded search says so with the prior's identity, and another dataset is planned on all of its episodes."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
OUTPUTS = ["progress=false", "outputs.videos=false", "outputs.plots=false", "goal_H=2"]
BUDGET = ["planner.num_samples=8", "planner.topk=2", "planner.opt_steps=1"]


def _plan(run_dir, out_dir, overrides):
    from hydra import compose, initialize_config_dir

    import plan

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        budget = BUDGET if any(o.startswith("planner=cem") for o in overrides) else []
        cfg = compose(config_name="plan", overrides=[f"ckpt_base_path={run_dir}", *OUTPUTS, *budget, *overrides])
    return plan.run_plan(cfg, out_dir)


def test_cem_plans_with_the_world_model_alone_even_when_the_run_has_a_prior(tiny_trained_run, tmp_path, monkeypatch):
    import models.action_prior

    assert (tiny_trained_run / "action_prior" / "model.safetensors").is_file()

    def refuse(*_a, **_k):
        raise AssertionError("planner=cem loaded the action prior")

    monkeypatch.setattr(models.action_prior, "load_action_prior", refuse)
    summary = _plan(tiny_trained_run, tmp_path / "cem", ["planner=cem_cpu", "n_evals=1"])
    assert summary["planner"] == "cem_cpu" and summary["actions_chosen_by"] == "world model"
    assert summary["action_prior"] is None and "prior" not in summary["planner_settings"]
    settings = summary["planner_settings"]
    assert (settings["num_samples"], settings["topk"], settings["opt_steps"]) == (8, 2, 1)
    assert settings["binary_gripper"] is True and settings["action_repeat"] is True and settings["horizon"] == 2
    logs = json.loads((tmp_path / "cem" / "logs.json").read_text())
    assert logs["info"]["planner"] == "cem_cpu" and "first_reference_cost" in logs["episodes"][0]


def test_the_prior_seeded_planner_names_itself_and_the_prior(tiny_trained_run, tmp_path):
    summary = _plan(tiny_trained_run, tmp_path / "prior", ["planner=cem_prior_cpu", "n_evals=1"])
    prior_dir = tiny_trained_run / "action_prior"
    saved = json.loads((prior_dir / "config.json").read_text())
    assert summary["planner"] == "cem_prior_cpu" and summary["actions_chosen_by"] == "action prior + world model"
    identity = summary["action_prior"]
    assert identity["sha256"] == hashlib.sha256((prior_dir / "model.safetensors").read_bytes()).hexdigest()
    assert identity["fitted_on_checkpoint"] == saved["world_model_checkpoint"]
    assert identity["val_mse"] == saved["losses"].get("val_mse")
    assert summary["planner_settings"]["prior_weight"] == 3.0 and summary["planner_settings"]["prior_std"] == 0.3
    assert 0 <= summary["mean_gripper_differs"] <= 1 and summary["mean_proposal_distance"] >= 0


def test_another_dataset_is_planned_on_all_of_its_episodes(tiny_trained_run, tiny_lift_dataset, tmp_path):
    info = json.loads((tiny_trained_run / "run_info.json").read_text())
    assert len(info["split"]["test"]) == 1  # the run's own test split: one of the three episodes
    other = tmp_path / "other_generator"
    shutil.copytree(tiny_lift_dataset, other, ignore=shutil.ignore_patterns("feature_cache"))
    meta = json.loads((other / "meta.json").read_text())
    (other / "meta.json").write_text(json.dumps({**meta, "source_sha256": "another generator's file"}))
    own = _plan(tiny_trained_run, tmp_path / "own", ["planner=hold", "n_evals=3"])
    foreign = _plan(tiny_trained_run, tmp_path / "foreign", ["planner=hold", "n_evals=3", f"dataset_path={other}"])
    assert own["n_distinct_episodes"] == 1 and own["episode_pool"] == "test split"
    assert foreign["n_distinct_episodes"] == 3 and foreign["episode_pool"].startswith("all of")
