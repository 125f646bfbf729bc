"""The frozen run config: resolved and JSON-able; a resume may change how training runs, not the model or data."""

import json

from omegaconf import OmegaConf

from training.run_dir.run_config import changed_model_keys, frozen_config, same_path


def _cfg(**over):
    base = {"env": {"name": "demo_lift", "data_path": "/d"}, "name": "${env.name}", "projected_dim": 64,
            "predictor": {"depth": 6}, "encoder": {"pretrained": True, "cache": True},
            "training": {"lr": 1e-3, "epochs": 10}, "wandb": {"mode": None}, "debug": False}
    return OmegaConf.merge(OmegaConf.create(base), OmegaConf.create(over))


def test_frozen_config_is_resolved_plain_json():
    frozen = frozen_config(_cfg())
    assert frozen["name"] == "demo_lift" and isinstance(frozen["predictor"], dict)
    assert json.loads(json.dumps(frozen)) == frozen


def test_training_settings_may_change_on_resume():
    saved = frozen_config(_cfg())
    now = frozen_config(_cfg(training={"lr": 5e-4, "epochs": 100}, wandb={"mode": "offline"}, debug=True,
                             encoder={"cache": False}, env={"data_path": "/moved"}))
    assert changed_model_keys(saved, now) == []


def test_model_and_data_changes_are_named_by_dotted_key():
    saved = frozen_config(_cfg())
    now = frozen_config(_cfg(projected_dim=32, predictor={"depth": 2}, encoder={"pretrained": False},
                             env={"name": "robomimic_can"}))
    assert changed_model_keys(saved, now) == ["encoder.pretrained", "env.name", "predictor.depth", "projected_dim"]


def test_a_key_present_on_one_side_only_counts_as_changed():
    saved = frozen_config(_cfg())
    now = {**saved, "alignment_dim": 8, "training": {**saved["training"], "new_knob": 1}}
    assert changed_model_keys(saved, now) == ["alignment_dim"]


def test_same_path_resolves_relative_and_linked_paths(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    assert same_path("data", tmp_path / "data") and same_path(tmp_path / "link", "data/../data")
    assert not same_path("data", tmp_path)


def _resumed(saved_over=None, composed_over=None, overrides=()):
    from training.run_dir.run_config import resumed_config

    saved = frozen_config(_cfg(training={"lr": 1e-3, "epochs": 12}, env={"data_path": "/run_data"},
                               **(saved_over or {})))
    composed = OmegaConf.merge(_cfg(training={"compile": "auto", "resume": True}), _cfg(**(composed_over or {})))  # the defaults: epochs 10, data /d
    return resumed_config(saved, composed, list(overrides))


def test_a_resume_keeps_the_runs_own_values_and_takes_only_the_keys_given_again():
    cfg = _resumed(overrides=["hydra.run.dir=/r", "training.resume=true"])
    assert cfg.training.epochs == 12 and cfg.env.data_path == "/run_data"  # not the defaults' 10 and /d
    assert cfg.training.compile == "auto"  # a key the run did not record keeps its default
    cfg = _resumed(composed_over={"training": {"epochs": 30}, "wandb": {"mode": "offline"}},
                   overrides=["training.epochs=30", "++wandb.mode=offline"])
    assert cfg.training.epochs == 30 and cfg.wandb.mode == "offline" and cfg.training.lr == 1e-3


def test_a_model_key_given_again_is_kept_for_the_mismatch_check_to_name():
    cfg = _resumed(composed_over={"predictor": {"depth": 2}}, overrides=["predictor.depth=2"])
    assert changed_model_keys(frozen_config(_resumed()), frozen_config(cfg)) == ["predictor.depth"]


def test_a_group_given_again_keeps_the_runs_data_path_and_a_different_one_is_refused():
    import pytest

    from training.run_dir.run_config import ResumeOverrideError

    cfg = _resumed(overrides=["env=demo"])  # the same group: its default data path is not taken
    assert cfg.env.data_path == "/run_data"
    with pytest.raises(ResumeOverrideError, match=r"^env=\.\.\. gives another model, task or data than the run's \(env.name\)"):
        _resumed(composed_over={"env": {"name": "robomimic_lift"}}, overrides=["env=robomimic"])
    with pytest.raises(ResumeOverrideError, match=r"task=\.\.\. .*\(task.name\)"):  # task may not change by its group
        _resumed(saved_over={"task": {"name": "lift"}}, composed_over={"task": {"name": "can"}}, overrides=["task=can"])


def test_the_first_launchs_command_rerun_resumes_and_a_preset_that_differs_is_refused():
    import pytest

    from training.run_dir.run_config import ResumeOverrideError

    # preset=... is a _global_ group: no key of its own, so the whole config it gives is compared
    same = _resumed(composed_over={"env": {"data_path": "/run_data"}, "training": {"epochs": 12}},
                    overrides=["preset=gpu_full", "env.data_path=/run_data"])
    assert same.training.epochs == 12
    with pytest.raises(ResumeOverrideError, match=r"preset=\.\.\. .*\(predictor.depth\)"):
        _resumed(composed_over={"predictor": {"depth": 2}}, overrides=["preset=gpu_full"])
    with pytest.raises(ResumeOverrideError, match="^~action_prior: a resume keeps the run's config"):
        _resumed(overrides=["~action_prior"])
