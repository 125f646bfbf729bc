"""benchmarks/plan_quality.py on the tiny trained run, and the goal definition it relies on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli


def test_benchmark_table_over_planners_and_horizons(tiny_trained_run, tmp_path):
    out = tmp_path / "quality"
    # --out relative to the caller's directory (plan.py itself runs in the repository root)
    proc = run_cli([str(ROOT / "benchmarks/plan_quality.py"), "--run", str(tiny_trained_run), "--out", "quality",
                    "--goal-h", "1,2,99", "--planners", "hold,replay", "--n", "2"], cwd=tmp_path)
    rows = json.loads((out / "goal_H_table.json").read_text())
    cells = {(r["planner"], r["goal_H"]) for r in rows}
    assert cells == {("hold", 1), ("replay", 1), ("hold", 2), ("replay", 2)}  # 99 is longer than any episode
    for r in rows:
        assert r["n_evals"] == 2
        if r["planner"] == "replay":  # the recorded actions from an exact reset reach the goal (over every evaluation:
            # these starts, a few steps before the demo's end, may pass the task's check already; the headline rates
            # leave those out)
            cell = json.loads((out / f"replay_gH{r['goal_H']}" / "summary.json").read_text())
            assert cell["task_success_rate_all"] == 1.0 and cell["goal_reached_rate_all"] == 1.0
    bench = json.loads((out / "benchmark.json").read_text())
    assert bench["cells"]["hold_gH99"].startswith("skipped") and bench["wall_seconds"] > 0
    assert (out / "success_vs_goal_H.png").stat().st_size > 0 and "wall time" in proc.stdout
    # a rerun reuses every finished cell
    again = run_cli(["benchmarks/plan_quality.py", "--run", str(tiny_trained_run), "--out", str(out),
                     "--goal-h", "1", "--planners", "hold", "--n", "2"])
    assert "hold_gH1 cached" in again.stdout


def test_an_interrupted_cell_resumes_inside_the_cell(tiny_trained_run, tmp_path):
    """The benchmark killed (-9, with its plan.py) once its cell has recorded a batch, then the same command: the
    cell's plan.py job keeps that batch and plans only the rest."""
    out = tmp_path / "quality"
    cell = out / "replay_gH1"
    cmd = [str(ROOT / "benchmarks/plan_quality.py"), "--run", str(tiny_trained_run), "--out", str(out), "--goal-h", "1",
           "--planners", "replay", "--n", "2", "--plan-arg", "batch_size=1"]
    proc = subprocess.Popen([sys.executable, *cmd], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # its own process group: the benchmark and its plan.py
    batches, end = cell / "batches", time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < end and not list(batches.glob("evals_*.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # a preempted job
    proc.wait()
    kept = {p.name: p.read_bytes() for p in batches.glob("evals_*.json")}
    assert len(kept) == 1 and not (cell / "summary.json").exists(), "the kill came too late"
    again = run_cli(cmd)
    assert "replay_gH1 resumed" in again.stdout
    assert {name: (batches / name).read_bytes() for name in kept} == kept  # the first launch's batch, as it was
    assert len(list(batches.glob("evals_*.json"))) == 2
    launches = json.loads((cell / "job.json").read_text())["launches"]
    assert [x["finished_before"] for x in launches] == [0, 1]  # the second launch planned one evaluation
    rows = json.loads((out / "goal_H_table.json").read_text())
    assert [(r["planner"], r["n_evals"]) for r in rows] == [("replay", 2)]


def test_goals_are_task_success_states_of_generated_demos(tiny_lift_dataset):
    """The last frame of every generated demo passes the task's own check (demos hold the success);
    an episode cut to its first frame does not, and is left out of the goal pool."""
    from datasets.robomimic_dset import RobomimicEpisodes
    from envs.robosuite_env import RobosuiteEnv
    from planning.execution.evaluator import successful_episodes

    data = RobomimicEpisodes(tiny_lift_dataset)
    env = RobosuiteEnv.from_meta(data.meta, render=False)
    try:
        episodes = list(range(len(data)))
        assert successful_episodes(env, data, episodes) == episodes
        data.seq_lengths = data.seq_lengths.clone()
        data.seq_lengths[0] = 1
        assert successful_episodes(env, data, episodes) == episodes[1:]
    finally:
        env.close()
    assert np.all(data.seq_lengths[1:].numpy() > 0)


@pytest.mark.parametrize("args, says", [
    (["--goal-h", "abc"], "--goal-h 'abc': comma-separated whole numbers >= 1"),
    (["--planners", "cem,foo"], "--planners: no planner foo (choose from cem, cem_cpu,"),
    (["--out", "{file}"], "is a file, not a directory"),
])
def test_bad_arguments_are_one_usage_line_before_any_plan(tiny_trained_run, tmp_path, capsys, args, says):
    from benchmarks.plan_quality import parse_args

    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(SystemExit) as exc:
        parse_args(["--run", str(tiny_trained_run), *[a.format(file=a_file) for a in args]])
    assert exc.value.code == 2 and says in capsys.readouterr().err.strip().splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
