"""The executed-actions file: what plan.py writes per evaluation and the plan branches replay."""

from __future__ import annotations

import numpy as np
import pytest

from datasets import executed_actions
from datasets.executed_actions import ExecutedActions


def test_a_file_reads_back_exactly_what_was_written(tmp_path):
    acts = np.random.default_rng(0).uniform(-1, 1, (12, 7)).astype(np.float32)
    path = executed_actions.save(tmp_path / "actions" / "eval_003_ep5.npz",
                                 ExecutedActions(acts, episode=5, start=10, dataset="lift200", n_episodes=9,
                                                 success=True))
    back = executed_actions.load(path)
    assert np.array_equal(back.actions, acts) and back.actions.dtype == np.float32
    assert (back.episode, back.start, back.dataset, back.n_episodes, back.success) == (5, 10, "lift200", 9, True)
    assert executed_actions.find(tmp_path) == [path]
    assert [p.name for p in (tmp_path / "actions").iterdir()] == ["eval_003_ep5.npz"]  # no temporary left


def test_bad_records_and_files_are_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match="non-empty"):
        ExecutedActions(np.zeros((0, 7), np.float32), 0, 0, "d", 1, False)
    with pytest.raises(ValueError, match="episode 3 of 3"):
        ExecutedActions(np.zeros((2, 7), np.float32), 3, 0, "d", 3, False)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable executed-actions file") as e:
        executed_actions.load(tmp_path / "junk.npz")
    assert "\n" not in str(e.value)
    np.savez(tmp_path / "other.npz", actions=np.zeros((2, 7)))
    with pytest.raises(ValueError, match="missing episode, start"):
        executed_actions.load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="outputs.actions=true"):
        executed_actions.find(tmp_path / "empty_plan_dir")
