"""wandb across a crash and a resume: every (metric, step) is logged once, read back from wandb's own files.

wandb runs offline here (a real run; no network). The offline ``run-<id>.wandb`` files are read with a
small reader of their record log (LevelDB log format: 7-byte header, 32 KiB blocks) and wandb's protobufs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _synthetic_data import make_dataset

from training.run_dir.checkpoint import latest_checkpoint, load_train_state

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 32768


def wandb_history(path: Path) -> list[tuple[int, set[str]]]:
    """(step, metric keys) of every history record of an offline ``.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    pos, records, part = 7, [], b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        payload, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            records.append(payload)
        elif kind in (2, 3):
            part = (b"" if kind == 2 else part) + payload
        elif kind == 4:
            records.append(part + payload)
    out = []
    for raw in records:
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(raw)
        if rec.WhichOneof("record_type") == "history":
            keys = {i.key or "/".join(i.nested_key) for i in rec.history.item}
            out.append((rec.history.step.num, {k for k in keys if not k.startswith("_") and k != "epoch"}))
    return out


def segments(run: Path) -> list[list[tuple[int, set[str]]]]:
    files = sorted(run.glob("wandb/offline-run-*/run-*.wandb"))
    return [wandb_history(f) for f in files]


def train(data: Path, run: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "train_robomimic_compress.py", "env=demo", f"env.data_path={data}",
           f"hydra.run.dir={run}", "encoder.pretrained=false", "encoder.num_layers=1", "img_size=28",
           "wandb.mode=offline", "training.batch_size=4", "training.warmup_steps=2", "training.val_ratio=0.25",
           "gpu.auto_select=false", "training.log_every=2", "training.save_every=2", "action_prior.train=false", *extra]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_a_resumed_run_logs_every_step_once(tmp_path):
    data = make_dataset(tmp_path / "d", n_episodes=4, t_max=24, size=28)
    run = tmp_path / "run"
    train(data, run, "training.epochs=4")
    # the crash: epochs 3-4 were logged to wandb, but their checkpoint never reached the disk
    last = latest_checkpoint(run)
    assert load_train_state(last)["epoch"] == 4
    os.replace(last, tmp_path / "lost")
    (run / "checkpoints" / "latest").unlink()
    resume_at = load_train_state(latest_checkpoint(run))["step"]
    proc = train(data, run, "training.epochs=6")
    assert "already holds steps up to" in proc.stdout + proc.stderr
    first, second = segments(run)
    logged = [(step, key) for seg in (first, second) for step, keys in seg for key in keys]
    assert len(logged) == len(set(logged)), "a (metric, step) was logged twice"
    train_steps = [s for seg in (first, second) for s, keys in seg if "train/loss" in keys]
    assert train_steps == sorted(train_steps) and train_steps[0] == 2
    assert min(s for s, _ in second) > max(s for s, _ in first) > resume_at  # the replayed steps are not re-sent
    final = load_train_state(latest_checkpoint(run))
    step_per_epoch = final["step"] // 6
    assert train_steps == list(range(2, final["step"] + 1, 2))  # nothing lost either (log_every=2)
    val_steps = [s for seg in (first, second) for s, keys in seg if "val/pred_loss" in keys]
    assert val_steps == [step_per_epoch * e for e in range(1, 7)]
    assert {load_train_state(d)["wandb_run_id"] for d in (run / "checkpoints").glob("step_*")} == \
        {first_id(run)}


def first_id(run: Path) -> str:
    ids = {p.name.split("-")[-1] for p in run.glob("wandb/offline-run-*")}
    assert len(ids) == 1, ids  # both segments are the same wandb run
    return ids.pop()


# ---------------------------------------------------------------- group, job type and lineage (in-process, offline)

def fake_dataset(root: Path) -> Path:
    (root / "obses").mkdir(parents=True)
    (root / "obses" / "episode_00000.mp4").write_bytes(b"frames")
    (root / "meta.json").write_text('{"env_name": "Lift", "n_episodes": 1, "source_sha256": "abc", "extra": {}}')
    (root / "feature_cache" / "enc").mkdir(parents=True)
    (root / "feature_cache" / "enc" / "features.npy").write_bytes(b"derived")
    return root


def test_the_training_run_sits_in_its_evaluations_group_and_uses_its_dataset(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from tests.wandb_offline import offline_runs
    from training.loop.wandb_setup import init_wandb, run_group

    monkeypatch.setenv("WANDB_MODE", "offline")
    data, run_dir = fake_dataset(tmp_path / "demo" / "lift" / "dino_wm"), tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run_info.json").write_text(json.dumps({"dataset_path": str(data)}))
    cfg_wandb = OmegaConf.create({"project": "dino-wm-robomimic", "name": "demo_lift", "mode": "offline"})
    run = init_wandb(cfg_wandb, run_dir, {"name": "demo_lift"}, None, {"encoder_pretrained": False})
    run.finish()
    (read,) = offline_runs(run_dir)
    assert (read.group, read.job_type, read.name) == ("demo_lift", "train", "demo_lift")
    (dataset,) = read.artifact("dataset-demo-lift-dino_wm", used=True)
    assert dataset["type"] == "dataset" and sorted(dataset["entries"]) == ["meta.json", "obses/episode_00000.mp4"]
    assert dataset["metadata"] == {"path": str(data), "env_name": "Lift", "n_episodes": 1, "source_sha256": "abc"}
    # the evaluations' group (plan.py): the run's wandb.name, else its name, else the run dir's name
    assert run_group(OmegaConf.create({"name": None}), {"name": "robomimic_can"}, run_dir) == "robomimic_can"
    assert run_group(OmegaConf.create({}), {}, run_dir) == "run"


def test_each_checkpoint_is_an_artifact_of_the_run_it_names(tmp_path, monkeypatch):
    import torch
    import wandb

    from tests.wandb_offline import offline_runs
    from training.loop.wandb_setup import log_checkpoint
    from training.run_dir.checkpoint import save_checkpoint

    monkeypatch.setenv("WANDB_MODE", "offline")
    model = {"w": torch.zeros(2)}

    def save(step, run_id):
        saved = save_checkpoint(tmp_path / "run", step, model, {}, {"wandb_run_id": run_id}, {})
        log_checkpoint(saved, step, run_id)  # as the trainer's checkpoint step does

    save(1, "nobody")  # no active run: nothing to log to (and no error)
    run = wandb.init(project="dino-wm-robomimic", mode="offline", dir=str(tmp_path), reinit="finish_previous",
                     settings=wandb.Settings(console="off", silent=True))
    save(2, run.id)
    save(3, "another-run")  # a checkpoint of another run is not logged into this one
    save(4, run.id)
    run.finish()
    logged = offline_runs(tmp_path)[0].artifact(f"checkpoint-{run.id}", used=False)
    assert [a["metadata"]["step"] for a in logged] == [2, 4]
    assert [sorted(a["aliases"]) for a in logged] == [["latest", "step_2"], ["latest", "step_4"]]
    assert sorted(logged[1]["entries"]) == ["model.safetensors", "optim.pt", "train_state.json"]
    assert logged[1]["entries"]["model.safetensors"].endswith("/run/checkpoints/step_00000004/model.safetensors")
