"""The demo job's closing table reads planner summaries only and says where the outputs are."""

import json

import pytest

from planning.reporting.demo_summary import main


def _plan_dir(root, name, planner, rate, step=10, taken=1, later=None):
    d = root / name
    d.mkdir()
    (d / "summary.json").write_text(json.dumps({
        "planner_settings": {"n_taken_actions": taken, **({"later_objective": later} if later else {})},
        "planner": planner, "success_rate": rate, "n_evals": 4, "mean_final_latent_dist": 0.5,
        "actions_chosen_by": f"{planner}: how", "success_ci95": [rate / 2, 1.0], "n_distinct_episodes": 3,
        "mean_final_object_dist": 0.01, "goal_reached_rate": rate, "mean_planning_seconds": 12.0,
        "encoder_pretrained": False, "model_step": step, "checkpoint": "/runs/train/checkpoints/step_00000010"}))
    return d


def test_table_lists_every_planner_and_writes_files(tmp_path, capsys):
    plans = tmp_path / "plans"
    plans.mkdir()
    later = {"state_weight": 0.1, "state_position": "eef", "state_readout": "rollout"}
    dirs = [_plan_dir(plans, "cem", "cem", 0.75, taken=[2, 1, 1, 1], later=later),
            _plan_dir(plans, "random", "random", 0.0)]

    assert main(["--train-run", str(tmp_path / "train"), "--elapsed", "600", *map(str, dirs)]) == 0
    out = capsys.readouterr().out
    assert ("| cem | cem: how | [2,1,1,1], later eef cost (rollout readout) | 0.75 | 0.38-1.00 | 0.75 | 4 | 3 | 0.500 | "
            "0.010 | 12.0 |") in out, out
    assert "| random | random: how | every step | 0.00 | 0.00-1.00 | 0.00 | 4 | 3 |" in out
    assert "RANDOM frozen" in out and "step_00000010 (step 10)" in out and "10.0 min" in out
    saved = json.loads((plans / "demo_summary.json").read_text())
    assert [r["planner"] for r in saved["planners"]] == ["cem", "random"] and saved["train_step"] == 10
    assert (plans / "demo_summary.md").read_text().startswith("| planner | actions chosen by | re-plans | success rate | 95% interval |")
    assert sorted(p.name for p in plans.iterdir()) == ["cem", "demo_summary.json", "demo_summary.md", "random"]


def test_planners_of_different_steps_show_no_single_step(tmp_path, capsys):
    dirs = [_plan_dir(tmp_path, "a", "cem", 0.5, step=10), _plan_dir(tmp_path, "b", "hold", 0.0, step=20)]
    assert main(["--train-run", str(tmp_path), *map(str, dirs)]) == 0
    assert "(step None)" in capsys.readouterr().out


def test_missing_summary_is_one_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="cannot read"):
        main(["--train-run", str(tmp_path), str(tmp_path / "nope")])
