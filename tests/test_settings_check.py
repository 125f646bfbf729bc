"""training.settings_check: each kind of bad training value is refused in one line naming its key."""

from __future__ import annotations

import os

import pytest
from hydra import compose, initialize_config_dir

from training.settings_check import BadSetting, check_training_settings

CONF = os.path.join(os.path.dirname(__file__), "..", "conf")


def config(*overrides: str):
    with initialize_config_dir(config_dir=os.path.abspath(CONF), version_base="1.3"):
        return compose("train_robomimic_compress", overrides=list(overrides))


@pytest.mark.parametrize("overrides", [[], ["preset=gpu_full"], ["task=can"], ["env=robomimic", "preset=gpu_full"],
                                       ["training.lr=1e-4", "training.val_ratio=0", "img_size=28"]])
def test_the_shipped_configs_pass(overrides):
    check_training_settings(config(*overrides))


@pytest.mark.parametrize("override, message", [
    ("training.epochs=abc", "training.epochs='abc' is not a whole number"),
    ("training.epochs=0", "training.epochs=0 must be >= 1"),
    ("training.epochs=2.5", "training.epochs=2.5 is not a whole number"),
    ("training.epochs='12abc'", "training.epochs='12abc' is not a whole number"),
    ("training.batch_size=-4", "training.batch_size=-4 must be >= 1"),
    ("training.grad_accum=0", "training.grad_accum=0 must be >= 1"),
    ("num_hist=0", "num_hist=0 must be >= 1"),
    ("training.lr=abc", "training.lr='abc' is not a number"),
    ("training.lr=0", "training.lr=0 must be > 0.0"),
    ("training.val_ratio=1.5", "training.val_ratio=1.5 must be in [0.0, 1.0)"),
    ("training.mixed_precision=fp8", "training.mixed_precision='fp8' is not one of no, bf16, fp16"),
    ("encoder.feature_key=foo", "encoder.feature_key='foo' is not one of x_norm_patchtokens, cls"),
    ("debug=maybe", "debug='maybe' is not true or false"),
    ("img_size=100", "img_size=100 is not a multiple of the encoder's 14-pixel patch (e.g. 98 or 112)"),
    ("img_size=0", "img_size=0 must be >= 14"),
    ("predictor.heads=3", "predictor.heads=3 does not divide the predictor width 80"),
    ("alignment_dim=65", "alignment_dim=65 is larger than projected_dim=64"),
])
def test_a_bad_value_is_one_line_naming_its_key(override, message):
    with pytest.raises(BadSetting) as err:
        check_training_settings(config(override))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_values_training_reads_with_int_float_or_bool_pass(monkeypatch):
    """What ``int(...)``, ``float(...)`` and ``bool(...)`` read: env interpolations (strings), 10.0, 0 / 1."""
    monkeypatch.setenv("LR", "1e-4")
    monkeypatch.setenv("IMG", "56")
    check_training_settings(config("training.lr=${oc.env:LR}", "img_size=${oc.env:IMG}", "training.epochs=10.0",
                                   "debug=1"))


def test_keys_a_config_does_not_hold_are_skipped():
    check_training_settings({"training": {"epochs": 3}})  # an older run's config, another entry point's
    with pytest.raises(BadSetting, match="training.epochs=-1"):
        check_training_settings({"training": {"epochs": -1}})
