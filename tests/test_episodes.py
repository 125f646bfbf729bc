"""Start / goal selection and sharding of the evaluations."""

from __future__ import annotations

import pytest

from planning.execution.episodes import select_episodes, shard

LENGTHS = [31, 40, 12, 55, 33]


def test_end_mode_goal_is_the_terminal_state_and_episodes_differ():
    specs = select_episodes(LENGTHS, [0, 1, 3, 4], n_evals=4, goal_h=5, frameskip=5, seed=0)
    assert sorted(s.episode for s in specs) == [0, 1, 3, 4]  # different episodes first
    for s in specs:
        assert s.goal == LENGTHS[s.episode]  # the state after the last recorded action
        assert s.goal - s.start == 25
    assert [s.eval_index for s in specs] == [0, 1, 2, 3]
    assert len({s.seed for s in specs}) == 4


def test_short_episodes_are_skipped_and_reused_when_needed():
    specs = select_episodes(LENGTHS, [1, 2], n_evals=3, goal_h=5, frameskip=5, seed=1)
    assert {s.episode for s in specs} == {1}  # episode 2 (12 steps) cannot hold 25 steps
    assert len({s.seed for s in specs}) == 3  # reused episode, different planner noise
    with pytest.raises(ValueError, match="long enough"):
        select_episodes(LENGTHS, [2], n_evals=1, goal_h=5, frameskip=5, seed=0)


def test_min_start_and_random_mode_are_seeded():
    a = select_episodes(LENGTHS, [0, 1, 3, 4], n_evals=6, goal_h=2, frameskip=5, seed=3, start_mode="random",
                        min_start=10)
    b = select_episodes(LENGTHS, [0, 1, 3, 4], n_evals=6, goal_h=2, frameskip=5, seed=3, start_mode="random",
                        min_start=10)
    c = select_episodes(LENGTHS, [0, 1, 3, 4], n_evals=6, goal_h=2, frameskip=5, seed=4, start_mode="random",
                        min_start=10)
    assert a == b and a != c
    for s in a:
        assert 10 <= s.start and s.goal == s.start + 10 <= LENGTHS[s.episode]


def test_shards_partition_the_evaluations():
    specs = select_episodes(LENGTHS, [0, 1, 3, 4], n_evals=7, goal_h=1, frameskip=5, seed=0)
    parts = [shard(specs, i, 3) for i in range(3)]
    assert sorted(s.eval_index for p in parts for s in p) == list(range(7))
    assert all(s in specs for p in parts for s in p)
    with pytest.raises(ValueError):
        shard(specs, 3, 3)
