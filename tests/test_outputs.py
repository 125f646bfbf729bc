"""Summary arithmetic, atomic json and the side-by-side video frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from planning.execution.mpc import EpisodeTrace
from planning.reporting.outputs import episode_frames, summarize, write_json


def _rec(i, success, dist, secs=2.0):
    return {"eval_index": i, "success": success, "task_success": success, "success_any": True,
            "goal_reached": dist < 0.02, "start_is_success": False, "goal_is_success": True,
            "final_latent_dist": 0.1 * i, "final_object_dist": dist, "final_eef_dist": dist,
            "start_object_dist": 0.03, "planning_seconds": secs, "n_replans": 4}


def test_summary_rates_and_means():
    s = summarize([_rec(1, False, 0.05), _rec(0, True, 0.01)], {"planner": "cem"})
    assert s["planner"] == "cem" and s["n_evals"] == 2
    assert s["success_rate"] == 0.5 and s["successes"] == [True, False] and s["eval_indices"] == [0, 1]
    assert s["goal_reached_rate"] == 0.5 and s["success_any_rate"] == 1.0 and s["goal_is_success_rate"] == 1.0
    assert s["mean_final_object_dist"] == pytest.approx(0.03)
    assert s["planning_seconds_total"] == 4.0 and s["planning_seconds_per_replan"] == 0.5
    assert summarize([], {})["success_rate"] is None  # nothing rated: no rate, not a zero


def test_write_json_is_atomic_and_handles_numpy(tmp_path):
    write_json(tmp_path / "a.json", {"x": np.float32(1.5), "y": np.arange(3), "b": np.bool_(True)})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1.5, "y": [0, 1, 2], "b": True}
    with pytest.raises(TypeError):
        write_json(tmp_path / "a.json", {"x": object()})
    assert json.loads((tmp_path / "a.json").read_text())["x"] == 1.5  # the old file survives a failed write
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_episode_frames_panels():
    tr = EpisodeTrace()
    for t in range(3):
        tr.frames.append(np.full((8, 8, 3), t, np.uint8))
        tr.imagined.append(None if t == 0 else np.full((4, 4, 3), 200, np.uint8))
    goal = np.full((8, 8, 3), 99, np.uint8)
    two = episode_frames(tr, goal, with_imagined=False)
    assert two.shape == (3, 8, 16, 3) and np.all(two[:, :, 8:] == 99)
    three = episode_frames(tr, goal, with_imagined=True)
    assert three.shape == (3, 8, 24, 3)
    assert np.all(three[0, :, 16:] == 0) and np.all(three[2, :, 16:] == 200)  # decoded frame upsampled


def test_the_ranking_summary_puts_the_failed_plans_predicted_cost_beside_their_true_end():
    """Of the failed evaluations: the model's first-plan cost, the demonstration's, and the true end's latent distance
    (medians); successes do not enter them, and the model-failure share counts failures the model preferred."""
    recs = [_rec(i, i == 0, 0.05) | {"first_plan_cost": 0.02 * (i + 1), "first_reference_cost": 0.05,
                                    "model_prefers_plan": 0.02 * (i + 1) < 0.05} for i in range(4)]
    s = summarize(recs, {})
    assert s["n_failed"] == 3 and s["n_model_failures"] == 1 and s["model_failure_share"] == 0.25
    assert s["failed_first_plan_cost"] == pytest.approx(0.06)  # evaluations 1-3: 0.04, 0.06, 0.08
    assert s["failed_first_reference_cost"] == pytest.approx(0.05)
    assert s["failed_true_end_distance"] == pytest.approx(0.2)  # final_latent_dist 0.1, 0.2, 0.3
    assert "failed_true_end_distance" not in summarize([recs[0]], {})  # nothing failed: no medians of nothing


def test_the_summary_says_where_the_failures_ended_against_their_goal():
    """Per-axis medians of final minus goal position over the failed evaluations only (a lift that ends low shows as a
    negative z); records without the positions (older jobs) give no such field rather than a wrong one."""
    def rec(i, success, dz):
        return _rec(i, success, 0.05) | {"goal_object_pos": [0.0, 0.0, 0.85], "final_object_pos": [0.01, 0.0, 0.85 + dz],
                                         "goal_eef_pos": [0.0, 0.0, 0.84], "final_eef_pos": [0.0, 0.0, 0.84]}
    s = summarize([rec(0, False, -0.02), rec(1, False, -0.01), rec(2, False, -0.03), rec(3, True, 0.05)], {})
    assert s["failed_object_offset_median_m"] == pytest.approx([0.01, 0.0, -0.02])
    assert s["failed_eef_offset_median_m"] == pytest.approx([0.0, 0.0, 0.0])
    assert "failed_object_offset_median_m" not in summarize([_rec(0, False, 0.05)], {})
    assert "failed_object_offset_median_m" not in summarize([rec(0, True, 0.0)], {})
