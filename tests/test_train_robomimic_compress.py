"""train_robomimic_compress.py end to end (subprocesses, tiny synthetic data, random 1-layer encoder)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _launch import free_port, run_together
from _synthetic_data import make_dataset
from omegaconf import OmegaConf
from safetensors.torch import load_file

from training.run_dir.checkpoint import latest_checkpoint, load_train_state
from training.run_dir.run_loading import load_world_model

ROOT = Path(__file__).resolve().parents[1]
TINY = ["encoder.pretrained=false", "encoder.num_layers=1", "img_size=28", "wandb.mode=disabled",
        "training.batch_size=4", "training.warmup_steps=2", "training.val_ratio=0.25", "gpu.auto_select=false",
        "action_prior.train=false"]  # the world model's training only (tests/test_action_prior.py fits priors)


def train(data: Path, run: Path, *extra: str, launcher: list[str] | None = None, check: bool = True,
          timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [*(launcher or [sys.executable]), "train_robomimic_compress.py", "env=demo",
           f"env.data_path={data}", f"hydra.run.dir={run}", *TINY, *extra]
    env = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def syn(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("train") / "d", n_episodes=4, t_max=24, size=28)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(syn, tmp_path):
    train(syn, tmp_path / "full", "training.epochs=4")
    train(syn, tmp_path / "part", "training.epochs=2")
    assert load_train_state(latest_checkpoint(tmp_path / "part"))["epoch"] == 2
    # the resume names only the run dir and what changes: the data path and the tiny model come from the run
    env = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "train_robomimic_compress.py", f"hydra.run.dir={tmp_path / 'part'}",
                           "training.epochs=4"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming from" in proc.stderr + proc.stdout
    written = OmegaConf.load(tmp_path / "part" / ".hydra" / "config.yaml")  # Hydra's defaults replaced by the run's
    assert written.env.data_path == str(syn) and written.img_size == 28 and written.training.epochs == 4
    full = load_file(tmp_path / "full" / "checkpoints" / "latest" / "model.safetensors")
    part = load_file(tmp_path / "part" / "checkpoints" / "latest" / "model.safetensors")
    assert full.keys() == part.keys()
    for k in full:
        torch.testing.assert_close(part[k], full[k], rtol=0, atol=0, msg=k)
    st = load_train_state(latest_checkpoint(tmp_path / "part"))
    assert st["epoch"] == 4 and st["step"] == load_train_state(latest_checkpoint(tmp_path / "full"))["step"]
    # what a resume changed is the run's own from then on: a later bare restart does not go back to 2 epochs
    assert json.loads((tmp_path / "part" / "run_info.json").read_text())["config"]["training"]["epochs"] == 4
    # a rerun of a finished run trains no further (grad_checkpointing is a training key)
    train(syn, tmp_path / "part", "training.grad_checkpointing=true")
    assert load_train_state(latest_checkpoint(tmp_path / "part"))["step"] == st["step"]
    # the model config is frozen at the first launch: a resume that changes it is refused, and
    # planning keeps rebuilding the model the checkpoint was trained with
    proc = train(syn, tmp_path / "part", "training.epochs=5", "model.residual=false", check=False)
    assert proc.returncode == 2 and "different model/data config (model.residual)" in proc.stderr + proc.stdout
    assert OmegaConf.load(tmp_path / "part" / ".hydra" / "config.yaml").model.residual is True
    from training.run_dir.run_loading import load_world_model

    assert load_world_model(tmp_path / "part").model.residual is True
    # a bad value given on a resume is refused before it is recorded: the run resumes as before
    info = (tmp_path / "part" / "run_info.json").read_text()
    proc = train(syn, tmp_path / "part", "training.epochs=abc", check=False)
    assert proc.returncode == 2 and "training.epochs='abc' is not a whole number" in proc.stdout + proc.stderr
    assert (tmp_path / "part" / "run_info.json").read_text() == info
    assert OmegaConf.load(tmp_path / "part" / ".hydra" / "config.yaml").training.epochs == 4


@pytest.mark.parametrize("override, says", [
    ("wandb.mode=ofline", "wandb.mode='ofline' is not one of"),
    ("encoder.name=vitb16", "encoder.name='vitb16' is not an encoder this project builds"),
    ("env.data_path=/nonexistent", "is not a converted dataset directory"),
    ("training.epochs=abc", "training.epochs='abc' is not a whole number"),
    ("img_size=100", "img_size=100 is not a multiple of the encoder's 14-pixel patch"),
])
def test_a_refused_setting_is_one_line_and_leaves_no_run_dir(syn, tmp_path, override, says):
    proc = train(syn, tmp_path / "run", override, check=False, timeout=120)
    out = proc.stdout + proc.stderr  # Hydra's console log is on stdout
    assert proc.returncode == 2 and "Traceback" not in out, out[-2000:]
    assert says in out.strip().splitlines()[-1]
    assert not (tmp_path / "run").exists()  # Hydra's .hydra/ and the log files go with it


def test_nonfinite_loss_stops_cleanly_and_keeps_the_last_checkpoint(syn, tmp_path):
    run, data = tmp_path / "run", tmp_path / "data"
    make_dataset(data, n_episodes=4, t_max=24, size=28)
    train(data, run, "training.epochs=1")
    good = latest_checkpoint(run)
    before = {p.name: p.read_bytes() for p in good.iterdir()}
    torch.save(torch.full_like(torch.load(data / "actions.pth", weights_only=True), float("nan")), data / "actions.pth")
    proc = train(data, run, "training.epochs=3", check=False)  # the same run and data path, now with NaN actions
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "non-finite loss" in proc.stderr + proc.stdout
    assert latest_checkpoint(run) == good
    assert {p.name: p.read_bytes() for p in good.iterdir()} == before


def test_bad_data_path_is_one_clear_error(tmp_path):
    proc = train(tmp_path / "nowhere", tmp_path / "run", check=False)
    assert proc.returncode == 2 and "not a converted dataset directory" in proc.stderr + proc.stdout


def test_bad_gpu_selection_settings_are_one_clear_error(syn, tmp_path):
    proc = train(syn, tmp_path / "run", "min_free_memory_gb=-1", "gpu.auto_select=true", check=False)
    assert proc.returncode == 2 and "GPU selection: min_free_memory_gb must be" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_two_process_cpu_accelerate_launch(syn, tmp_path):
    if shutil.which("accelerate") is None and not (Path(sys.executable).parent / "accelerate").exists():
        pytest.fail("accelerate CLI not installed")
    acc = str(Path(sys.executable).parent / "accelerate")
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    cmd = [acc, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--main_process_port", str(free_port()),
           "train_robomimic_compress.py", "env=demo", f"env.data_path={syn}", f"hydra.run.dir={tmp_path / 'ddp'}",
           *TINY, "debug=true"]
    proc = run_together([cmd], ROOT, env, timeout=400)[0]
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:]
    assert out.count("training finished") >= 1 and "multi-process" in out
    assert (tmp_path / "ddp" / "checkpoints" / "latest" / "model.safetensors").is_file()
    st = load_train_state(latest_checkpoint(tmp_path / "ddp"))
    assert sorted(st["rng"]) == ["0", "1"]  # each rank's own RNG state, restored by that rank on resume
    assert not list((tmp_path / "ddp").glob(".shared-check-*"))  # the shared-run-dir probe is cleaned up


def test_tiny_trained_run_loads(tiny_trained_run):
    """The shared session run (tiny converted Lift dataset) has the interface's outputs and loads back."""
    assert (tiny_trained_run / "checkpoints" / "latest" / "model.safetensors").is_file()
    assert (tiny_trained_run / ".hydra" / "config.yaml").is_file()
    assert (tiny_trained_run / "logs" / "train.log").is_file()
    run = load_world_model(tiny_trained_run)
    assert not run.model.encoder.pretrained and "RANDOM" in (tiny_trained_run / "logs" / "train.log").read_text()
    assert run.step > 0 and run.split["val"] and not set(run.split["train"]) & set(run.split["val"])
    t0 = run.model.num_hist
    obs = {"visual": torch.rand(1, t0, 3, 64, 64), "proprio": torch.zeros(1, t0, run.model.proprio_dim)}
    act = torch.zeros(1, t0 + 2, run.model.action_dim * run.model.frameskip)
    assert run.model.rollout(obs, act).shape[:2] == (1, t0 + 3)


def test_wandb_mode_is_offline_without_a_key(monkeypatch, tmp_path):
    from utils.wandb_mode import resolve_mode

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("NETRC", raising=False)
    assert resolve_mode(None) == "offline"
    assert resolve_mode("disabled") == "disabled"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode(None) == "online"
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.delenv("WANDB_API_KEY")
    assert resolve_mode(None) == "online"


def test_training_from_frames_without_the_cache(syn, tmp_path):
    proc = train(syn, tmp_path / "frames", "debug=true", "encoder.cache=false", "model.decoder=true")
    assert "re-encodes the frames" in proc.stdout + proc.stderr
    run = load_world_model(tmp_path / "frames")
    assert run.model.has_decoder and run.step > 0


def test_no_reachable_dinov2_weights_is_one_clear_error(syn, tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_CACHE": str(tmp_path / "hf" / "hub")}
    cmd = [sys.executable, "train_robomimic_compress.py", "env=demo", f"env.data_path={syn}",
           f"hydra.run.dir={tmp_path / 'run'}", "img_size=28", "wandb.mode=disabled", "gpu.auto_select=false"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2
    assert "encoder.weights_path" in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    assert latest_checkpoint(tmp_path / "run") is None


def _batches_per_epoch(log: str, epoch: int) -> int:
    m = re.search(rf"epoch {epoch}/\d+: (\d+)/(\d+) batch \(100%\)", log)
    assert m, log[-3000:]
    return int(m.group(2))


def test_grad_accum_steps_the_last_short_group_at_the_epoch_end(syn, tmp_path):
    """4 micro-batches per optimizer step: an epoch of N batches makes ceil(N / 4) steps, nothing carries over."""
    proc = train(syn, tmp_path / "run", "training.epochs=2", "training.grad_accum=4", "training.log_every=1")
    log = proc.stdout + proc.stderr
    n = _batches_per_epoch(log, 1)
    assert n % 4, f"{n} batches per epoch: pick a grad_accum that leaves a remainder"
    per_epoch = -(-n // 4)
    assert f"epoch 1/2: step {per_epoch}," in log
    assert load_train_state(latest_checkpoint(tmp_path / "run"))["step"] == 2 * per_epoch
    assert "\r" not in proc.stderr  # progress in a log file: plain lines, no tqdm redraws


def test_the_launchers_precision(syn, tmp_path):
    acc = str(Path(sys.executable).parent / "accelerate")
    proc = train(syn, tmp_path / "fp16", "debug=true", "training.grad_checkpointing=true",
                 launcher=[acc, "launch", "--cpu", "--mixed_precision=fp16", "--num_processes", "1",
                           "--num_machines", "1", "--dynamo_backend", "no"])
    assert "mixed precision fp16 from accelerate launch" in proc.stdout + proc.stderr
    cfg = json.loads((tmp_path / "fp16" / "run_info.json").read_text())["config"]
    assert cfg["training"]["mixed_precision"] == "fp16" and cfg["training"]["grad_checkpointing"] is True
    # what `accelerate launch --mixed_precision=fp16 ... training.mixed_precision=bf16` hands the script
    env = {**os.environ, "ACCELERATE_MIXED_PRECISION": "fp16", "WANDB_MODE": "disabled"}
    cmd = [sys.executable, "train_robomimic_compress.py", "env=demo", f"env.data_path={syn}",
           f"hydra.run.dir={tmp_path / 'bf16'}", *TINY, "training.mixed_precision=bf16"]
    bad = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    errors = [line for line in (bad.stdout + bad.stderr).splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and errors[0].endswith(
        "accelerate launch --mixed_precision=fp16 conflicts with training.mixed_precision=bf16: "
        "give one of them (or the same value to both)")
    assert latest_checkpoint(tmp_path / "bf16") is None


def test_compiled_training_step_gives_the_eager_weights(syn, tmp_path):
    """training.compile (here dynamo with its eager backend on the CPU: tracing and guards, no codegen)
    trains the same weights as eager training; the last, shorter batch of each epoch runs eagerly."""
    train(syn, tmp_path / "eager", "training.epochs=2", "training.compile=false")
    proc = train(syn, tmp_path / "compiled", "training.epochs=2", "training.compile=true",
                 "training.compile_backend=eager")
    assert "training step compiled with torch.compile" in proc.stdout + proc.stderr
    assert "torch.compile failed" not in proc.stdout + proc.stderr
    eager = load_file(tmp_path / "eager" / "checkpoints" / "latest" / "model.safetensors")
    compiled = load_file(tmp_path / "compiled" / "checkpoints" / "latest" / "model.safetensors")
    assert eager.keys() == compiled.keys()
    for k in eager:
        torch.testing.assert_close(compiled[k], eager[k], rtol=1e-5, atol=1e-6, msg=k)


def test_a_bad_compile_setting_is_one_clear_error(syn, tmp_path):
    proc = train(syn, tmp_path / "run", "debug=true", "training.compile=fastest", check=False)
    assert proc.returncode == 2 and "compile setting must be" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_task_that_is_not_the_datas_is_refused(tiny_lift_dataset, tmp_path):
    cmd = [sys.executable, "train_robomimic_compress.py", "task=can", f"env.data_path={tiny_lift_dataset}",
           f"hydra.run.dir={tmp_path / 'run'}", *TINY]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "WANDB_MODE": "disabled"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in out, out[-2000:]
    assert out.strip().splitlines()[-1].endswith("holds Lift data (task=lift): give the task of the data")
    assert not (tmp_path / "run").exists()


def test_a_debug_run_fits_its_learned_heads_briefly(monkeypatch, tmp_path):
    from omegaconf import OmegaConf

    import training.action_prior
    import training.cost_to_go
    import training.rollout_readout
    from train_robomimic_compress import DEBUG_HEAD_STEPS, fit_learned_heads

    fitted = []
    monkeypatch.setattr(training.action_prior, "fit_after_training", lambda _d, n, _dev: fitted.append(("prior", n)))
    monkeypatch.setattr(training.cost_to_go, "fit_after_training", lambda _d, n, _dev: fitted.append(("ctg", n)))
    monkeypatch.setattr(training.rollout_readout, "fit_after_training",
                        lambda _d, n, h, k, _dev: fitted.append(("readout", n, h, k)))
    heads = {"action_prior": {"train": True, "steps": 3000}, "cost_to_go": {"train": True, "steps": 2000},
             "rollout_readout": {"train": True, "steps": 1000, "horizon": 9, "max_starts": 6}}
    fit_learned_heads(OmegaConf.create({"debug": True, **heads}), tmp_path)
    fit_learned_heads(OmegaConf.create({"debug": False, **heads}), tmp_path)
    assert fitted == [("ctg", DEBUG_HEAD_STEPS), ("prior", DEBUG_HEAD_STEPS), ("readout", DEBUG_HEAD_STEPS, 9, 6),
                      ("ctg", 2000), ("prior", 3000), ("readout", 1000, 9, 6)]
