"""Frozen-encoder feature cache: every frame of a dataset encoded once, fp16, memory-mapped.

Layout: ``DIR/feature_cache/<key>/features.npy`` fp16 [n_frames, P, 384] (episodes back to back,
episode i starts at row ``offsets[i]``) and ``manifest.json`` (written last). ``<key>`` =
``encoder.cache_key()`` = encoder name + weights hash + img_size + feature key. The cache is built in
a temporary directory and renamed into place; a directory without a matching manifest is stale or
partial and is rebuilt.

A dataset derived from another (``conversion.exploration`` appends branches and records the parent in
``meta.extra["derived_from"]``) reuses the parent's cache rows for every episode whose frame file is
byte-identical to the parent's, so only the new episodes are encoded.

The encoder is passed in (any object with ``cache_key()``, ``num_patches``, ``emb_dim``, ...): this
module holds no model code. CLI: ``python -m training.cache_features --data DIR --img-size N``.
"""

from __future__ import annotations

import filecmp
import json
import logging
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from datasets.meta import DatasetMeta, video_path
from datasets.robomimic_dset import RobomimicEpisodes
from datasets.video_io import lossless_path
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


def _frame_file(data_path: Path, meta: DatasetMeta, episode: int) -> Path:
    """The file holding episode ``episode``'s frames (its mp4, or the lossless ``.npy``)."""
    path = video_path(data_path, episode)
    return lossless_path(path) if meta.lossless else path


def reusable_rows(data_path: str | Path, donor_path: str | Path, encoder) -> dict[int, int]:
    """{episode of ``data_path``: first row of its frames in ``donor_path``'s cache} for the episodes whose
    features can be copied from ``donor_path``'s valid cache (same encoder key): same index, same length
    and a byte-identical frame file. Empty when the donor has no valid cache."""
    data_path, donor_path = Path(data_path), Path(donor_path)
    if data_path.resolve() == donor_path.resolve() or not (donor_path / "meta.json").is_file():
        return {}
    donor = load_feature_cache(donor_path, encoder)
    if donor is None:
        return {}
    donor_seq = json.loads((cache_dir(donor_path, encoder) / MANIFEST).read_text())["seq_lengths"]
    meta, donor_meta = DatasetMeta.load(data_path), DatasetMeta.load(donor_path)
    if meta.lossless != donor_meta.lossless:
        return {}
    seq = torch.load(data_path / "seq_lengths.pth", map_location="cpu", weights_only=True).tolist()
    rows = {}
    for i in range(min(len(seq), len(donor_seq))):
        mine, theirs = _frame_file(data_path, meta, i), _frame_file(donor_path, donor_meta, i)
        if seq[i] == donor_seq[i] and mine.is_file() and theirs.is_file() and filecmp.cmp(mine, theirs, shallow=False):
            rows[i] = int(donor[1][i])
    return rows


def _donor(data_path: Path, reuse_from: str | Path | None) -> Path | None:
    """The dataset whose cache may be reused: ``reuse_from``, else the parent the meta names, if it exists."""
    if reuse_from is not None:
        return Path(reuse_from)
    parent = DatasetMeta.load(data_path).extra.get("derived_from")
    return Path(parent) if parent and Path(parent).is_dir() else None


@torch.no_grad()
def build_feature_cache(data_path: str | Path, encoder, batch_size: int = 64, device: str | torch.device = "cpu",
                        force: bool = False, progress: bool = True, reuse_from: str | Path | None = None) -> Path:
    """Encode every frame of ``data_path`` with ``encoder`` unless a valid cache exists; return its dir.

    Episodes whose frames are byte-identical to those of ``reuse_from`` (default: the parent dataset named in
    ``meta.extra["derived_from"]``) take their rows from that dataset's valid cache instead of being encoded.
    """
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
    donor_path = _donor(data_path, reuse_from)
    reuse = reusable_rows(data_path, donor_path, encoder) if donor_path is not None else {}
    donor_feats = load_feature_cache(donor_path, encoder)[0] if reuse else None
    if reuse:
        log.info("feature cache: reusing %d of %d episodes' features from %s", len(reuse), len(episodes), donor_path)
    encoder = encoder.to(device)
    with atomic_directory(final) as tmp:
        out = np.lib.format.open_memmap(tmp / FEATURES, mode="w+", dtype=np.float16,
                                        shape=(expected["n_frames"], encoder.num_patches, encoder.emb_dim))
        row = 0
        bar = progress_bar(total=expected["n_frames"], desc="encoding frames", unit="frame", disable=not progress)
        for i in range(len(episodes)):
            if i in reuse:
                n = episodes.seq_len(i)
                out[row : row + n] = donor_feats[reuse[i] : reuse[i] + n]
                row += n
                bar.update(n)
                continue
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
