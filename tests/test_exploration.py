"""Exploration branches: random action chunks from demonstration states, noisy replays and plan branches (a planning
job's executed actions replayed), appended to a converted dataset and kept in their source episode's split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conversion.exploration import (
    ExploreSettings,
    add_exploration,
    add_plan_branches,
    main,
    noisy_replay,
    random_chunks,
    replay_start,
)
from datasets import executed_actions
from datasets.meta import DatasetMeta
from datasets.robomimic_dset import RobomimicEpisodes, split_with_branches


def test_random_chunks_hold_each_draw_for_a_chunk_within_the_bounds():
    rng = np.random.default_rng(0)
    mean, std = np.array([0.0, 0.5, 0, 0, 0, 0, -0.2]), np.array([1.0, 0.1, 0, 0, 0, 0, 1.0])
    low, high = -np.ones(7), np.ones(7)
    acts = random_chunks(rng, mean, std, chunks=400, steps=5, low=low, high=high)
    assert acts.shape == (2000, 7) and np.all(acts >= -1) and np.all(acts <= 1)
    chunks = acts.reshape(400, 5, 7)
    assert np.all(chunks == chunks[:, :1])  # one draw held for the whole chunk
    assert set(np.unique(acts[:, -1])) == {-1.0, 1.0}  # the gripper open or closed
    assert np.all(acts[:, 2:6] == 0)  # dims the data never varied stay at their value
    assert abs(chunks[:, 0, 1].mean() - 0.5) < 0.02 and abs(chunks[:, 0, 1].std() - 0.1) < 0.02
    with pytest.raises(ValueError, match="branches >= 0"):
        ExploreSettings(branches=-1)


def test_noisy_replay_drifts_the_arm_by_one_offset_and_shifts_the_gripper_in_time():
    rng = np.random.default_rng(3)
    demo = np.zeros((40, 7))
    demo[:, 0] = np.linspace(-0.5, 0.5, 40)
    demo[:, -1] = np.where(np.arange(40) >= 20, 1.0, -1.0)  # the demo closes at step 20
    std, low, high = np.array([0.4, 0.2, 0.7, 0, 0, 0, 1.0]), -np.ones(7), np.ones(7)
    closes, offsets = [], []
    for _ in range(300):
        acts = noisy_replay(rng, demo, 4, std, drift=0.1, gripper_shift=5, low=low, high=high)
        assert acts.shape == (36, 7) and np.all(acts >= -1) and np.all(acts <= 1)
        offset = acts[:, :6] - demo[4:, :6]
        assert np.allclose(offset, offset[0])  # one draw, held the whole branch
        assert np.all(offset[:, 3:6] == 0)  # dims the data never varied stay at their value
        offsets.append(offset[0, :3])
        assert set(np.unique(acts[:, -1])) == {-1.0, 1.0}
        closes.append(4 + int(np.argmax(acts[:, -1] > 0)))
    assert set(closes) == set(range(15, 26))  # the close moved by -5..5 env steps, every shift drawn
    assert np.allclose(np.std(offsets, axis=0), 0.1 * std[:3], rtol=0.15)
    same = noisy_replay(rng, demo, 4, std, drift=0.0, gripper_shift=0, low=low, high=high)
    assert np.array_equal(same, demo[4:])  # no noise: the demonstration's own actions
    assert all(0 <= replay_start(rng, 40) < 20 for _ in range(100)) and replay_start(rng, 1) == 0
    with pytest.raises(ValueError, match="replays >= 0"):
        ExploreSettings(replays=-1)


def test_branches_join_their_demonstrations_split():
    sources = [-1] * 10 + [0, 0, 3, 7, 9, 9]
    split = split_with_branches(sources, 0.2, seed=1, test_ratio=0.2)
    plain = split_with_branches([-1] * 10, 0.2, seed=1, test_ratio=0.2)
    where = {e: k for k, v in split.items() for e in v}
    for i, s in enumerate(sources):
        if s >= 0:
            assert where[i] == where[s]
    assert {k: [e for e in v if e < 10] for k, v in split.items()} == plain  # the demos split as without branches
    assert sorted(sum(split.values(), [])) == list(range(16))


@pytest.mark.slow
def test_add_exploration_appends_branches_that_start_at_the_demonstration(tiny_lift_dataset, tmp_path):
    out = tmp_path / "explored"
    before = RobomimicEpisodes(tiny_lift_dataset)
    meta = add_exploration(tiny_lift_dataset, out, ExploreSettings(branches=1, chunks=2, chunk_steps=3, seed=4),
                           progress=False)
    after = RobomimicEpisodes(out)
    n = len(before)
    assert meta.n_episodes == 2 * n and meta.explore_sources == [-1] * n + list(range(n))
    assert meta.explore_starts[:n] == [-1] * n and all(0 <= s < before.seq_len(i) for i, s in enumerate(meta.explore_starts[n:]))
    assert [after.meta.is_exploration(i) for i in range(2 * n)] == [False] * n + [True] * n
    assert DatasetMeta.load(out).extra["exploration"]["chunk_steps"] == 3
    for i in range(n):  # the demonstrations unchanged
        t = before.seq_len(i)
        assert after.seq_len(i) == t and torch.equal(after.actions[i, :t], before.actions[i, :t])
        assert np.array_equal(after.frames(i), before.frames(i))
    for j in range(n):  # each branch: 6 steps of two held draws, starting exactly at a frame of its demo
        b, src = n + j, j
        assert after.seq_len(b) == 6
        acts = after.actions[b, :6].numpy()
        assert np.all(acts[:3] == acts[0]) and np.all(acts[3:] == acts[3])
        start = meta.explore_starts[b]
        assert np.abs(after.sim_states[b, 0, 1:].numpy() - before.sim_states[src, start, 1:].numpy()).max() < 1e-6
        assert np.abs(after.frames(b)[0].astype(float) - before.frames(src)[start].astype(float)).mean() < 3.0
    with pytest.raises(ValueError, match="already holds exploration branches"):
        add_exploration(out, tmp_path / "again", ExploreSettings(branches=1), progress=False)


@pytest.mark.slow
def test_noisy_replays_follow_random_branches_which_they_leave_unchanged(tiny_lift_dataset, tmp_path):
    before = RobomimicEpisodes(tiny_lift_dataset)
    n = len(before)
    plain = add_exploration(tiny_lift_dataset, tmp_path / "plain", ExploreSettings(branches=1, chunks=2, chunk_steps=3,
                                                                                  seed=4), progress=False)
    meta = add_exploration(tiny_lift_dataset, tmp_path / "replays",
                           ExploreSettings(branches=1, chunks=2, chunk_steps=3, seed=4, replays=1), progress=False)
    a, b = RobomimicEpisodes(tmp_path / "plain"), RobomimicEpisodes(tmp_path / "replays")
    assert meta.n_episodes == 3 * n and meta.explore_sources == [-1] * n + list(range(n)) * 2
    assert meta.explore_starts[: 2 * n] == plain.explore_starts  # the random branches as without replays
    assert torch.equal(b.actions[: 2 * n], a.actions[: 2 * n])
    assert [k.split("_")[0] for k in meta.demo_keys[n:]] == ["explore"] * n + ["replay"] * n
    assert DatasetMeta.load(tmp_path / "replays").extra["exploration"]["replays"] == 1
    for j in range(n):  # each replay: its demo's actions from its start on, drifted, in the first half
        r, start = 2 * n + j, meta.explore_starts[2 * n + j]
        t = before.seq_len(j)
        assert 0 <= start < max(1, t // 2) and b.seq_len(r) == t - start
        assert np.abs(b.sim_states[r, 0, 1:].numpy() - before.sim_states[j, start, 1:].numpy()).max() < 1e-6
        drift = (b.actions[r, : t - start, :3] - before.actions[j, start:t, :3]).numpy()
        unclipped = drift[np.abs(b.actions[r, : t - start, :3].numpy()).max(1) < 1 - 1e-6]  # off the env's bounds
        assert len(unclipped) and np.allclose(unclipped, unclipped[0], atol=1e-5)  # one offset, held


@pytest.mark.slow
def test_plan_branches_replay_executed_actions_onto_a_dataset_that_holds_branches(tiny_lift_dataset, tmp_path):
    explored = tmp_path / "explored"
    add_exploration(tiny_lift_dataset, explored, ExploreSettings(branches=1, chunks=2, chunk_steps=3, seed=4),
                    progress=False)
    before = RobomimicEpisodes(explored)
    n, demos = len(before), [i for i in range(len(before)) if not before.meta.is_exploration(i)]
    ep, start = demos[-1], 2
    t = before.seq_len(ep)
    plan_dir = tmp_path / "plan"  # as plan.py outputs.actions=true writes it: the demo's own actions from `start`
    executed_actions.save(plan_dir / "actions" / f"eval_000_ep{ep}.npz", executed_actions.ExecutedActions(
        before.actions[ep, start:t].numpy(), ep, start, explored.name, n, True))
    meta = add_plan_branches(explored, [plan_dir], tmp_path / "planned", progress=False)
    after = RobomimicEpisodes(tmp_path / "planned")
    assert meta.n_episodes == n + 1 and meta.explore_sources == list(before.meta.explore_sources) + [ep]
    assert meta.explore_starts == list(before.meta.explore_starts) + [start]  # the earlier branches' starts kept
    assert meta.demo_keys[-1].startswith("plan_") and meta.extra["plan_branches"] == [{"plan_dir": str(plan_dir)}]
    assert "exploration" in meta.extra and after.meta.is_exploration(n)
    assert meta.extra["derived_from"] == str(explored.resolve())  # the feature cache reuses its rows
    assert after.seq_len(n) == t - start and torch.equal(after.actions[n, : t - start], before.actions[ep, start:t])
    assert np.abs(after.sim_states[n, 0, 1:].numpy() - before.sim_states[ep, start, 1:].numpy()).max() < 1e-6
    # replaying the demonstration's own actions from its state follows it (the simulator is deterministic)
    assert np.abs(after.states[n, : t - start, :3] - before.states[ep, start:t, :3]).max() < 0.005
    split = split_with_branches(meta.explore_sources, 0.3, seed=0)
    assert next(k for k, v in split.items() if n in v) == next(k for k, v in split.items() if ep in v)

    branch = n - 1  # a file naming an exploration branch (not a demonstration) is refused, nothing written
    executed_actions.save(tmp_path / "bad" / "actions" / "eval_000.npz", executed_actions.ExecutedActions(
        before.actions[ep, :4].numpy(), branch, 0, explored.name, n, False))
    with pytest.raises(ValueError, match="is not a demonstration"):
        add_plan_branches(explored, [tmp_path / "bad"], tmp_path / "nothing", progress=False)
    assert not (tmp_path / "nothing").exists()


def test_plan_branches_cli_refuses_a_dir_without_executed_actions_in_one_line(tiny_lift_dataset, tmp_path, capsys):
    (tmp_path / "plan").mkdir()
    assert main([str(tiny_lift_dataset), "--from-plans", str(tmp_path / "plan"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "outputs.actions=true" in err and "\n" not in err
    assert not (tmp_path / "o").exists()
