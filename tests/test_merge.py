"""Merging shard outputs and the table by goal_H (on logs written by planning.reporting.outputs)."""

from __future__ import annotations

import json

import pytest

from planning.reporting.merge import main, merge_logs
from planning.reporting.outputs import summarize, write_json


def _record(i: int, success: bool, dist: float) -> dict:
    return {"eval_index": i, "episode": i % 3, "start": 0, "goal": 5, "seed": i, "success": success,
            "task_success": success, "success_any": success, "goal_reached": dist < 0.02,
            "start_is_success": False, "goal_is_success": True, "final_latent_dist": dist * 10,
            "final_object_dist": dist, "final_eef_dist": dist, "start_object_dist": 0.1,
            "planning_seconds": 1.0, "n_replans": 5}


def _info(goal_h: int = 5, n: int = 4, index: int = 0, count: int = 1, planner: str = "cem") -> dict:
    return {"planner": planner, "goal_H": goal_h, "frameskip": 5, "ckpt_base_path": "/r", "model_epoch": "latest",
            "success_metric": "task", "n_evals_requested": n, "shard": {"index": index, "count": count}}


def _write(dirpath, records, info, seed=0):
    write_json(dirpath / "logs.json", {"config": {"seed": seed, "shard": info["shard"]}, "info": info,
                                       "episodes": records})
    write_json(dirpath / "summary.json", summarize(records, info))


def test_merged_shards_equal_the_single_job(tmp_path):
    recs = [_record(0, True, 0.01), _record(1, False, 0.08), _record(2, True, 0.015), _record(3, False, 0.05)]
    single = summarize(recs, _info())
    for k in range(2):
        (tmp_path / f"s{k}").mkdir()
        _write(tmp_path / f"s{k}", [r for r in recs if r["eval_index"] % 2 == k], _info(index=k, count=2))
    assert main([str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m")]) == 0
    merged = json.loads((tmp_path / "m" / "summary.json").read_text())
    for key in ("success_rate", "n_evals", "mean_final_object_dist", "mean_final_latent_dist", "successes",
                "eval_indices", "goal_reached_rate", "planner"):
        assert merged[key] == single[key], key
    assert merged["success_rate"] == 0.5 and merged["complete"] is True
    logs = json.loads((tmp_path / "m" / "logs.json").read_text())
    assert [r["eval_index"] for r in logs["episodes"]] == [0, 1, 2, 3]


def test_duplicates_mismatches_and_gaps(tmp_path):
    a = {"config": {"seed": 0}, "info": _info(), "episodes": [_record(0, True, 0.0)]}
    with pytest.raises(Exception, match="both"):
        merge_logs([a, a], ["a", "b"])
    b = {"config": {"seed": 0}, "info": _info(goal_h=7), "episodes": [_record(1, True, 0.0)]}
    with pytest.raises(Exception, match="goal_H"):
        merge_logs([a, b], ["a", "b"])
    _, summary = merge_logs([a], ["a"])
    assert summary["complete"] is False and summary["missing_evals"] == [1, 2, 3]
    assert main([str(tmp_path / "nope")]) == 2


def test_table_by_goal_h(tmp_path, capsys):
    for h, succ in [(3, [True, True]), (5, [True, False]), (10, [False, False])]:
        for k in range(2):  # two shards per horizon, as in a multirun dir
            d = tmp_path / "multirun" / f"gH{h}_shard{k}of2"
            d.mkdir(parents=True)
            _write(d, [_record(k, succ[k], 0.01 * h)], _info(goal_h=h, n=2, index=k, count=2))
    d = tmp_path / "multirun" / "random_gH5"  # another planner in the same sweep: its own rows
    d.mkdir()
    _write(d, [_record(0, False, 0.2), _record(1, False, 0.2)], _info(goal_h=5, n=2, planner="random"))
    assert main(["--by", "goal_H", str(tmp_path / "multirun")]) == 0
    out = capsys.readouterr().out
    assert "| goal_H |" in out
    rows = json.loads((tmp_path / "multirun" / "goal_H_table.json").read_text())
    assert [(r["planner"], r["goal_H"], r["success_rate"], r["n_evals"]) for r in rows] == [
        ("cem", 3, 1.0, 2), ("cem", 5, 0.5, 2), ("cem", 10, 0.0, 2), ("random", 5, 0.0, 2)]
    assert rows[1]["mean_final_object_dist"] == pytest.approx(0.05)
    assert (tmp_path / "multirun" / "goal_H_table.csv").read_text().startswith("goal_H,planner,success_rate")
    png = tmp_path / "multirun" / "success_vs_goal_H.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
