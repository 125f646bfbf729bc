"""Scale-out recipes: Hydra's local (joblib) launcher preset runs a 2-job multirun, and the Slurm
presets compose (submitit is not run here: no Slurm)."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def test_local_launcher_runs_two_planning_shards_that_merge_into_one_result(tiny_trained_run, tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(["plan.py", "-m", "--config-name=plan", "hydra/launcher=local",
             f"ckpt_base_path={tiny_trained_run}", "planner=replay", "n_evals=2", "goal_H=2",
             "shard.count=2", "shard.index=0,1", "progress=false", "outputs.videos=false",
             "outputs.plots=false", f"hydra.sweep.dir={sweep}"])
    jobs = sorted(p.parent for p in sweep.rglob("summary.json"))
    assert len(jobs) == 2
    assert sorted(json.loads((j / "summary.json").read_text())["n_evals"] for j in jobs) == [1, 1]
    out = tmp_path / "merged"
    run_cli(["-m", "planning.reporting.merge", str(sweep), "--out", str(out)])
    merged = json.loads((out / "summary.json").read_text())
    assert merged["n_evals"] == 2 and merged["planner"] == "replay"
    assert merged["success_rate_all"] == 1.0  # replay reaches the goal (a start already a success is not rated)


@pytest.mark.parametrize("preset", ["slurm", "slurm_planning"])
def test_slurm_presets_compose(preset):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason='needs the slurm extra: pip install -e ".[slurm]"')
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="plan", overrides=[f"hydra/launcher={preset}"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.gpus_per_node == 1 and launcher.timeout_min > 0
