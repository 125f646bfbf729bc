"""Dataset loader: raw episodes, seeded episode split, windows and their normalised contents."""

from __future__ import annotations

import pytest
import torch
from _synthetic_data import make_dataset

import datasets.robomimic_dset as rd
from datasets.normalizer import Normalizer
from datasets.robomimic_dset import RobomimicEpisodes, WindowDataset, split_episodes


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("syn") / "d", n_episodes=4, t_max=20, size=28)


def test_split_is_seeded_disjoint_and_complete():
    split = split_episodes(20, 0.2, seed=3, test_ratio=0.1)
    assert split == split_episodes(20, 0.2, seed=3, test_ratio=0.1)
    assert split_episodes(20, 0.2, seed=4, test_ratio=0.1)["val"] != split["val"]
    assert (len(split["val"]), len(split["test"])) == (4, 2)
    assert sorted(split["train"] + split["val"] + split["test"]) == list(range(20))
    assert not set(split["train"]) & set(split["val"]) and not set(split["test"]) & set(split["train"] + split["val"])
    assert len(split_episodes(3, 0.1, 0)["val"]) == 1
    assert split_episodes(1, 0.5, 0) == {"train": [0], "val": [], "test": []}


def test_the_test_share_does_not_depend_on_the_training_seed():
    tests = {tuple(split_episodes(30, 0.1, seed, test_ratio=0.2)["test"]) for seed in range(5)}
    assert len(tests) == 1 and len(next(iter(tests))) == 6
    assert split_episodes(30, 0.1, 0, test_ratio=0.2, test_seed=1)["test"] != list(next(iter(tests)))
    with pytest.raises(ValueError, match="val_ratio \\+ test_ratio < 1"):
        split_episodes(10, 0.5, 0, test_ratio=0.5)


def test_raw_episode_access(syn):
    ep = RobomimicEpisodes(syn)
    assert len(ep) == 4 and ep.meta.env_name == "Synthetic"
    assert ep.seq_len(1) == 19 and ep.frames(1).shape == (19, 28, 28, 3) and ep.frames(1).dtype.name == "uint8"
    assert ep.states.shape == (4, 20, 10) and ep.actions.shape == (4, 20, 7) and ep.sim_states.dtype == torch.float64


def test_windows_shapes_and_concatenated_actions(syn, monkeypatch):
    calls = []
    real = rd.read_video
    monkeypatch.setattr(rd, "read_video", lambda p: calls.append(p) or real(p))
    ep = RobomimicEpisodes(syn)
    norm = Normalizer.fit(ep.actions, ep.proprios, ep.states, ep.seq_lengths, [0, 1])
    ds = WindowDataset(ep, [0, 1], norm, num_hist=2, num_pred=1, frameskip=3)
    # windows span (T - 1) * frameskip + 1 = 7 env steps: 20 - 7 + 1 + 19 - 7 + 1 windows
    assert len(ds) == 14 + 13
    for i in range(len(ds)):
        ds[i]
    assert len(calls) == 2  # each episode decoded once, not per sample
    item = ds[14 + 4]  # episode 1, start 4
    assert item["visual"].shape == (3, 3, 28, 28) and 0 <= item["visual"].min() and item["visual"].max() <= 1
    assert item["proprio"].shape == (3, 9) and item["state"].shape == (3, 10) and item["action"].shape == (3, 21)
    raw = norm.denormalize_action(item["action"])
    torch.testing.assert_close(raw[1], ep.actions[1, 7:10].reshape(-1))  # frame 1 = step 7, actions 7, 8, 9
    torch.testing.assert_close(norm.denormalize_state(item["state"])[2], ep.states[1, 10])
    frames = torch.from_numpy(ep.frames(1)[[4, 7, 10]]).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(item["visual"], frames)


def test_features_instead_of_frames(syn):
    ep = RobomimicEpisodes(syn)
    norm = Normalizer.fit(ep.actions, ep.proprios, ep.states, ep.seq_lengths, [0])
    n = int(ep.seq_lengths.sum())
    feats = torch.arange(n, dtype=torch.float16)[:, None, None].expand(n, 2, 384).numpy()
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), ep.seq_lengths.cumsum(0)[:-1]]).numpy()
    ds = WindowDataset(ep, [2], norm, 2, 1, 1, features=feats, offsets=offsets)
    item = ds[5]
    assert "visual" not in item and item["features"].shape == (3, 2, 384)
    assert item["features"][:, 0, 0].tolist() == [offsets[2] + 5, offsets[2] + 6, offsets[2] + 7]


def test_too_short_episodes_are_refused(syn):
    ep = RobomimicEpisodes(syn)
    norm = Normalizer.fit(ep.actions, ep.proprios, ep.states, ep.seq_lengths, [0])
    with pytest.raises(ValueError, match="no window"):
        WindowDataset(ep, [0], norm, num_hist=5, num_pred=1, frameskip=5)


def test_windows_reach_the_last_frame_of_every_episode(syn):
    """The final frames (e.g. the lifted cube) must be prediction targets too; the last frame's
    action chunk, never a model input, is zero where the episode has no recorded actions."""
    ep = RobomimicEpisodes(syn)
    norm = Normalizer.fit(ep.actions, ep.proprios, ep.states, ep.seq_lengths, [0, 1])
    ds = WindowDataset(ep, [1], norm, num_hist=2, num_pred=1, frameskip=3)
    last = ds[len(ds) - 1]  # episode 1 (19 frames): start 12, frames 12, 15, 18
    torch.testing.assert_close(norm.denormalize_state(last["state"])[2], ep.states[1, 18])
    assert last["action"].shape == (3, 21)
    assert last["action"][2, 7:].abs().sum() == 0  # steps 19, 20 do not exist
    torch.testing.assert_close(norm.denormalize_action(last["action"])[1], ep.actions[1, 15:18].reshape(-1))
