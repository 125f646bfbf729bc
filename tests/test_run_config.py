"""The frozen run config: resolved and JSON-able; a resume may change how training runs, not the model or data."""

import json

from omegaconf import OmegaConf

from training.run_config import changed_model_keys, frozen_config, same_path


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
