"""Feature cache: written once, fp16 memmap, equal to the encoder, stale / partial caches rebuilt, rows reused
from a parent dataset for byte-identical episodes only, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _synthetic_data import make_dataset

from datasets.feature_cache import MANIFEST, build_feature_cache, cache_dir, load_feature_cache, reusable_rows
from datasets.meta import DatasetMeta, video_path
from datasets.robomimic_dset import RobomimicEpisodes
from datasets.video_io import read_video, write_video
from models.dino import build_dino_encoder
from training.cache_features import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("fc") / "d", n_episodes=3, t_max=10, size=28)


@pytest.fixture(scope="module")
def enc():
    return build_dino_encoder(pretrained=False, img_size=28, num_layers=1)


def test_cache_matches_encoder_and_is_reused(syn, enc):
    assert load_feature_cache(syn, enc) is None
    path = build_feature_cache(syn, enc, batch_size=4, progress=False)
    assert path == cache_dir(syn, enc) and path.name == enc.cache_key()
    feats, offsets = load_feature_cache(syn, enc)
    assert isinstance(feats, np.memmap) and feats.dtype == np.float16 and feats.shape == (27, 4, 384)
    assert offsets.tolist() == [0, 10, 19]
    frames = torch.tensor(RobomimicEpisodes(syn).frames(1)).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(torch.from_numpy(np.asarray(feats[10:19], np.float32)), enc(frames),
                               atol=2e-2, rtol=1e-2)
    mtime = (path / "features.npy").stat().st_mtime_ns
    build_feature_cache(syn, enc, progress=False)
    assert (path / "features.npy").stat().st_mtime_ns == mtime  # up to date: not rebuilt


def test_partial_or_stale_cache_is_rebuilt(syn, enc):
    path = build_feature_cache(syn, enc, progress=False)
    (path / MANIFEST).unlink()  # an interrupted build leaves no manifest
    assert load_feature_cache(syn, enc) is None
    build_feature_cache(syn, enc, progress=False)
    assert load_feature_cache(syn, enc) is not None
    m = json.loads((path / MANIFEST).read_text())
    m["seq_lengths"][0] += 1  # the dataset changed under the cache
    (path / MANIFEST).write_text(json.dumps(m))
    assert load_feature_cache(syn, enc) is None
    build_feature_cache(syn, enc, progress=False)
    assert load_feature_cache(syn, enc) is not None
    other = build_dino_encoder(pretrained=False, img_size=28, num_layers=1, seed=9)
    assert cache_dir(syn, other) != path  # other weights -> other key
    assert not list(path.parent.glob(".*tmp*"))


def _derived(syn: Path, dst: Path) -> Path:
    """A copy of ``syn`` (no cache) whose episode 1 holds other frames of the same length."""
    shutil.copytree(syn, dst, ignore=shutil.ignore_patterns("feature_cache"))
    write_video(video_path(dst, 1), 255 - read_video(video_path(syn, 1)))
    return dst


class _Counting(torch.nn.Module):
    """``enc`` that counts the frames it encodes (same cache key)."""

    def __init__(self, enc):
        super().__init__()
        self.enc, self.frames = enc, 0

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.enc, name)

    def forward(self, x):
        self.frames += len(x)
        return self.enc(x)


def test_a_derived_dataset_reuses_the_rows_of_byte_identical_episodes_only(syn, enc, tmp_path):
    build_feature_cache(syn, enc, progress=False)
    derived = _derived(syn, tmp_path / "derived")
    assert reusable_rows(derived, syn, enc) == {0: 0, 2: 19}  # episode 1's frames changed
    assert reusable_rows(syn, syn, enc) == {}
    meta = DatasetMeta.load(derived)
    meta.extra["derived_from"] = str(syn)  # as conversion.exploration records it
    meta.save(derived)
    counting = _Counting(enc)
    build_feature_cache(derived, counting, progress=False)
    assert counting.frames == 9  # only episode 1 was encoded
    reused = np.array(load_feature_cache(derived, enc)[0])
    build_feature_cache(derived, enc, force=True, progress=False, reuse_from=tmp_path)  # nothing to reuse there
    full, _ = load_feature_cache(derived, enc)
    original, _ = load_feature_cache(syn, enc)
    np.testing.assert_allclose(reused, np.asarray(full), atol=2e-3, rtol=0)  # reused rows = a full re-encode
    assert not np.array_equal(np.asarray(full[10:19]), np.asarray(original[10:19]))


def test_a_missing_parent_or_parent_cache_means_encoding_everything(syn, enc, tmp_path):
    derived = _derived(syn, tmp_path / "derived")
    meta = DatasetMeta.load(derived)
    meta.extra["derived_from"] = str(tmp_path / "gone")
    meta.save(derived)
    counting = _Counting(enc)
    build_feature_cache(derived, counting, progress=False)
    assert counting.frames == 27
    other = build_dino_encoder(pretrained=False, img_size=28, num_layers=1, seed=5)  # the parent has no cache for it
    assert reusable_rows(derived, syn, other) == {}


def test_cli(syn, tmp_path, capsys):
    proc = subprocess.run([sys.executable, "-m", "training.cache_features", "--help"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "--data" in proc.stdout
    assert main(["--data", str(tmp_path), "--random-encoder", "--img-size", "14"]) == 2
    assert "not a converted dataset" in capsys.readouterr().err
    assert main(["--data", str(syn), "--random-encoder", "--img-size", "14"]) == 0
    assert "feature_cache" in capsys.readouterr().out
    assert main(["--data", str(syn), "--random-encoder", "--img-size", "14", "--reuse-from", str(tmp_path)]) == 2
    assert "--reuse-from" in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (["--img-size", "0"], "argument --img-size: 0 must be >= 1"),
    (["--img-size", "28", "--batch-size", "0"], "argument --batch-size: 0 must be >= 1"),
    (["--img-size", "28", "--weights-path", "w.pth"], "--random-encoder and --weights-path exclude each other"),
])
def test_cli_refuses_bad_numbers_and_conflicting_weights_before_any_work(syn, capsys, argv, says):
    with pytest.raises(SystemExit) as exc:
        main(["--data", str(syn), "--random-encoder", *argv])
    assert exc.value.code == 2 and says in capsys.readouterr().err.strip().splitlines()[-1]
