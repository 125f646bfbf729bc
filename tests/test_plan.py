"""plan.py end to end on the tiny trained run: outputs, baselines, shards + merge == one job."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow
# planner=cem (the world model alone, no action prior): these tests check the evaluation machinery (shards,
# batches, outputs) bit for bit; the prior's closed-loop proposal (cem_prior) is not bit-invariant to which episodes
# share a batch (last-bit float differences of batched products grow along it): see test_prior / test_planners
SMALL_CEM = ["planner=cem", "planner.num_samples=16", "planner.topk=4", "planner.opt_steps=2", "progress=false"]


def plan_inprocess(run_dir: Path, out_dir: Path, overrides: list[str]) -> dict:
    """plan.py's job without a subprocess (same config composition, same code path after Hydra)."""
    from hydra import compose, initialize_config_dir

    import plan

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="plan",
                      overrides=[f"ckpt_base_path={run_dir}", "n_evals=2", "goal_H=5", *overrides])
    return plan.run_plan(cfg, out_dir)


@pytest.fixture(scope="module")
def cem_single(tiny_trained_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plan") / "cem"
    run_cli(["plan.py", "--config-name=plan", f"ckpt_base_path={tiny_trained_run}", "n_evals=2",
             "goal_H=5", f"hydra.run.dir={out}", *SMALL_CEM])
    return out


def test_cli_writes_every_output(cem_single):
    summary = json.loads((cem_single / "summary.json").read_text())
    assert summary["planner"] == "cem" and summary["n_evals"] == 2
    assert summary["encoder_pretrained"] is False
    logs = json.loads((cem_single / "logs.json").read_text())
    task = [bool(r["task_success"]) for r in sorted(logs["episodes"], key=lambda r: r["eval_index"])]
    assert summary["successes"] == task and summary["success_rate"] == sum(task) / 2  # success_metric: task
    dists = [r["final_object_dist"] for r in logs["episodes"]]
    assert summary["mean_final_object_dist"] == pytest.approx(sum(dists) / 2) and min(dists) > 0
    assert logs["config"]["planner"]["num_samples"] == 16
    # mpc.n_taken_actions=auto: Lift's recipe, the first plan open loop then a re-plan before each of the last 3
    # steps, with the end-effector state cost in those re-plans; the outputs name the concrete settings
    assert summary["planner_settings"]["n_taken_actions"] == [2, 1, 1, 1] == logs["config"]["mpc"]["n_taken_actions"]
    recipe = summary["mpc_recipe"]
    assert recipe["task"] == "lift" and recipe["later_objective"]["state_position"] == "eef"
    assert summary["planner_settings"]["later_objective"] == recipe["later_objective"]
    for rec in logs["episodes"]:
        for key in ("task_success", "goal_reached", "final_latent_dist", "final_object_dist", "planning_seconds",
                    "goal_is_success", "start_is_success"):
            assert key in rec, key
        assert rec["goal_is_success"] and not rec["start_is_success"]
        assert rec["n_env_steps"] == 25 and rec["n_replans"] == 4
        frames = _read_mp4(cem_single / rec["video"])
        assert frames.shape[0] == rec["n_env_steps"] + 1
        assert frames.shape[2] == 2 * frames.shape[1]  # executed view | goal frame
        png = iio.imread(cem_single / rec["eef_plot"])
        assert png.ndim == 3 and png.shape[0] > 100
    assert iio.imread(cem_single / "plots" / "success.png").ndim == 3
    # written as it went: the job's identity and each finished batch's records (what a rerun resumes from)
    job = json.loads((cem_single / "job.json").read_text())
    assert job["identity"]["n_evals"] == 2 and job["identity"]["config"]["planner"]["num_samples"] == 16
    batched = [r for p in sorted((cem_single / "batches").glob("evals_*.json")) for r in json.loads(p.read_text())["records"]]
    assert sorted(batched, key=lambda r: r["eval_index"]) == logs["episodes"]


def _read_mp4(path: Path):
    from datasets.video_io import read_video

    return read_video(path)


def test_replay_reaches_the_goals_and_random_does_not(tiny_trained_run, tmp_path):
    replay = plan_inprocess(tiny_trained_run, tmp_path / "replay", ["planner=replay", "progress=false"])
    assert replay["success_rate"] >= 0.9
    assert replay["goal_is_success_rate"] == 1.0 and replay["start_is_success_rate"] == 0.0
    assert replay["mean_final_object_dist"] < 0.005
    rand = plan_inprocess(tiny_trained_run, tmp_path / "random", ["planner=random", "progress=false"])
    assert rand["success_rate"] == 0.0
    assert rand["mean_final_object_dist"] > 5 * replay["mean_final_object_dist"]


def test_two_shards_merged_equal_the_single_job(tiny_trained_run, cem_single, tmp_path):
    from planning.reporting.merge import main as merge_main

    for k in range(2):
        plan_inprocess(tiny_trained_run, tmp_path / f"shard{k}", [*SMALL_CEM, f"shard.index={k}", "shard.count=2"])
    assert merge_main([str(tmp_path / "shard0"), str(tmp_path / "shard1"), "--out", str(tmp_path / "merged")]) == 0
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    single = json.loads((cem_single / "summary.json").read_text())
    assert merged["successes"] == single["successes"] and merged["success_rate"] == single["success_rate"]
    for key in ("mean_final_object_dist", "mean_final_latent_dist", "mean_final_eef_dist"):
        assert merged[key] == pytest.approx(single[key], rel=1e-4, abs=1e-6), key


def test_missing_run_dir_is_a_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "plan.py", f"ckpt_base_path={tmp_path / 'nope'}",
                           f"hydra.run.dir={tmp_path / 'out'}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("plan.py: error:")
    sh = subprocess.run(["bash", "plan.sh"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                        env={"CKPT": str(tmp_path / "nope"), "PATH": "/usr/bin:/bin"})
    assert sh.returncode == 2 and sh.stderr.count("\n") == 1 and "does not exist" in sh.stderr


def test_plan_sh_takes_the_run_relative_to_the_caller_or_as_an_override(tmp_path):
    run = tmp_path / "runs" / "r1"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("{}\n")
    rec, stub = tmp_path / "argv.json", tmp_path / "python-stub"
    stub.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(rec)!r}, 'w'))\n")
    stub.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "PYTHON": str(stub)}
    for extra_env, args in (({"CKPT": "runs/r1"}, ["planner=random"]), ({}, ["ckpt_base_path=runs/r1", "planner=random"])):
        sh = subprocess.run(["bash", str(ROOT / "plan.sh"), *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, env={**env, **extra_env})
        assert sh.returncode == 0, sh.stderr
        argv = json.loads(rec.read_text())
        assert f"ckpt_base_path={run}" in argv and argv[-1] == "planner=random"
        assert sum(a.startswith("ckpt_base_path=") for a in argv) == 1


@pytest.mark.parametrize("override, says", [
    ("device=gpu", "device 'gpu' is not a device name"),
    ("device=cuda:99", "device 'cuda:99'"),
    ("model_epoch=99", "no checkpoint 99 in"),
    ("model_epoch=foo", "no checkpoint 'foo' in"),
    ("wandb.mode=ofline", "wandb.mode='ofline' is not one of"),
    ("eval.success_metric=foo", "eval.success_metric='foo' is not one of task, goal"),
    ("objective.mode=foo", "objective: objective mode must be 'last' or 'all', got 'foo'"),
    ("objective.state_tolerance=0", "objective: state_tolerance=0 must be > 0 metres"),
    ("dataset_path=/nonexistent", "dataset /nonexistent: "),
    ("n_evals=abc", "n_evals='abc' must be a whole number >= 1"),
    ("goal_H=0", "goal_H=0 must be a whole number >= 1"),
])
def test_bad_device_checkpoint_or_wandb_mode_is_one_line_and_leaves_no_run_dir(tiny_trained_run, tmp_path,
                                                                             override, says):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "plan.py", f"ckpt_base_path={tiny_trained_run}", "planner=replay",
                           override, f"hydra.run.dir={out}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"plan.py: error: {says}")
    assert not out.exists()  # Hydra's .hydra/ and plan.log are removed with the refused run's directory


@pytest.mark.parametrize("damaged", ["run_info.json", "normalizer.json", "checkpoints/latest/model.safetensors"])
def test_a_damaged_run_file_is_one_line_and_leaves_no_run_dir(tiny_trained_run, tmp_path, damaged):
    run, out = tmp_path / "run", tmp_path / "out"
    shutil.copytree(tiny_trained_run, run, symlinks=True)
    target = run / damaged
    data = target.read_bytes()
    target.unlink()  # the copy only: checkpoints/latest is a link to the step directory
    target.write_bytes(data[: len(data) // 2])
    proc = subprocess.run([sys.executable, "plan.py", f"ckpt_base_path={run}", "planner=replay",
                           f"hydra.run.dir={out}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("plan.py: error: ") and ("cannot load the run" in last or damaged in last), last
    assert not out.exists()


def test_bad_gpu_selection_settings_are_a_one_line_error(tiny_trained_run, tmp_path):
    proc = subprocess.run([sys.executable, "plan.py", f"ckpt_base_path={tiny_trained_run}", "gpu.min_free_memory_gb=-1",
                           f"hydra.run.dir={tmp_path / 'out'}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("plan.py: error: min_free_memory_gb must be")


def test_budget_that_would_run_past_the_goal_is_refused(tiny_trained_run, tmp_path):
    import plan

    with pytest.raises(plan.PlanError, match="not a multiple of mpc.n_taken_actions"):
        plan_inprocess(tiny_trained_run, tmp_path / "out", ["mpc.n_taken_actions=2", "planner=random"])


def test_a_re_plan_schedule_plans_and_is_named(tiny_trained_run, tmp_path):
    """mpc.n_taken_actions=[3,1,1]: 3 re-plans, 5 planning steps in all, and the summary says the schedule."""
    summary = plan_inprocess(tiny_trained_run, tmp_path / "out", ["planner=random", "n_evals=1",
                                                                  "mpc.n_taken_actions=[3,1,1]", "outputs.videos=false",
                                                                  "outputs.plots=false", "wandb.mode=disabled"])
    assert summary["planner_settings"]["n_taken_actions"] == [3, 1, 1]
    assert summary["planner_settings"]["max_iter"] == 3
    (rec,) = json.loads((tmp_path / "out" / "logs.json").read_text())["episodes"]
    assert rec["n_replans"] == 3 and rec["n_env_steps"] == 25


def test_a_schedule_that_does_not_end_at_the_goal_is_refused(tiny_trained_run, tmp_path):
    import plan

    with pytest.raises(plan.PlanError, match=r"adds up to 4 planning steps, not goal_H=5") as exc:
        plan_inprocess(tiny_trained_run, tmp_path / "out", ["mpc.n_taken_actions=[3,1]", "planner=random"])
    assert "\n" not in str(exc.value)


def test_a_later_objective_plans_and_is_named(tiny_trained_run, tmp_path):
    """mpc.later_objective: the re-plans after the first score with the end effector's position cost; the summary
    names both objectives. Without re-plans after the first, or with a planner that has no objective, it is refused."""
    import plan

    later = ["mpc.later_objective.state_weight=0.1", "mpc.later_objective.state_tolerance=0.01",
             "mpc.later_objective.state_position=eef"]
    summary = plan_inprocess(tiny_trained_run, tmp_path / "out", [*SMALL_CEM, "n_evals=1", "mpc.n_taken_actions=[3,1,1]",
                                                                  *later, "outputs.videos=false", "outputs.plots=false",
                                                                  "wandb.mode=disabled"])
    assert summary["planner_settings"]["later_objective"] == {"state_weight": 0.1, "state_tolerance": 0.01,
                                                               "state_position": "eef"}
    assert summary["planner_settings"]["objective"]["state_weight"] == 0.0
    assert summary["actions_chosen_by"] == "world model"
    with pytest.raises(plan.PlanError, match="needs re-plans after the first"):
        plan_inprocess(tiny_trained_run, tmp_path / "o2", [*SMALL_CEM, "mpc.n_taken_actions=5", *later])
    with pytest.raises(plan.PlanError, match="needs a planner that scores with an objective"):
        plan_inprocess(tiny_trained_run, tmp_path / "o3", ["planner=random", *later])
    with pytest.raises(plan.PlanError, match="not one of object, eef, both"):
        plan_inprocess(tiny_trained_run, tmp_path / "o4", [*SMALL_CEM, *later[:2], "mpc.later_objective.state_position=arm"])


def test_unknown_planner_setting_is_refused_in_one_line(tiny_trained_run, tmp_path):
    import plan

    with pytest.raises(plan.PlanError, match="unknown setting.*num_sampels") as exc:
        plan_inprocess(tiny_trained_run, tmp_path / "out", ["planner=random", "+planner.num_sampels=3"])
    assert "\n" not in str(exc.value)


def test_horizon_study_multirun_and_table(tiny_trained_run, tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(["plan.py", "-m", "--config-name=plan", f"ckpt_base_path={tiny_trained_run}",
             "planner=replay", "n_evals=1", "goal_H=2,20", "progress=false", "outputs.videos=false",
             "outputs.plots=false", f"hydra.sweep.dir={sweep}"])
    assert (sweep / "replay_gH2_shard0of1" / "summary.json").is_file()
    assert not (sweep / "replay_gH20_shard0of1" / "logs.json").exists()  # 100 env steps: no tiny episode is that long
    proc = run_cli(["-m", "planning.reporting.merge", "--by", "goal_H", str(sweep)])
    assert "| 2 | replay | " in proc.stdout  # (its start already passes the task's check: the rate says "-")
    rows = json.loads((sweep / "goal_H_table.json").read_text())
    assert [r["goal_H"] for r in rows] == [2] and rows[0]["n_evals"] == 1
    assert (sweep / "success_vs_goal_H.png").is_file()


def test_decoder_run_videos_show_imagined_frames(tiny_lift_dataset, tmp_path):
    from tests.conftest import TINY_TRAIN_OVERRIDES

    run_dir = tmp_path / "decoder_run"
    run_cli(["train_robomimic_compress.py", "env=demo", f"env.data_path={tiny_lift_dataset}", "debug=true",
             "encoder.pretrained=false", "wandb.mode=disabled", "model.decoder=true", f"hydra.run.dir={run_dir}",
             *TINY_TRAIN_OVERRIDES])
    out = tmp_path / "plan"
    run_cli(["plan.py", "--config-name=plan_robomimic_align_recon", f"ckpt_base_path={run_dir}", "n_evals=1",
             "goal_H=2", "planner=replay", "progress=false", f"hydra.run.dir={out}"])
    rec = json.loads((out / "logs.json").read_text())["episodes"][0]
    frames = _read_mp4(out / rec["video"])
    assert frames.shape[2] == 3 * frames.shape[1]  # executed | goal | decoded imagined frame
    imagined = frames[:, :, 2 * frames.shape[1]:]
    assert imagined[0].max() < 20 and imagined[-1].std() > 1  # black before the first plan, then a picture


def test_output_write_failure_saves_the_results_and_is_one_line(tiny_trained_run, tmp_path):
    """A video that cannot be written (here: ``videos`` is a file) after planning: exit 1, one error
    line, and logs.json / summary.json hold every evaluation."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "videos").write_text("not a directory")
    proc = subprocess.run([sys.executable, "plan.py", "--config-name=plan",
                           f"ckpt_base_path={tiny_trained_run}", "n_evals=2", "goal_H=5", "planner=replay",
                           "progress=false", f"hydra.run.dir={out}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1 and errors[0].startswith("plan.py: error: could not write ")
    assert "videos/eval_000_ep" in errors[0] and "summary.json" in errors[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_evals"] == 2 and summary["success_rate"] >= 0.5  # replay: the results are real
    logs = json.loads((out / "logs.json").read_text())
    assert len(logs["episodes"]) == 2 and len(logs["output_errors"]) == 1
    assert all("video" not in rec for rec in logs["episodes"])


def test_batch_size_that_cannot_fit_is_refused_before_planning(tiny_trained_run, tmp_path):
    proc = subprocess.run([sys.executable, "plan.py", "--config-name=plan",
                           f"ckpt_base_path={tiny_trained_run}", "n_evals=400", "batch_size=400", "goal_H=5",
                           "planner=replay", f"hydra.run.dir={tmp_path / 'out'}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("plan.py: error: batch_size=400 needs about ") and " fits" in line
    assert not (tmp_path / "out" / "logs.json").exists() and not (tmp_path / "out" / "videos").exists()


def test_batches_plan_the_same_evaluations_as_one_batch(tiny_trained_run, cem_single, tmp_path):
    one_at_a_time = plan_inprocess(tiny_trained_run, tmp_path / "b1", [*SMALL_CEM, "batch_size=1"])
    single = json.loads((cem_single / "summary.json").read_text())  # batch_size=auto: both in one batch
    assert one_at_a_time["successes"] == single["successes"]
    assert one_at_a_time["mean_final_object_dist"] == pytest.approx(single["mean_final_object_dist"], rel=1e-4)


def test_compile_setting_reaches_the_model_and_a_bad_one_is_refused():
    from omegaconf import OmegaConf

    import plan_setup

    calls = []

    class Model:
        def compile_for_rollouts(self, mode):
            calls.append(mode)

    plan_setup.compile_rollouts(OmegaConf.create({"compile": "auto"}), Model(), "cpu")
    assert calls == []  # auto: eager on a CPU (what every CPU test and run_demo.sh use)
    plan_setup.compile_rollouts(OmegaConf.create({"compile": "auto"}), Model(), "cuda:1")
    plan_setup.compile_rollouts(OmegaConf.create({"compile": "true"}), Model(), "cpu")
    plan_setup.compile_rollouts(OmegaConf.create({"compile": "reduce-overhead"}), Model(), "cuda:0")
    # auto on a GPU: fused kernels only, CEM records its iterations as one CUDA graph itself
    assert calls == ["default", "default", "reduce-overhead"]
    with pytest.raises(plan_setup.PlanError, match="compile setting must be"):
        plan_setup.compile_rollouts(OmegaConf.create({"compile": "fastest"}), Model(), "cpu")


def test_after_a_cuda_out_of_memory_error_the_batch_size_that_fits_comes_from_what_the_gpu_held(monkeypatch):
    """8 evaluations needed 1 GiB (model) + 9.4 GiB allocated at the peak + the 1 GiB request that failed; the
    process can have 10 GiB there (0.5 free + 9.5 held by torch): 80 % of it fits 5 such evaluations."""
    import torch

    import plan
    from planning.execution.report import BatchOutOfMemory

    gib = 2 ** 30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (gib // 2, 80 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: int(9.5 * gib))
    exc = BatchOutOfMemory("CUDA out of memory", size=8, finished=16, base=gib, peak=int(9.4 * gib), wanted=gib)
    fits, per_env = plan.batch_size_after_oom(exc, "cuda:0", estimate=None)
    assert (fits, round(per_env / gib, 3)) == (5, 1.175)
    line = plan.out_of_memory_message(exc, "cuda:0", None, 16, 40, Path("/out"))
    assert line == ("CUDA out of memory planning 8 evaluations together on cuda:0 (about 1.2 GB each): batch_size=5 "
                    "should fit; rerun the same command with batch_size=5 to plan the other 24 (the 16 finished "
                    "evaluations are kept in /out)")
    tight = BatchOutOfMemory("CUDA out of memory", size=2, finished=0, base=9 * gib, peak=10 * gib, wanted=None)
    assert plan.batch_size_after_oom(tight, "cuda:0", None)[0] == 0
    assert "not even batch_size=1 fits" in plan.out_of_memory_message(tight, "cuda:0", None, 0, 4, Path("/out"))


def test_an_ensemble_plans_as_one_model_and_says_so(tiny_trained_run, tmp_path):
    member = tmp_path / "member"
    shutil.copytree(tiny_trained_run, member)
    out = tmp_path / "out"
    summary = plan_inprocess(tiny_trained_run, out, [*SMALL_CEM, f"ensemble=[{member}]",
                                                     "objective.disagreement_weight=1.0", "outputs.videos=false",
                                                     "outputs.plots=false", "wandb.mode=disabled"])
    assert summary["n_evals"] == 2
    logs = json.loads((out / "logs.json").read_text())
    (described,) = logs["info"]["ensemble"]
    assert Path(described["dir"]) == member.resolve() and described["step"] == logs["info"]["model_step"]
    assert logs["config"]["objective"]["disagreement_weight"] == 1.0


def test_the_object_position_state_cost_plans_and_is_named(tiny_trained_run, tmp_path):
    """objective.state_tolerance reaches the objective with the run's state normaliser, and the summary names it."""
    out = tmp_path / "out"
    summary = plan_inprocess(tiny_trained_run, out, [*SMALL_CEM, "objective.state_weight=1.0",
                                                     "objective.state_tolerance=0.01", "outputs.videos=false",
                                                     "outputs.plots=false", "wandb.mode=disabled"])
    assert summary["n_evals"] == 2
    assert summary["planner_settings"]["objective"]["state_tolerance"] == 0.01
    assert summary["actions_chosen_by"] == "world model"


def test_an_ensemble_member_of_another_split_is_refused_in_one_line(tiny_trained_run, tmp_path):
    import plan

    member = tmp_path / "member"
    shutil.copytree(tiny_trained_run, member)
    info = json.loads((member / "run_info.json").read_text())
    info["split"]["train"], info["split"]["val"] = info["split"]["val"], info["split"]["train"]
    (member / "run_info.json").write_text(json.dumps(info))
    with pytest.raises(plan.PlanError, match="another dataset or split"):
        plan_inprocess(tiny_trained_run, tmp_path / "out", [*SMALL_CEM, f"ensemble=[{member}]"])
    assert not (tmp_path / "out").exists()


def test_a_two_camera_run_converts_caches_trains_and_plans(tiny_lift_hdf5, tiny_lift_dataset, tmp_path):
    """agentview + the wrist camera side by side: converter -> feature cache -> training -> planning, and a
    single-view dataset refused for it in one line."""
    from convert_robomimic_to_dino_wm import convert
    from tests.conftest import TINY_TRAIN_OVERRIDES
    from training.run_dir.run_loading import load_world_model

    data = tmp_path / "lift_v2"
    convert(tiny_lift_hdf5, data, camera=["agentview", "robot0_eye_in_hand"], progress=False, explore_branches=0)
    run_dir = tmp_path / "run_v2"
    run_cli(["train_robomimic_compress.py", "env=demo", f"env.data_path={data}", "debug=true",
             "encoder.pretrained=false", "wandb.mode=disabled", "model.decoder=true", f"hydra.run.dir={run_dir}",
             *TINY_TRAIN_OVERRIDES])
    caches = sorted(p.name for p in (data / "feature_cache").iterdir())
    assert len(caches) == 1 and caches[0].endswith("-v2")  # both views' tokens, cached once
    model = load_world_model(run_dir).model
    assert model.encoder.views == 2 and model.predictor.num_patches == 2 * 16  # 56 px: 4 x 4 patches per view
    out = tmp_path / "plan"
    run_cli(["plan.py", "--config-name=plan_robomimic_align_recon", f"ckpt_base_path={run_dir}", "n_evals=1",
             "goal_H=2", f"hydra.run.dir={out}", *SMALL_CEM])
    rec = json.loads((out / "logs.json").read_text())["episodes"][0]
    frames = _read_mp4(out / rec["video"])
    assert frames.shape[2] == 3 * 2 * frames.shape[1]  # executed | goal | imagined, each two views wide
    refused = tmp_path / "refused"
    proc = subprocess.run([sys.executable, "plan.py", f"ckpt_base_path={run_dir}", f"dataset_path={tiny_lift_dataset}",
                           "planner=replay", f"hydra.run.dir={refused}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "holds 1 camera view(s)" in proc.stderr.strip().splitlines()[-1] and not refused.exists()


def test_executed_actions_are_written_and_become_plan_branches_of_the_training_data(tiny_trained_run,
                                                                                    tiny_lift_dataset, tmp_path):
    import numpy as np

    from conversion.exploration import add_plan_branches
    from datasets import executed_actions
    from datasets.robomimic_dset import RobomimicEpisodes

    out = tmp_path / "replay"
    plan_inprocess(tiny_trained_run, out, ["planner=replay", "progress=false", "outputs.actions=true",
                                           "episodes.split=train", "outputs.videos=false"])
    logs = json.loads((out / "logs.json").read_text())
    data = RobomimicEpisodes(tiny_lift_dataset)
    files = executed_actions.find(out)
    assert len(files) == len(logs["episodes"]) == 2
    for rec in logs["episodes"]:
        got = executed_actions.load(out / rec["actions_file"])
        assert (got.episode, got.start, got.success) == (rec["episode"], rec["start"], rec["success"])
        assert got.n_episodes == len(data) and got.dataset == tiny_lift_dataset.name
        # the replay baseline executes the demonstration's own actions: exactly what the file holds
        assert len(got.actions) == rec["n_env_steps"] == 25
        assert np.allclose(got.actions, data.actions[rec["episode"], rec["start"]:rec["start"] + 25].numpy(), atol=1e-6)
    meta = add_plan_branches(tiny_lift_dataset, [out], tmp_path / "with_plans", progress=False)
    assert meta.n_episodes == len(data) + 2
    assert sorted(meta.explore_sources[len(data):]) == sorted(r["episode"] for r in logs["episodes"])
