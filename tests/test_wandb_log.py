"""Planning evaluations on wandb (planning/reporting/wandb_log.py through plan.py and planning.reporting.merge), read back offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_plan import SMALL_CEM, plan_inprocess
from tests.wandb_offline import offline_runs

pytestmark = pytest.mark.slow
OFFLINE = ["wandb.mode=offline"]


@pytest.fixture(scope="module")
def offline_eval(tiny_trained_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wandb_plan") / "cem"
    plan_inprocess(tiny_trained_run, out, [*SMALL_CEM, *OFFLINE])
    return out


def test_offline_run_holds_summary_table_videos_and_plots(offline_eval, tiny_trained_run):
    runs = offline_runs(offline_eval)
    assert len(runs) == 1
    run = runs[0]
    assert run.group == "demo_lift" and run.job_type == "plan" and run.name == "cem_gH5"  # the training run's name
    assert {"cem", "gH5"} <= set(run.tags)
    summary = json.loads((offline_eval / "summary.json").read_text())
    for key in ("success_rate", "goal_reached_rate", "mean_final_object_dist", "mean_final_eef_dist",
                "mean_final_latent_dist", "planning_seconds_total", "n_evals", "model_step"):
        assert run.summary[key] == pytest.approx(summary[key]), key
    assert run.summary["encoder"] == "random" and run.summary["model_step"] > 0
    assert run.config["ckpt_base_path"] == str(tiny_trained_run)
    assert run.config["model_step"] == summary["model_step"] and "step_" in run.config["checkpoint"]
    assert run.config["planner"]["name"] == "cem" and run.config["goal_H"] == 5
    table = run.table("episodes")
    assert len(table["data"]) == 2
    assert {"eval_index", "success", "goal_reached", "final_object_dist", "video"} <= set(table["columns"])
    videos, images = run.media("videos"), run.media("images")
    assert len(videos) == 2 and all(v.suffix == ".mp4" and v.stat().st_size > 1000 for v in videos)
    assert sum("eef_plot" in p.name for p in images) == 2 and any("success" in p.name for p in images)


def test_disabled_writes_nothing(tiny_trained_run, tmp_path):
    plan_inprocess(tiny_trained_run, tmp_path / "off", ["planner=replay", "progress=false", "wandb.mode=disabled"])
    assert (tmp_path / "off" / "summary.json").is_file()
    assert not list(tmp_path.rglob("wandb"))


def test_two_shards_merged_are_one_wandb_run(tiny_trained_run, tmp_path):
    from planning.reporting.merge import main as merge_main

    for k in range(2):
        plan_inprocess(tiny_trained_run, tmp_path / f"shard{k}", [*SMALL_CEM, *OFFLINE, f"shard.index={k}",
                                                                  "shard.count=2"])
        assert not (tmp_path / f"shard{k}" / "wandb").exists()  # a shard alone logs nothing
    assert merge_main([str(tmp_path / "shard0"), str(tmp_path / "shard1"), "--out", str(tmp_path / "merged")]) == 0
    runs = [r for d in tmp_path.rglob("wandb") for r in offline_runs(d.parent)]
    assert len(runs) == 1
    run = runs[0]
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert run.summary["n_evals"] == 2 and run.summary["success_rate"] == merged["success_rate"]
    assert len(run.table("episodes")["data"]) == 2 and len(run.media("videos")) == 2  # both shards' videos
    assert run.group == "demo_lift"


def test_horizon_study_logs_the_table_and_plot(tiny_trained_run, tmp_path):
    from planning.reporting.merge import main as merge_main

    for h in (2, 3):
        plan_inprocess(tiny_trained_run, tmp_path / "sweep" / f"gH{h}",
                       ["planner=replay", "progress=false", "outputs.videos=false", "wandb.mode=disabled",
                        f"goal_H={h}", "n_evals=1"])
    assert merge_main(["--by", "goal_H", str(tmp_path / "sweep"), "--wandb-mode", "offline"]) == 0
    runs = offline_runs(tmp_path / "sweep")
    assert [r.job_type for r in runs] == ["goal_H_study"]  # the jobs were not sharded: no evaluation re-logged
    table = runs[0].table("goal_H_table")
    assert [row[table["columns"].index("goal_H")] for row in table["data"]] == [2, 3]
    assert any("success_vs_goal_H" in p.name for p in runs[0].media("images"))


def test_no_api_key_means_offline_without_network_or_prompt(tiny_trained_run, tmp_path):
    """No WANDB_API_KEY, no ~/.netrc, no WANDB_MODE, stdin closed, and (where possible) no network at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path / "home"), WANDB_SILENT="true")
    cmd = [sys.executable, "plan.py", "--config-name=plan", f"ckpt_base_path={tiny_trained_run}",
           "n_evals=1", "goal_H=2", "planner=replay", "progress=false", f"hydra.run.dir={tmp_path / 'out'}"]
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        cmd = ["unshare", "-rn", *cmd]  # a network namespace with no interface but lo
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = offline_runs(tmp_path / "out")
    assert len(runs) == 1 and runs[0].summary["n_evals"] == 1
    assert "wandb sync" in proc.stdout + proc.stderr  # the user is told how to upload it
    assert "API key" not in proc.stdout + proc.stderr


def test_log_to_training_run_writes_its_summary(tiny_trained_run, tmp_path):
    """The training run (given a wandb run, as the trainer records it in train_state.json) gets
    eval/<planner>/gH<H>/success in its own summary."""
    import wandb

    from training.run_dir.checkpoint import latest_checkpoint

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_trained_run, run_dir)
    train = wandb.init(project="dino-wm-robomimic", mode="offline", dir=str(run_dir), name="demo_lift",
                       settings=wandb.Settings(console="off", silent=True))
    train.finish()
    state = latest_checkpoint(run_dir) / "train_state.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), "wandb_run_id": train.id}))
    summary = plan_inprocess(run_dir, tmp_path / "plan", ["planner=replay", "progress=false", *OFFLINE,
                                                          "wandb.log_to_training_run=true"])
    resumed = [r for r in offline_runs(run_dir) if r.run_id == train.id and "eval/replay/gH5/success" in r.summary]
    assert len(resumed) == 1
    assert resumed[0].summary["eval/replay/gH5/success"] == summary["success_rate"]
    assert resumed[0].summary["eval/replay/gH5/model_step"] == summary["model_step"]


def test_lineage_dataset_training_checkpoint_evaluation(tiny_lift_dataset, tmp_path):
    """An offline training run uses its dataset and logs its checkpoints; an offline evaluation of it uses the
    checkpoint's artifact, the very version the training run logged (same name and digest): on wandb the
    lineage graph reads dataset -> training run -> checkpoint -> evaluation."""
    from tests.conftest import TINY_TRAIN_OVERRIDES, run_cli

    run_dir = tmp_path / "run"
    run_cli(["train_robomimic_compress.py", "env=demo", f"env.data_path={tiny_lift_dataset}", "debug=true",
             "encoder.pretrained=false", "action_prior.train=false", *OFFLINE, f"hydra.run.dir={run_dir}",
             *TINY_TRAIN_OVERRIDES])
    (train,) = offline_runs(run_dir)
    assert (train.group, train.job_type) == ("demo_lift", "train")  # the group its evaluations use
    (dataset,) = [a for a in train.artifacts if a["type"] == "dataset"]
    assert dataset["used"] and "meta.json" in dataset["entries"]
    assert not any(p.startswith("feature_cache") for p in dataset["entries"])  # the cache is derived data

    summary = plan_inprocess(run_dir, tmp_path / "plan", ["planner=replay", "progress=false", "n_evals=1",
                                                          "outputs.videos=false", *OFFLINE])
    (evaluation,) = offline_runs(tmp_path / "plan")
    assert evaluation.group == train.group and evaluation.job_type == "plan"
    name = f"checkpoint-{train.run_id}"
    (used,) = evaluation.artifact(name, used=True)
    logged = {a["digest"]: a for a in train.artifact(name, used=False)}
    assert used["digest"] in logged, "the evaluation used a checkpoint version the training run did not log"
    assert f"step_{summary['model_step']}" in logged[used["digest"]]["aliases"]
    assert used["entries"]["model.safetensors"].endswith(f"step_{summary['model_step']:08d}/model.safetensors")
