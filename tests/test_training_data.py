"""Batches gathered with index tensors (device tables / host DataLoader) equal the per-window items."""

from __future__ import annotations

import pickle

import pytest
import torch
from _synthetic_data import make_dataset

from datasets.feature_cache import build_feature_cache, load_feature_cache
from datasets.normalizer import Normalizer
from datasets.robomimic_dset import RobomimicEpisodes, WindowDataset
from models.dino import build_dino_encoder
from training.loop.batches import NpyRows, choose_placement, epoch_indices, window_tables
from training.loop.data import batch_sources

B = 5


@pytest.fixture(scope="module")
def dsets(tmp_path_factory):
    """Train / val windows of a synthetic dataset with a real (1-layer random) feature cache and frames."""
    path = make_dataset(tmp_path_factory.mktemp("td") / "d", n_episodes=4, t_max=20, size=28)
    enc = build_dino_encoder(pretrained=False, img_size=28, num_layers=1)
    build_feature_cache(path, enc, batch_size=8, progress=False)
    feats, offsets = load_feature_cache(path, enc)
    ep = RobomimicEpisodes(path)
    norm = Normalizer.fit(ep.actions, ep.proprios, ep.states, ep.seq_lengths, [0, 2, 3])
    kw = dict(num_hist=2, num_pred=1, frameskip=3, features=feats, offsets=offsets, with_visual=True)
    return WindowDataset(ep, [0, 2, 3], norm, **kw), WindowDataset(ep, [1], norm, **kw)


def reference_epoch(ds, seed, epoch, shuffle=True, rank=0, world=1):
    """The per-window path: ``ds[i]`` stacked in batches of B, in the epoch's order."""
    order = epoch_indices(len(ds), seed, epoch, rank, world, shuffle).tolist()
    return [{k: torch.stack([ds[i][k] for i in order[s:s + B]]) for k in ds[0]} for s in range(0, len(order), B)]


def assert_same_batches(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        assert g["features"].dtype == torch.float16  # fp16 until the model casts it
        for k in w:
            torch.testing.assert_close(g[k].float(), w[k], rtol=0, atol=0, msg=k)


@pytest.mark.parametrize("setting,workers", [("true", 0), ("false", 0), ("false", 1)])
def test_every_path_gives_the_per_window_items_in_the_same_order(dsets, setting, workers):
    train, val = dsets
    src, vsrc = batch_sources(train, val, setting, torch.device("cpu"), B, workers)
    assert src.placement == ("device" if setting == "true" else "host")
    if setting == "true":
        assert isinstance(src.tables.features, torch.Tensor) and src.tables.features is vsrc.tables.features
    else:
        assert isinstance(src.tables.features, NpyRows)  # the memory-mapped cache, never loaded whole
    for epoch in (0, 1):  # the whole epoch: windows at episode ends (zero-padded actions) included
        assert_same_batches(list(src.epoch(epoch, seed=3)), reference_epoch(train, 3, epoch))
    assert_same_batches(list(vsrc.epoch(0, seed=3, shuffle=False)), reference_epoch(val, 3, 0, shuffle=False))
    batches = src.epoch(0, seed=3, rank=1, world=2, max_batches=2)
    assert len(batches) == 2
    assert_same_batches(list(batches), reference_epoch(train, 3, 0, rank=1, world=2)[:2])


def test_epoch_order_is_seeded_and_sharded_evenly():
    a = epoch_indices(23, seed=0, epoch=4, rank=0, world=1, shuffle=True)
    assert torch.equal(a, epoch_indices(23, 0, 4, 0, 1, True)) and sorted(a.tolist()) == list(range(23))
    assert not torch.equal(a, epoch_indices(23, 0, 5, 0, 1, True))
    assert not torch.equal(a, epoch_indices(23, 1, 4, 0, 1, True))
    shards = [epoch_indices(23, 0, 4, r, 3, True) for r in range(3)]
    assert {len(s) for s in shards} == {7} and not set(shards[0].tolist()) & set(shards[1].tolist())
    assert epoch_indices(5, 0, 0, 0, 1, False).tolist() == [0, 1, 2, 3, 4]


def test_gathered_windows_match_the_raw_episode(dsets):
    train, _ = dsets
    tables = window_tables(train)
    i = len(train) - 1  # the last window of episode 3 (20 frames): start 13, frames 13, 16, 19
    e, s = int(tables.episode[i]), int(tables.start[i])
    assert (e, s) == (3, 13)
    from training.loop.batches import gather

    b = gather(tables, torch.tensor([i]))
    norm, ep = train.norm, train.ep
    torch.testing.assert_close(norm.denormalize_state(b["state"][0]), ep.states[3, [13, 16, 19]])
    torch.testing.assert_close(norm.denormalize_action(b["action"][0, 1]), ep.actions[3, 16:19].reshape(-1))
    torch.testing.assert_close(norm.denormalize_action(b["action"][0, 2, :7]), ep.actions[3, 19])
    assert b["action"][0, 2, 7:].abs().sum() == 0  # env steps 20, 21 do not exist
    assert b["visual"].shape == (1, 3, 3, 28, 28) and b["features"].shape == (1, 3, 4, 384)


def test_feature_rows_pickle_as_their_path(dsets):
    rows = window_tables(dsets[0]).features
    rows[torch.tensor([[0, 1]])]  # maps the file
    blob = pickle.dumps(rows)
    assert len(blob) < 1000  # workers get the path, not the features
    again = pickle.loads(blob)
    assert torch.equal(again[torch.tensor([[3, 2]])], rows[torch.tensor([[3, 2]])])


def test_placement_setting(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert choose_placement("auto", cpu, 10) == "host"  # host memory already is a CPU's device memory
    assert choose_placement(True, cpu, 10) == "device" and choose_placement("false", gpu, 10) == "host"
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (8 << 30, 80 << 30))
    assert choose_placement("auto", gpu, 4 << 30) == "device"
    assert choose_placement("auto", gpu, 5 << 30) == "host"  # more than half of the free memory
    with pytest.raises(ValueError, match="auto, true or false"):
        choose_placement("sometimes", cpu, 1)


def _data_cfg(val_ratio=0.25, seed=0, test_ratio=0.0):
    from omegaconf import OmegaConf

    return OmegaConf.create({"training": {"val_ratio": val_ratio, "seed": seed, "batch_size": 4, "num_workers": 0,
                                          "test_ratio": test_ratio,
                                          "cache_on_device": "false"},
                             "encoder": {"cache": False}, "model": {"decoder": False},
                             "num_hist": 2, "num_pred": 1, "frameskip": 3})


def test_prepare_data_splits_fits_and_saves_the_normalizer(tmp_path):
    from accelerate import Accelerator

    from training.loop.data import prepare_data
    from training.run_dir.run_info import load_run_info

    path = make_dataset(tmp_path / "d", n_episodes=4, t_max=20, size=28)
    run = tmp_path / "run"
    run.mkdir()
    data = prepare_data(_data_cfg(test_ratio=0.25), path, run, None, Accelerator(cpu=True), resuming=False)
    assert sorted(data.split["train"] + data.split["val"] + data.split["test"]) == [0, 1, 2, 3]
    assert len(data.split["val"]) == 1 and len(data.split["test"]) == 1
    saved = Normalizer.load(run)
    torch.testing.assert_close(saved.action_mean, data.normalizer.action_mean)
    assert len(data.train) > 0 and data.val is not None and data.train_batches is not None
    assert load_run_info(run) is None  # the trainer writes run_info.json, not prepare_data


def test_a_resumed_run_keeps_its_split_and_normalizer_whatever_the_config(tmp_path):
    from accelerate import Accelerator

    from training.loop.data import prepare_data
    from training.run_dir.run_info import load_run_info, write_run_info

    path = make_dataset(tmp_path / "d", n_episodes=4, t_max=20, size=28)
    run = tmp_path / "run"
    run.mkdir()
    first = prepare_data(_data_cfg(), path, run, None, Accelerator(cpu=True), resuming=False)
    write_run_info(run, {"split": {"train": [3, 1], "val": [0, 2]}})
    assert load_run_info(run) == {"split": {"train": [3, 1], "val": [0, 2]}}
    again = prepare_data(_data_cfg(val_ratio=0.5, seed=7), path, run, None, Accelerator(cpu=True), resuming=True)
    assert again.split == {"train": [3, 1], "val": [0, 2]}
    torch.testing.assert_close(again.normalizer.state_std, first.normalizer.state_std)
    assert sorted(p.name for p in run.iterdir()) == ["normalizer.json", "run_info.json"]  # no temporaries


def test_members_with_one_split_seed_share_the_split_and_the_test_episodes_never_move():
    from omegaconf import OmegaConf

    from training.loop.data import episode_split

    sources = [-1] * 30 + list(range(30))  # 30 demonstrations, one branch each
    def split(**t):
        return episode_split(OmegaConf.create({"training": {"val_ratio": 0.2, "test_ratio": 0.1, "seed": 0,
                                                            "split_seed": None, **t}}), sources)
    base, other = split(), split(seed=1)
    assert base["test"] == other["test"] and base["val"] != other["val"]  # the seed draws val when split_seed is null
    assert split(seed=1, split_seed=0) == base == split(seed=2, split_seed=0)
