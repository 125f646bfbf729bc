"""The demo job's closing table reads planner summaries and says where the outputs are."""

import json

from pipeline.demo_summary import main


def _plan_dir(root, name, planner, rate):
    d = root / name
    d.mkdir()
    (d / "summary.json").write_text(json.dumps({
        "planner": planner, "success_rate": rate, "n_evals": 4, "mean_final_latent_dist": 0.5,
        "mean_final_object_dist": 0.01, "goal_reached_rate": rate, "mean_planning_seconds": 12.0, "encoder_pretrained": False}))
    return d


def test_table_lists_every_planner_and_writes_files(tmp_path, capsys):
    run = tmp_path / "train"
    (run / "checkpoints" / "step_00000010").mkdir(parents=True)
    (run / "checkpoints" / "step_00000010" / "train_state.json").write_text(
        json.dumps({"step": 10, "epoch": 2}))
    (run / "checkpoints" / "latest").symlink_to("step_00000010")
    plans = tmp_path / "plans"
    plans.mkdir()
    dirs = [_plan_dir(plans, "cem", "cem", 0.75), _plan_dir(plans, "random", "random", 0.0)]

    assert main(["--train-run", str(run), "--elapsed", "600", *map(str, dirs)]) == 0
    out = capsys.readouterr().out
    assert "| cem | 0.75 | 0.75 | 4 |" in out and "| random | 0.00 | 0.00 | 4 |" in out
    assert "RANDOM frozen" in out and "step 10" in out and "10.0 min" in out
    saved = json.loads((plans / "demo_summary.json").read_text())
    assert [r["planner"] for r in saved["planners"]] == ["cem", "random"]


def test_missing_summary_is_one_clear_error(tmp_path):
    import pytest

    with pytest.raises(SystemExit, match="cannot read"):
        main(["--train-run", str(tmp_path), str(tmp_path / "nope")])
