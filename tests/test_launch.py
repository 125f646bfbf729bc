"""training.run_dir.launch: the one launch entry point of the training script, a new run or a resume, in-process."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tests.conftest import ROOT
from training.run_dir.checkpoint import save_checkpoint
from training.run_dir.launch import LaunchRefused, open_launch
from training.run_dir.run_config import frozen_config
from training.run_dir.run_info import load_run_info, write_run_info


def _composed(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train_robomimic_compress", overrides=["env.data_path=/data/lift", *overrides])


def _run(tmp_path, *overrides: str):
    """A run dir whose first launch had ``overrides`` and wrote one checkpoint."""
    run = tmp_path / "run"
    run.mkdir()
    write_run_info(run, {"dataset_path": "/data/lift", "config": frozen_config(_composed(*overrides))})
    save_checkpoint(run, 5, {"w": torch.zeros(1)}, {}, {"epoch": 1}, {})
    return run


def test_a_new_run_trains_with_its_composed_config_and_the_launchers_precision(tmp_path):
    launch = open_launch(_composed("training.epochs=3"), tmp_path / "new", ["training.epochs=3"],
                         environ={"ACCELERATE_MIXED_PRECISION": "fp16"})
    assert not launch.resumed and launch.cfg.training.epochs == 3 and launch.cfg.training.mixed_precision == "fp16"
    launch.keep()  # a new run records its config when training starts, not here
    assert not (tmp_path / "new").exists()
    with pytest.raises(LaunchRefused, match=r"^accelerate launch --mixed_precision=fp16 conflicts with "):
        open_launch(_composed("training.mixed_precision=bf16"), tmp_path / "new", ["training.mixed_precision=bf16"],
                    environ={"ACCELERATE_MIXED_PRECISION": "fp16"})


def test_a_resume_trains_with_the_runs_own_config_and_keeps_what_it_changes(tmp_path):
    run = _run(tmp_path, "training.epochs=2", "training.lr=1e-4")
    launch = open_launch(_composed("training.epochs=6"), run, ["training.epochs=6"], environ={})
    assert launch.resumed and launch.cfg.training.epochs == 6 and launch.cfg.training.lr == 1e-4
    assert load_run_info(run)["config"]["training"]["epochs"] == 2  # nothing written before keep()
    (run / ".hydra").mkdir()
    launch.keep()
    assert load_run_info(run)["config"]["training"]["epochs"] == 6
    assert OmegaConf.load(run / ".hydra" / "config.yaml").training.epochs == 6


@pytest.mark.parametrize("overrides, says", [
    (["model.residual=false"], "different model/data config (model.residual)"),
    (["env.data_path=/data/other"], "this run trained on /data/lift, not /data/other"),
    (["preset=gpu_full"], "resuming "),
])
def test_a_resume_that_changes_the_model_or_data_is_refused_in_one_line(tmp_path, overrides, says):
    run = _run(tmp_path)
    before = (run / "run_info.json").read_bytes()
    with pytest.raises(LaunchRefused) as exc:
        open_launch(_composed(*overrides), run, overrides, environ={})
    assert says in str(exc.value) and "\n" not in str(exc.value)
    assert (run / "run_info.json").read_bytes() == before


def test_an_unreadable_run_info_is_one_line(tmp_path):
    run = _run(tmp_path)
    (run / "run_info.json").write_text("{not json")
    with pytest.raises(LaunchRefused, match=r"its run_info\.json is not readable JSON"):
        open_launch(_composed(), run, [], environ={})
