"""Loader of a converted dataset directory (see ``datasets/meta.py``): raw episodes and training windows.

- :class:`RobomimicEpisodes`: raw, unnormalised access (planning uses it for start / goal states).
- :func:`split_episodes`: seeded episode-level train / val / test split.
- :class:`WindowDataset`: windows of ``num_hist + num_pred`` frames ``frameskip`` apart, the
  ``frameskip`` actions between two frames concatenated, normalised by a :class:`Normalizer`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from torch import Tensor
from torch.utils.data import Dataset

from datasets.meta import TENSOR_FILES, DatasetMeta, video_path
from datasets.normalizer import Normalizer
from datasets.video_io import read_video

log = logging.getLogger(__name__)


def split_episodes(n_episodes: int, val_ratio: float, seed: int, test_ratio: float = 0.0,
                   test_seed: int = 0) -> dict[str, list[int]]:
    """Seeded episode-level split -> {"train", "val", "test"}: sorted, disjoint episode ids covering 0..n-1.

    The test share is drawn first with its own ``test_seed`` (fixed by default), so runs that differ only in
    their training ``seed`` report on the same test episodes; val is drawn from the rest with ``seed``.
    A share > 0 gets at least one episode while at least one episode is left for training.
    """
    if n_episodes < 1:
        raise ValueError("a dataset needs at least one episode")
    if val_ratio < 0 or test_ratio < 0 or val_ratio + test_ratio >= 1:
        raise ValueError(f"need val_ratio, test_ratio >= 0 with val_ratio + test_ratio < 1, got {val_ratio}, {test_ratio}")
    order = torch.randperm(n_episodes, generator=torch.Generator().manual_seed(test_seed)).tolist()
    n_test = _share(n_episodes, test_ratio, room=n_episodes - 1)
    test, rest = order[:n_test], order[n_test:]
    perm = torch.randperm(len(rest), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = _share(n_episodes, val_ratio, room=len(rest) - 1)
    val = [rest[i] for i in perm[:n_val]]
    train = [rest[i] for i in perm[n_val:]]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def split_with_branches(sources: list[int], val_ratio: float, seed: int, test_ratio: float = 0.0,
                        test_seed: int = 0) -> dict[str, list[int]]:
    """:func:`split_episodes` over the demonstrations (``sources[i] == -1``); every exploration branch
    (``sources[i]`` = its demonstration, ``conversion.exploration``) joins its demonstration's split, so a test
    demonstration's scene is never trained on. Without branches this is :func:`split_episodes`."""
    demos = [i for i, s in enumerate(sources) if s < 0]
    split = split_episodes(len(demos), val_ratio, seed, test_ratio=test_ratio, test_seed=test_seed)
    out = {k: [demos[j] for j in v] for k, v in split.items()}
    where = {ep: k for k, v in out.items() for ep in v}
    for i, s in enumerate(sources):
        if s >= 0:
            out[where[s]].append(i)
    return {k: sorted(v) for k, v in out.items()}


def _share(n: int, ratio: float, room: int) -> int:
    """round(n * ratio) episodes, at least 1 when ratio > 0, at most ``room`` (what leaves one for training)."""
    k = int(round(n * ratio))
    if ratio > 0:
        k = max(k, 1)
    return max(0, min(k, room))


class RobomimicEpisodes:
    """Raw episodes of a converted dataset directory.

    Tensors (unnormalised, zero-padded past each episode's end): ``states`` [N, T_max, state_dim],
    ``proprios`` [N, T_max, proprio_dim], ``actions`` [N, T_max, 7], ``sim_states`` float64
    [N, T_max, sim_dim], ``seq_lengths`` int64 [N]. ``frames(i)`` -> uint8 [T_i, H, W, 3].
    """

    def __init__(self, data_path: str | Path):
        self.path = Path(data_path)
        self.meta = DatasetMeta.load(self.path)
        t = {k: torch.load(self.path / f, map_location="cpu", weights_only=True)
             for k, f in TENSOR_FILES.items() if k != "velocities"}
        self.states, self.proprios, self.actions = t["states"].float(), t["proprios"].float(), t["actions"].float()
        self.sim_states, self.seq_lengths = t["sim_states"], t["seq_lengths"].long()
        if len(self.seq_lengths) != self.meta.n_episodes:
            raise ValueError(f"{self.path}: {len(self.seq_lengths)} episodes in seq_lengths.pth, "
                             f"meta.json says {self.meta.n_episodes}")

    def __len__(self) -> int:
        return len(self.seq_lengths)

    def seq_len(self, i: int) -> int:
        return int(self.seq_lengths[i])

    def frames(self, i: int) -> np.ndarray:
        """uint8 [T_i, H, W, 3] RGB frames of episode ``i`` (decoded from its video)."""
        frames = read_video(video_path(self.path, i))
        if len(frames) != self.seq_len(i):
            raise ValueError(f"{video_path(self.path, i)} has {len(frames)} frames, expected {self.seq_len(i)}")
        return frames


class WindowDataset(Dataset):
    """Training windows over ``episode_ids``.

    Item (T = num_hist + num_pred, A = 7 * frameskip):
      "visual"   float32 [T, 3, H, W] in [0, 1]   (when ``features`` is None, or ``with_visual``)
      "features" float32 [T, P, 384]              (when ``features`` is given: frozen-encoder cache)
      "proprio"  float32 [T, proprio_dim]  normalised
      "state"    float32 [T, state_dim]    normalised
      "action"   float32 [T, A] normalised: the env-step actions t*fs .. t*fs+fs-1 after frame t
                 (zero past the episode's end: only the last frame's chunk can be, and it is never used)
    Frames are decoded once per episode at construction (uint8 in memory), never per sample.
    ``features`` is an array [n_frames, P, 384] (fp16 memmap) with episode i at ``offsets[i]``.
    """

    def __init__(self, episodes: RobomimicEpisodes, episode_ids: list[int], normalizer: Normalizer,
                 num_hist: int, num_pred: int, frameskip: int, features: np.ndarray | None = None,
                 offsets: np.ndarray | None = None, with_visual: bool = False):
        self.ep, self.ids, self.norm = episodes, list(episode_ids), normalizer
        self.num_frames, self.fs = num_hist + num_pred, frameskip
        self.features, self.offsets = features, offsets
        # A window may end at an episode's last frame: the last frame's action chunk is never an input
        # (frame t's actions only condition the prediction of frame t+1), so it is zero past the end.
        span = (self.num_frames - 1) * frameskip + 1  # env steps from the first to the last frame
        self.index: list[tuple[int, int]] = [
            (e, s) for e in self.ids for s in range(max(0, episodes.seq_len(e) - span + 1))]
        if not self.index:
            raise ValueError(f"no window of {self.num_frames} frames x frameskip {frameskip} fits in the episodes")
        self.frames: dict[int, np.ndarray] = {}
        if features is None or with_visual:
            self.frames = {e: episodes.frames(e) for e in self.ids}
        self.proprio = normalizer.normalize_proprio(episodes.proprios)
        self.state = normalizer.normalize_state(episodes.states)
        self.action = normalizer.normalize_action(episodes.actions)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, idx: int) -> dict[str, Tensor]:
        e, s = self.index[idx]
        t = torch.arange(self.num_frames) * self.fs + s  # frame indices [T]
        n = self.num_frames * self.fs
        act = self.action[e, s : s + n]
        valid = min(n, self.ep.seq_len(e) - s)  # recorded env-step actions in this window
        if valid < n:
            act = torch.cat([act[:valid], act.new_zeros(n - valid, act.shape[-1])])
        act = act.reshape(self.num_frames, -1)
        item = {"proprio": self.proprio[e, t], "state": self.state[e, t], "action": act}
        if self.features is not None:
            rows = self.offsets[e] + t.numpy()
            item["features"] = torch.from_numpy(np.asarray(self.features[rows], dtype=np.float32))
        if self.frames:
            fr = torch.from_numpy(self.frames[e][t.numpy()])
            item["visual"] = rearrange(fr, "t h w c -> t c h w").float() / 255.0  # [T, 3, H, W] in [0, 1]
        return item
