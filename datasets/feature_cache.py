"""Frozen-encoder feature cache: every frame of a dataset encoded once, fp16, memory-mapped.

Layout: ``DIR/feature_cache/<key>/features.npy`` fp16 [n_frames, P, 384] (episodes back to back,
episode i starts at row ``offsets[i]``) and ``manifest.json`` (written last). ``<key>`` =
``encoder.cache_key()`` = encoder name + weights hash + img_size + feature key. The cache is built in
a temporary directory and renamed into place; a directory without a matching manifest is stale or
partial and is rebuilt.

The encoder is passed in (any object with ``cache_key()``, ``num_patches``, ``emb_dim``, ...): this
module holds no model code. CLI: ``python -m training.cache_features --data DIR --img-size N``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from datasets.meta import DatasetMeta
from datasets.robomimic_dset import RobomimicEpisodes
from utils.atomic_files import atomic_directory
from utils.progress import progress as progress_bar

log = logging.getLogger(__name__)

CACHE_DIR = "feature_cache"
MANIFEST = "manifest.json"
FEATURES = "features.npy"
CACHE_VERSION = 1


def cache_dir(data_path: str | Path, encoder) -> Path:
    return Path(data_path) / CACHE_DIR / encoder.cache_key()


def _expected_manifest(data_path: Path, encoder) -> dict:
    meta = DatasetMeta.load(data_path)
    seq = torch.load(data_path / "seq_lengths.pth", map_location="cpu", weights_only=True).tolist()
    return {"version": CACHE_VERSION, "key": encoder.cache_key(), "encoder": encoder.name,
            "weights_hash": encoder.weights_hash, "img_size": encoder.img_size,
            "feature_key": encoder.feature_key, "num_patches": encoder.num_patches, "emb_dim": encoder.emb_dim,
            "seq_lengths": seq, "n_frames": int(sum(seq)), "source_sha256": meta.source_sha256,
            "dtype": "float16"}


def _valid(path: Path, expected: dict) -> bool:
    m = path / MANIFEST
    if not (m.is_file() and (path / FEATURES).is_file()):
        return False
    try:
        return json.loads(m.read_text()) == expected
    except json.JSONDecodeError:
        return False


def load_feature_cache(data_path: str | Path, encoder) -> tuple[np.ndarray, np.ndarray] | None:
    """(features fp16 memmap [n_frames, P, E], offsets int64 [N]) if a valid cache exists, else None."""
    data_path = Path(data_path)
    path = cache_dir(data_path, encoder)
    expected = _expected_manifest(data_path, encoder)
    if not _valid(path, expected):
        return None
    feats = np.load(path / FEATURES, mmap_mode="r")
    offsets = np.concatenate([[0], np.cumsum(expected["seq_lengths"])[:-1]]).astype(np.int64)
    return feats, offsets


@torch.no_grad()
def build_feature_cache(data_path: str | Path, encoder, batch_size: int = 64, device: str | torch.device = "cpu",
                        force: bool = False, progress: bool = True) -> Path:
    """Encode every frame of ``data_path`` with ``encoder`` unless a valid cache exists; return its dir."""
    data_path = Path(data_path)
    final = cache_dir(data_path, encoder)
    expected = _expected_manifest(data_path, encoder)
    if not force and _valid(final, expected):
        log.info("feature cache is up to date: %s", final)
        return final
    if final.exists():
        log.warning("feature cache %s is stale or partial: rebuilding", final)
    final.parent.mkdir(parents=True, exist_ok=True)
    episodes = RobomimicEpisodes(data_path)
    encoder = encoder.to(device)
    with atomic_directory(final) as tmp:
        out = np.lib.format.open_memmap(tmp / FEATURES, mode="w+", dtype=np.float16,
                                        shape=(expected["n_frames"], encoder.num_patches, encoder.emb_dim))
        row = 0
        bar = progress_bar(total=expected["n_frames"], desc="encoding frames", unit="frame", disable=not progress)
        for i in range(len(episodes)):
            frames = episodes.frames(i)
            for s in range(0, len(frames), batch_size):
                x = rearrange(torch.tensor(frames[s : s + batch_size], device=device), "b h w c -> b c h w").float() / 255.0
                f = encoder(x).to("cpu", torch.float16).numpy()
                out[row : row + len(f)] = f
                row += len(f)
                bar.update(len(f))
        bar.close()
        out.flush()
        del out
        (tmp / MANIFEST).write_text(json.dumps(expected))  # the manifest is written last
    log.info("feature cache written: %s (%d frames)", final, expected["n_frames"])
    return final
