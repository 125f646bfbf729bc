"""utils.wandb_artifacts: reference artifacts named and digested by their files, used and logged by real
offline runs (no network, no key), read back from the runs' own files."""

from __future__ import annotations

import shutil

import pytest

from tests.wandb_offline import offline_runs
from utils.wandb_artifacts import (
    artifact_name,
    checkpoint_artifact,
    checkpoint_artifact_name,
    dataset_artifact,
    dataset_artifact_name,
    use_artifact,
)


def offline_run(root, **kwargs):
    import wandb

    root.mkdir(parents=True, exist_ok=True)
    return wandb.init(project="dino-wm-robomimic", mode="offline", dir=str(root), reinit="finish_previous",
                      settings=wandb.Settings(console="off", silent=True), **kwargs)


@pytest.fixture
def ckpt(tmp_path):
    d = tmp_path / "run" / "checkpoints" / "step_00000012"
    d.mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"weights")
    (d / "train_state.json").write_text('{"step": 12}')
    return d


def test_names_are_valid_wandb_artifact_names(tmp_path):
    assert checkpoint_artifact_name("ab12cd") == "checkpoint-ab12cd"
    assert dataset_artifact_name(tmp_path / "data" / "demo" / "lift" / "dino_wm") == "dataset-demo-lift-dino_wm"
    assert artifact_name("dataset-my data/x:y") == "dataset-my_data_x_y" and artifact_name("///") == "artifact"


def test_the_digest_follows_the_files_not_their_place(ckpt, tmp_path):
    first = checkpoint_artifact(ckpt, "run1", 12)
    moved = tmp_path / "elsewhere" / ckpt.name
    shutil.copytree(ckpt, moved)
    assert checkpoint_artifact(moved, "run1", 12).digest == first.digest  # a copied run dir: the same version
    (moved / "model.safetensors").write_bytes(b"other weights")
    assert checkpoint_artifact(moved, "run1", 12).digest != first.digest  # other weights: another version
    assert sorted(first.manifest.entries) == ["model.safetensors", "train_state.json"]
    assert first.manifest.entries["model.safetensors"].ref == (ckpt / "model.safetensors").as_uri()


def test_a_dataset_artifact_leaves_out_derived_and_hidden_entries(tmp_path):
    data = tmp_path / "lift" / "dino_wm"
    (data / "obses").mkdir(parents=True)
    (data / "obses" / "episode_00000.mp4").write_bytes(b"mp4")
    (data / "meta.json").write_text("{}")
    (data / "feature_cache" / "enc").mkdir(parents=True)
    (data / "feature_cache" / "enc" / "features.npy").write_bytes(b"cache")
    (data / ".tmp-x").write_text("partial")
    art = dataset_artifact(data, skip=("feature_cache",), metadata={"n_episodes": 1})
    assert art.name == f"dataset-{tmp_path.name}-lift-dino_wm"
    assert sorted(art.manifest.entries) == ["meta.json", "obses/episode_00000.mp4"] and art.type == "dataset"
    assert art.metadata == {"n_episodes": 1}


def test_offline_runs_log_and_use_the_same_version(ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    train = offline_run(tmp_path / "train", job_type="train")
    train.log_artifact(checkpoint_artifact(ckpt, train.id, 12), aliases=["step_12"])
    train_id = train.id
    train.finish()
    evaluation = offline_run(tmp_path / "eval", job_type="plan")
    use_artifact(evaluation, checkpoint_artifact(ckpt, train_id, 12))  # wandb's own use_artifact refuses offline
    evaluation.finish()
    (logged,) = offline_runs(tmp_path / "train")[0].artifact(f"checkpoint-{train_id}", used=False)
    (used,) = offline_runs(tmp_path / "eval")[0].artifact(f"checkpoint-{train_id}", used=True)
    assert used["digest"] == logged["digest"] and used["type"] == logged["type"] == "model"
    assert "step_12" in logged["aliases"] and used["metadata"] == {"step": 12}
