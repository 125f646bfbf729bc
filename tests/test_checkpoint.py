"""Checkpoints: atomic step dirs + latest pointer, RNG round trip, checkpoint -> load -> identical outputs."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from datasets.normalizer import Normalizer
from models.factory import build_world_model
from models.loading import load_world_model
from training.checkpoint import (
    latest_checkpoint,
    load_model_file,
    load_optim_file,
    resolve_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from training.trainer import encoder_metadata

CFG = {
    "projected_dim": 16, "alignment_dim": 4, "action_emb_dim": 8, "proprio_emb_dim": 8, "num_hist": 2,
    "num_pred": 1, "frameskip": 2, "img_size": 28,
    "encoder": {"pretrained": False, "weights_path": None, "seed": 0, "feature_key": "x_norm_patchtokens",
                "num_layers": 1, "cache": True},
    "predictor": {"depth": 1, "heads": 4, "mlp_ratio": 2.0, "dropout": 0.0},
    "model": {"projection_hidden": 32, "align_weight": 1.0, "init_temperature": 0.1, "dyn_weight": 0.5,
              "decoder": True, "decoder_weight": 1.0, "target_stop_grad": True, "residual": True},
    "training": {"grad_checkpointing": False},
}


def test_rng_state_round_trip():
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    st = json.loads(json.dumps(rng_state()))
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    set_rng_state(st)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_atomic_step_dirs_and_latest(tmp_path):
    sd = {"w": torch.ones(2)}
    assert latest_checkpoint(tmp_path) is None
    d1 = save_checkpoint(tmp_path, 5, sd, {"x": torch.zeros(1)}, {"epoch": 1}, {"k": "v"})
    d2 = save_checkpoint(tmp_path, 10, {"w": torch.full((2,), 2.0)}, {"x": torch.ones(1)}, {"epoch": 2}, {"k": "v"})
    assert d1.name == "step_00000005" and latest_checkpoint(tmp_path) == d2
    assert (tmp_path / "checkpoints" / "latest" / "model.safetensors").is_file()
    assert resolve_checkpoint(tmp_path, 5) == d1 and resolve_checkpoint(tmp_path, "latest") == d2
    w, meta = load_model_file(d2)
    assert w["w"].tolist() == [2.0, 2.0] and meta == {"k": "v"}
    assert load_optim_file(d1)["x"].item() == 0.0
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]
    with pytest.raises(FileNotFoundError):
        resolve_checkpoint(tmp_path, 7)


def test_failed_write_leaves_previous_checkpoint(tmp_path, monkeypatch):
    good = save_checkpoint(tmp_path, 1, {"w": torch.ones(1)}, {}, {"epoch": 1}, {})

    def disk_full(*a, **k):
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, 2, {"w": torch.ones(1)}, {}, {"epoch": 2}, {})
    assert latest_checkpoint(tmp_path) == good and not (tmp_path / "checkpoints" / "step_00000002").exists()


def make_run(tmp_path):
    cfg = OmegaConf.create(CFG)
    torch.manual_seed(0)
    model = build_world_model(cfg, proprio_dim=5, state_dim=6)
    for p in model.parameters():  # move every trainable tensor away from its initial value
        if p.requires_grad:
            p.data.add_(0.1 * torch.randn_like(p))
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(cfg, tmp_path / ".hydra" / "config.yaml")
    (tmp_path / "run_info.json").write_text(json.dumps({
        "dataset_path": "/data/x", "split": {"train": [0, 2], "val": [1]},
        "dims": {"proprio_dim": 5, "state_dim": 6, "action_dim": 7}}))
    Normalizer(*(torch.zeros(n) if i % 2 == 0 else torch.ones(n) for i, n in enumerate([7, 7, 5, 5, 6, 6]))).save(tmp_path)
    save_checkpoint(tmp_path, 3, model.trainable_state_dict(), {}, {"epoch": 1}, encoder_metadata(model))
    return cfg, model


def test_checkpoint_load_gives_identical_outputs(tmp_path):
    cfg, model = make_run(tmp_path)
    run = load_world_model(tmp_path)
    assert run.step == 3 and run.split == {"train": [0, 2], "val": [1]} and not run.model.training
    obs = {"visual": torch.rand(2, 2, 3, 30, 30), "proprio": torch.randn(2, 2, 5)}
    act = torch.randn(2, 4, 14)
    model.eval()
    torch.testing.assert_close(run.model.rollout(obs, act), model.rollout(obs, act), rtol=0, atol=0)
    torch.testing.assert_close(run.model.decode(run.model.encode_obs(obs)), model.decode(model.encode_obs(obs)))
    assert run.normalizer.normalize_action(torch.ones(1, 14)).shape == (1, 14)


def test_load_refuses_other_encoder_weights_and_uses_the_run_config(tmp_path):
    make_run(tmp_path)
    cfg = OmegaConf.load(tmp_path / ".hydra" / "config.yaml")
    cfg.encoder.seed = 1  # the run's config now describes another random encoder
    OmegaConf.save(cfg, tmp_path / ".hydra" / "config.yaml")
    with pytest.raises(RuntimeError, match="encoder weights hash"):
        load_world_model(tmp_path)
