"""Training data set-up: split, normalizer, feature cache and the per-epoch, per-rank batch order."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from datasets.normalizer import Normalizer
from datasets.robomimic_dset import RobomimicEpisodes, WindowDataset, split_with_branches
from training.loop.batches import BatchSource, choose_placement, window_tables
from training.loop.distributed import node_feature_cache
from training.run_dir.run_info import load_run_info

log = logging.getLogger(__name__)


@dataclass
class TrainData:
    episodes: RobomimicEpisodes
    normalizer: Normalizer
    split: dict[str, list[int]]
    train: WindowDataset
    val: WindowDataset | None
    train_batches: BatchSource | None = None
    val_batches: BatchSource | None = None


def episode_split(cfg: Any, sources: list[int]) -> dict[str, list[int]]:
    """The run's train / val / test episodes: test from ``training.test_seed``, val from ``training.split_seed``
    (null: ``training.seed``), so ensemble members trained with other seeds can share one split."""
    t = cfg.training
    split_seed = t.get("split_seed")
    return split_with_branches(sources, float(t.val_ratio), int(t.seed if split_seed is None else split_seed),
                               test_ratio=float(t.get("test_ratio", 0.0)), test_seed=int(t.get("test_seed", 0)))


def prepare_data(cfg: Any, data_path: Path, run_dir: Path, encoder, accelerator, resuming: bool) -> TrainData:
    """Split + normalizer (reused from the run dir when resuming) and the window datasets."""
    episodes = RobomimicEpisodes(data_path)
    info = load_run_info(run_dir) if resuming else None
    if info is not None:
        split = info["split"]
        normalizer = Normalizer.load(run_dir)
    else:
        split = episode_split(cfg, episodes.meta.explore_sources or [-1] * len(episodes))
        normalizer = Normalizer.fit(episodes.actions, episodes.proprios, episodes.states, episodes.seq_lengths,
                                    split["train"])
        if accelerator.is_main_process:
            normalizer.save(run_dir)
    features = offsets = None
    if cfg.encoder.cache:
        features, offsets = node_feature_cache(data_path, encoder, accelerator)
    else:
        log.info("encoder.cache=false: training re-encodes the frames with the frozen encoder at every step")
    with_visual = bool(cfg.model.decoder)
    kw = dict(num_hist=int(cfg.num_hist), num_pred=int(cfg.num_pred), frameskip=int(cfg.frameskip),
              features=features, offsets=offsets, with_visual=with_visual)
    train = WindowDataset(episodes, split["train"], normalizer, **kw)
    val = WindowDataset(episodes, split["val"], normalizer, **kw) if split["val"] else None
    log.info("dataset %s: %d train episodes (%d windows), %d val episodes (%d windows), %d test episodes "
             "(never trained on or tuned on)", data_path, len(split["train"]), len(train), len(split["val"]),
             len(val) if val else 0, len(split.get("test", [])))
    t = cfg.training
    train_b, val_b = batch_sources(train, val, t.get("cache_on_device", "auto"), accelerator.device,
                                   int(t.batch_size), int(t.num_workers))
    return TrainData(episodes, normalizer, split, train, val, train_b, val_b)


def batch_sources(train: WindowDataset, val: WindowDataset | None, setting, device: torch.device, batch_size: int,
                  num_workers: int) -> tuple[BatchSource, BatchSource | None]:
    """Batch sources of both splits, their tables on ``device`` or on the host (``choose_placement``).

    The feature cache is shared: on the device it is copied there once for both splits.
    """
    tables = [window_tables(train)] + ([window_tables(val)] if val is not None else [])
    nbytes = tables[0].nbytes() + sum(tb.nbytes(features=False) for tb in tables[1:])
    placement = choose_placement(setting, device, nbytes)
    if placement == "device":
        try:
            tables[0] = tables[0].to(device)
            tables[1:] = [tb.to(device, features=tables[0].features) for tb in tables[1:]]
        except torch.cuda.OutOfMemoryError as e:
            raise RuntimeError(f"training.cache_on_device={setting}: the {nbytes / 2**30:.2f} GiB of training tables "
                               f"do not fit on {device}; use training.cache_on_device=auto or false") from e
    log.info("training batches gathered on the %s (%s, %.2f GiB of tables; training.cache_on_device=%s)",
             "device" if placement == "device" else "host", device, nbytes / 2**30, setting)
    sources = [BatchSource(tb, device, placement, batch_size, num_workers) for tb in tables]
    return sources[0], (sources[1] if val is not None else None)
