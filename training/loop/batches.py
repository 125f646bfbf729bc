"""Training batches gathered with index tensors, from tables on the training device or on the host.

A batch of windows is gathered in one go (no per-sample ``__getitem__``) from :class:`WindowTables`:
the window index (episode, first step) and the normalised proprio / state / action tensors, plus the
fp16 feature cache (rows) and/or the decoded frames. Two placements:

- ``device``: every table lives on the training device (the feature cache copied there once, fp16);
  a batch is a handful of indexing kernels and never touches the host. What a GPU uses when it fits.
- ``host``: the tables stay in host memory (features: the memory-mapped cache file, never loaded
  whole); batches are gathered by a ``DataLoader`` (``num_workers`` processes, pinned memory on
  CUDA) and copied to the device asynchronously. What a GPU uses when the cache does not fit, and
  what a CPU uses (the host *is* its device memory).

Both give exactly the items of ``WindowDataset.__getitem__`` stacked (``features`` stay fp16: the
model casts them), in the order of :func:`epoch_indices` (``tests/test_training_data.py``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from datasets.robomimic_dset import WindowDataset

log = logging.getLogger(__name__)
DEVICE_FRACTION = 0.5  # "auto" keeps the tables on a GPU when they take at most this share of its free memory


class NpyRows:
    """Rows of a ``.npy`` file, memory-mapped lazily (pickles as its path: cheap to send to workers)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._arr: np.ndarray | None = None

    @property
    def array(self) -> np.ndarray:
        if self._arr is None:
            self._arr = np.load(self.path, mmap_mode="r")
        return self._arr

    def __getstate__(self) -> dict:
        return {"path": self.path, "_arr": None}

    def __getitem__(self, rows: Tensor) -> Tensor:
        return torch.from_numpy(self.array[rows.numpy()])  # fancy indexing: a fresh, writable copy


@dataclass
class WindowTables:
    """What batches are gathered from, all on one device (``features`` may be an :class:`NpyRows`).

    episode, start [W] int64: window w covers env steps start[w] .. of episode[w];
    seq_len [N] int64; proprio [N, T_max, Dp], state [N, T_max, Ds], action [N, T_max, 7] normalised;
    feature_row [N] int64 + features fp16 [n_frames, P, E]; frame_row [N] int64 + frames uint8 [n, H, W, 3].
    """

    episode: Tensor
    start: Tensor
    seq_len: Tensor
    proprio: Tensor
    state: Tensor
    action: Tensor
    num_frames: int
    frameskip: int
    feature_row: Tensor | None = None
    features: Tensor | NpyRows | None = None
    frame_row: Tensor | None = None
    frames: Tensor | None = None

    def __len__(self) -> int:
        return len(self.episode)

    def nbytes(self, features: bool = True) -> int:
        """Bytes of the tables (what a ``device`` placement copies to the device), ``features`` included or not."""
        arr = self.features.array if isinstance(self.features, NpyRows) else self.features
        tensors = [getattr(self, f.name) for f in fields(self) if f.name != "features"] + ([arr] if features else [])
        return sum(int(x.nbytes) for x in tensors if isinstance(x, (Tensor, np.ndarray)))

    def to(self, device: torch.device, features: Tensor | None = None) -> WindowTables:
        """These tables on ``device``; ``features`` (already there, shared by train and val) if given."""
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                 if isinstance(getattr(self, f.name), Tensor) and f.name != "features"}
        feats = features if features is not None else self.features
        if isinstance(feats, NpyRows):
            feats = copy_rows_to(feats.array, device)
        elif feats is not None:
            feats = feats.to(device)
        return replace(self, **moved, features=feats)


def batch_to(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    """Every tensor of a batch on ``device`` (asynchronous from pinned memory)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def copy_rows_to(arr: np.ndarray, device: torch.device, chunk_bytes: int = 256 << 20) -> Tensor:
    """A (memory-mapped) array copied to ``device`` in chunks (never a second full copy on the host)."""
    out = torch.empty(arr.shape, dtype=torch.from_numpy(np.zeros(0, arr.dtype)).dtype, device=device)
    step = max(1, chunk_bytes // max(1, arr[:1].nbytes))
    for i in range(0, len(arr), step):
        out[i : i + step] = torch.from_numpy(np.array(arr[i : i + step])).to(device)
    return out


def window_tables(ds: WindowDataset) -> WindowTables:
    """Host tables of ``ds`` (same windows, normalisation and rows as its ``__getitem__``)."""
    ep, norm = ds.ep, ds.norm
    index = torch.tensor(ds.index, dtype=torch.long).reshape(-1, 2)
    tables = WindowTables(episode=index[:, 0], start=index[:, 1], seq_len=ep.seq_lengths.long(),
                          proprio=norm.normalize_proprio(ep.proprios), state=norm.normalize_state(ep.states),
                          action=norm.normalize_action(ep.actions), num_frames=ds.num_frames, frameskip=ds.fs)
    if ds.features is not None:
        path = getattr(ds.features, "filename", None)
        tables.features = NpyRows(path) if path else torch.from_numpy(np.array(ds.features))
        tables.feature_row = torch.as_tensor(np.asarray(ds.offsets), dtype=torch.long)
    if ds.frames:
        row = torch.zeros(len(ep), dtype=torch.long)
        ids = sorted(ds.frames)
        lengths = torch.tensor([len(ds.frames[e]) for e in ids])
        row[ids] = torch.cumsum(lengths, 0) - lengths
        tables.frames, tables.frame_row = torch.from_numpy(np.concatenate([ds.frames[e] for e in ids])), row
    return tables


def gather(tables: WindowTables, idx: Tensor) -> dict[str, Tensor]:
    """Windows ``idx`` [B] (on the tables' device) -> batch: "proprio" [B, T, Dp], "state" [B, T, Ds],
    "action" [B, T, 7 * frameskip] (zero past the episode's end), "features" fp16 [B, T, P, E] and/or
    "visual" float [B, T, 3, H, W] in [0, 1]."""
    e, s = tables.episode[idx], tables.start[idx]
    steps = torch.arange(tables.num_frames * tables.frameskip, device=idx.device)
    t = s[:, None] + steps[:: tables.frameskip]  # [B, T] frame indices
    j = s[:, None] + steps  # [B, T * fs] env steps whose actions the window holds
    valid = j < tables.seq_len[e][:, None]
    act = tables.action[e[:, None], j.clamp(max=tables.action.shape[1] - 1)].masked_fill(~valid[..., None], 0.0)
    batch = {"proprio": tables.proprio[e[:, None], t], "state": tables.state[e[:, None], t],
             "action": act.reshape(len(idx), tables.num_frames, -1)}
    if tables.features is not None:
        batch["features"] = tables.features[tables.feature_row[e][:, None] + t]
    if tables.frames is not None:
        fr = tables.frames[tables.frame_row[e][:, None] + t]  # [B, T, H, W, 3] uint8
        batch["visual"] = rearrange(fr, "b t h w c -> b t c h w").float() / 255.0
    return batch


def epoch_indices(n: int, seed: int, epoch: int, rank: int, world: int, shuffle: bool) -> Tensor:
    """This rank's windows for ``epoch`` [n // world]: a permutation seeded by (seed, epoch), sharded evenly
    (every rank the same count; windows repeat when n < world)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch)) if shuffle \
        else torch.arange(n)
    per_rank = max(1, n // world) if n >= world else 1
    idx = order.repeat((world * per_rank) // n + 1)[: world * per_rank]
    return idx[rank::world]


def validation_indices(n: int, rank: int, world: int) -> Tensor:
    """This rank's validation windows: every window once over all ranks, whatever ``world`` (ranks may hold
    one window more than others: no padding, nothing dropped)."""
    return torch.arange(n)[rank::world]


class _HostBatches(Dataset):
    """Batch ``i`` of an epoch, gathered on the host (one DataLoader item per batch)."""

    def __init__(self, tables: WindowTables, order: Tensor, batch_size: int):
        self.tables, self.order, self.batch_size = tables, order, batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return gather(self.tables, self.order[i * self.batch_size : (i + 1) * self.batch_size])


class EpochBatches:
    """Iterable of the batches of one epoch, on the training device; ``len`` = number of batches."""

    def __init__(self, source: BatchSource, order: Tensor):
        self.source, self.order = source, order

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.source.batch_size)

    def __iter__(self):
        src = self.source
        if src.placement == "device":
            order = self.order.to(src.device)
            for i in range(0, len(order), src.batch_size):
                yield gather(src.tables, order[i : i + src.batch_size])
            return
        loader = DataLoader(_HostBatches(src.tables, self.order, src.batch_size), batch_size=None, shuffle=False,
                            num_workers=src.num_workers, pin_memory=src.device.type == "cuda")
        for batch in loader:
            yield batch_to(batch, src.device)


@dataclass
class BatchSource:
    """The windows of one split, ready to be served in epochs (see the module docstring)."""

    tables: WindowTables
    device: torch.device
    placement: str  # "device" | "host"
    batch_size: int
    num_workers: int = 0

    def epoch(self, epoch: int, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True,
              max_batches: int | None = None) -> EpochBatches:
        order = epoch_indices(len(self.tables), seed, epoch, rank, world, shuffle)
        if max_batches is not None:
            order = order[: max_batches * self.batch_size]
        return EpochBatches(self, order)


def validation_batches(source: BatchSource, rank: int, world: int, max_batches: int | None = None) -> EpochBatches:
    """This rank's share of the validation windows (``validation_indices``) as batches."""
    order = validation_indices(len(source.tables), rank, world)
    if max_batches is not None:
        order = order[: max_batches * source.batch_size]
    return EpochBatches(source, order)


def choose_placement(setting: str | bool, device: torch.device, nbytes: int) -> str:
    """``training.cache_on_device`` (auto / true / false) -> "device" or "host" for tables of ``nbytes``.

    auto: "device" on a GPU when the tables take at most DEVICE_FRACTION of its free memory, else "host"
    (on a CPU the memory-mapped host tables already are the device's memory).
    """
    s = str(setting).lower()
    if s not in ("auto", "true", "false"):
        raise ValueError(f"training.cache_on_device must be auto, true or false, got {setting!r}")
    if s != "auto":
        return "device" if s == "true" else "host"
    if device.type != "cuda":
        return "host"
    free, _ = torch.cuda.mem_get_info(device)
    return "device" if nbytes <= DEVICE_FRACTION * free else "host"
