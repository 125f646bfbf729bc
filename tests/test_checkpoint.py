"""Checkpoints: atomic step dirs + latest pointer, RNG round trip, checkpoint -> load -> identical outputs."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from datasets.normalizer import Normalizer
from training.loop.trainer import encoder_metadata
from training.model_config import world_model_from_cfg
from training.run_dir.checkpoint import (
    latest_checkpoint,
    load_model_file,
    load_optim_file,
    resolve_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from training.run_dir.run_loading import load_world_model

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
    for which in (7, "7", "foo"):  # a step with no checkpoint, or not a step: the steps there are named
        with pytest.raises(FileNotFoundError, match=r"a training step that has one \(5, 10\)"):
            resolve_checkpoint(tmp_path, which)
    assert resolve_checkpoint(tmp_path, "10") == d2 and resolve_checkpoint(tmp_path, "step_00000005") == d1


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
    model = world_model_from_cfg(cfg, proprio_dim=5, state_dim=6, action_dim=7)
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


def test_files_and_directories_are_fsynced_before_latest_moves(tmp_path, monkeypatch):
    import os

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(a, b):
        events.append(("replace", str(b)))
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    final = save_checkpoint(tmp_path, 7, {"w": torch.ones(2)}, {"x": torch.zeros(1)}, {"epoch": 1}, {})
    root = str(tmp_path / "checkpoints")
    latest_at = events.index(("replace", f"{root}/latest"))
    before = [p for kind, p in events[:latest_at] if kind == "fsync"]
    assert {os.path.basename(p) for p in before} >= {"model.safetensors", "optim.pt", "train_state.json"}
    assert root in before  # the step directory's rename is on disk before latest names it
    rename_at = events.index(("replace", str(final)))
    assert any(".step_00000007.tmp-" in p for kind, p in events[:rename_at] if kind == "fsync")  # the dir itself
    assert events[-1] == ("fsync", root)  # and the latest swap


def test_stale_temp_dirs_of_a_killed_write_are_cleaned_up(tmp_path, caplog):
    from training.run_dir.checkpoint import remove_stale_temps

    root = tmp_path / "checkpoints"
    good = save_checkpoint(tmp_path, 1, {"w": torch.ones(1)}, {}, {"epoch": 1}, {})
    (root / ".step_00000002.tmp-abc123").mkdir()          # killed while writing step 2
    (root / ".step_00000002.tmp-def456").mkdir()
    (root / ".step_00000002.tmp-def456" / "optim.pt").write_bytes(b"partial")
    (root / ".latest.tmp4242").symlink_to("step_00000001")  # killed between symlink and replace
    moved = root / ".step_00000003.old-77"                  # killed between the two renames of a re-write
    save_checkpoint(tmp_path, 3, {"w": torch.ones(1)}, {}, {"epoch": 3}, {}).rename(moved)
    (root / ".step_00000001.old-78").mkdir()                 # the new step_00000001 was already in place
    other = tmp_path / "other_run" / "checkpoints" / ".step_00000005.tmp-x"
    other.mkdir(parents=True)
    done = remove_stale_temps(tmp_path)
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_00000001", "step_00000003"]
    assert "restored step_00000003" in done and len(done) == 5
    assert load_model_file(root / "step_00000003")[0]["w"].tolist() == [1.0]
    assert latest_checkpoint(tmp_path) == root / "step_00000003" and good.is_dir()  # latest names it again
    assert other.is_dir()  # other run dirs are not touched
    assert remove_stale_temps(tmp_path) == []


def test_restore_gives_the_scaler_and_each_rank_its_own_state(tmp_path):
    """An fp16 run's GradScaler state and every rank's RNG come back from the checkpoint."""
    from types import SimpleNamespace

    from training.run_dir.resume import restore

    cfg = OmegaConf.create(CFG)
    torch.manual_seed(0)
    model = world_model_from_cfg(cfg, proprio_dim=5, state_dim=6, action_dim=7)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=3)
    scaler._lazy_init_scale_growth_tracker(torch.device("cpu"))
    scaler.update(new_scale=123.0)
    states = {}
    for rank in (0, 1):
        torch.manual_seed(100 + rank)
        states[str(rank)] = rng_state()
    save_checkpoint(tmp_path, 4, model.trainable_state_dict(),
                    {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "scaler": scaler.state_dict()},
                    {"epoch": 2, "rng": states, "wandb_run_id": "abc"}, encoder_metadata(model))
    fresh = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    acc = SimpleNamespace(scaler=fresh, process_index=1)
    got = restore(latest_checkpoint(tmp_path), model, opt, sched, acc)
    assert (got.epoch, got.step, got.wandb_run_id) == (2, 4, "abc")
    assert fresh.get_scale() == 123.0 and fresh.state_dict()["growth_interval"] == 3
    after_restore = torch.rand(3)
    torch.manual_seed(101)
    torch.testing.assert_close(after_restore, torch.rand(3))  # rank 1's stream, not rank 0's
    acc = SimpleNamespace(scaler=None, process_index=2)  # a rank the run did not have: rank 0's state
    restore(latest_checkpoint(tmp_path), model, opt, sched, acc)
    after_restore = torch.rand(3)
    torch.manual_seed(100)
    torch.testing.assert_close(after_restore, torch.rand(3))
