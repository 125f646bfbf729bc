"""kill -9 of the training process at random points, during steps and during checkpoint writes.

An uninterrupted run is the reference. A second run in another directory is killed (SIGKILL) again and
again and restarted each time; it must end with the reference's weights: every checkpoint written after
a resume is bit-identical to the reference's checkpoint of the same step, every complete checkpoint
loads, and the temporary directories a kill leaves are gone after the restart. The counts are printed.

The training runs in processes forked from a fresh forkserver (torch and the project imported once), so
a kill/restart costs milliseconds of start-up instead of seconds; the code path is ``training.loop.trainer.train``
as called by ``train_robomimic_compress.py``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import statistics
import time
from pathlib import Path

import pytest
import torch
from _synthetic_data import make_dataset
from safetensors.torch import load_file

from training.run_dir.checkpoint import latest_checkpoint, load_optim_file, load_train_state

pytestmark = pytest.mark.slow
N_KILLS = 12
EPOCHS = 30
SEED = 20260
OVERRIDES = ["env=demo", "encoder.pretrained=false", "encoder.num_layers=1", "img_size=28", "wandb.mode=disabled",
             "training.batch_size=4", "training.warmup_steps=2", "training.val_ratio=0.25", "gpu.auto_select=false",
             f"training.epochs={EPOCHS}", "training.save_every=1", "training.val_every=3"]


def _train_child(cfg_yaml: str, run_dir: str, data: str) -> None:
    """One training process (forked from the forkserver): exit code 0 when the run finished."""
    import logging

    from accelerate.state import AcceleratorState
    from omegaconf import OmegaConf

    from training.loop.trainer import train

    logging.disable(logging.CRITICAL)
    torch.set_num_threads(1)
    AcceleratorState._reset_state(True)
    Path(run_dir).mkdir(parents=True, exist_ok=True)  # Hydra makes the run dir in train_robomimic_compress.py
    os._exit(train(OmegaConf.create(cfg_yaml), Path(run_dir), Path(data)))


def _config(data: Path) -> str:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from tests.conftest import ROOT

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train_robomimic_compress", overrides=[*OVERRIDES, f"env.data_path={data}"])
    return OmegaConf.to_yaml(cfg, resolve=True)


def _temps(run: Path) -> list[str]:
    root = run / "checkpoints"
    return [p.name for p in root.iterdir() if p.name.startswith(".")] if root.is_dir() else []


def _steps(run: Path) -> dict[int, Path]:
    root = run / "checkpoints"
    return {int(p.name[5:]): p for p in root.glob("step_*")} if root.is_dir() else {}


def _loads(ckpt: Path) -> bool:
    try:
        load_file(ckpt / "model.safetensors"), load_optim_file(ckpt), load_train_state(ckpt)
        return True
    except Exception:  # noqa: BLE001 - any failure to load is a corrupt checkpoint
        return False


def _same(a: Path, b: Path) -> bool:
    """Weights, optimizer/scheduler state, epoch/step and every rank's RNG state are identical."""
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    if wa.keys() != wb.keys() or any(not torch.equal(wa[k], wb[k]) for k in wa):
        return False
    oa, ob = load_optim_file(a), load_optim_file(b)
    if json.dumps(oa["scheduler"]) != json.dumps(ob["scheduler"]):
        return False
    sa, sb = oa["optimizer"]["state"], ob["optimizer"]["state"]
    if sa.keys() != sb.keys() or any(not torch.equal(sa[k][n], sb[k][n]) for k in sa for n in sa[k]):
        return False
    ta, tb = load_train_state(a), load_train_state(b)
    return all(ta[k] == tb[k] for k in ("epoch", "step", "rng"))


class Chain:
    """Restarts of one run dir, each killed at a chosen point; keeps the counts."""

    def __init__(self, ctx, cfg: str, run: Path, data: Path, ref: Path):
        self.ctx, self.cfg, self.run, self.data, self.ref = ctx, cfg, run, data, ref
        self.counts = dict(kills=0, during_steps=0, during_writes=0, after_rename=0, resumes=0, compared=0,
                           identical=0, corrupt=0, temps_left_by_kills=0, temps_after_restart=0)

    def start(self):
        before = latest_checkpoint(self.run)
        self.resume_step = load_train_state(before)["step"] if before else -1
        p = self.ctx.Process(target=_train_child, args=(self.cfg, str(self.run), str(self.data)))
        p.start()
        return p

    def after(self, p, killed: bool) -> None:
        p.join()
        c = self.counts
        if killed:
            c["kills"] += 1
            temps = [t for t in _temps(self.run) if ".tmp-" in t]
            c["temps_left_by_kills"] += len(temps)
            latest = latest_checkpoint(self.run)
            newest = max(_steps(self.run), default=-1)
            if temps:
                c["during_writes"] += 1
            elif latest is not None and newest > load_train_state(latest)["step"]:
                c["after_rename"] += 1  # step dir renamed into place, latest not yet moved
            else:
                c["during_steps"] += 1
        else:
            assert p.exitcode == 0, f"the restarted run exited {p.exitcode}"
        c["corrupt"] += sum(not _loads(d) for d in _steps(self.run).values())
        new = {s: d for s, d in _steps(self.run).items() if s > self.resume_step}
        if self.resume_step >= 0 and new:
            c["resumes"] += 1
            first = min(new)
            c["compared"] += 1
            c["identical"] += _same(new[first], _steps(self.ref)[first])

    def kill_at_first_checkpoint(self, p, timeout: float) -> float:
        """Kill as soon as the first checkpoint of this start is complete; returns the seconds it took."""
        t0, done = time.monotonic(), set(_steps(self.run))
        while time.monotonic() - t0 < timeout and p.exitcode is None and not set(_steps(self.run)) - done:
            time.sleep(0.002)
        p.kill()
        return time.monotonic() - t0

    def kill_in_steps_after_a_checkpoint(self, p, seconds: float, timeout: float = 600) -> bool:
        """Wait until this start has written a checkpoint (so the resume is compared whatever the machine's
        load), then kill ``seconds`` later, in the steps of the next epoch."""
        t0, done = time.monotonic(), set(_steps(self.run))
        while time.monotonic() - t0 < timeout and p.exitcode is None and not set(_steps(self.run)) - done:
            time.sleep(0.002)
        return self.kill_after(p, seconds)

    def kill_after(self, p, seconds: float) -> bool:
        p.join(seconds)
        if p.exitcode is not None:
            return False
        p.kill()
        return True

    def kill_in_write(self, p, wait: float, window: float) -> bool:
        """After ``wait`` s, kill as soon as a checkpoint write (a .step_*.tmp-* dir) is seen."""
        p.join(wait)
        root, deadline = self.run / "checkpoints", time.monotonic() + window
        while p.exitcode is None and time.monotonic() < deadline:
            if root.is_dir() and any(".tmp-" in n for n in _names(root)):
                p.kill()
                return True
        if p.exitcode is not None:
            return False
        p.kill()
        return True


def _names(root: Path) -> list[str]:
    try:
        return [e.name for e in os.scandir(root)]
    except FileNotFoundError:
        return []


def test_kill9_at_random_points_resumes_bit_identically(tmp_path, capsys):
    data = make_dataset(tmp_path / "data", n_episodes=4, t_max=24, size=28)
    cfg = _config(data)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["training.loop.trainer", "safetensors.torch", "accelerate"])
    ref = tmp_path / "reference"
    t0 = time.time()
    p = ctx.Process(target=_train_child, args=(cfg, str(ref), str(data)))
    p.start()
    p.join(600)
    assert p.exitcode == 0, f"reference run exited {p.exitcode}"
    times = [load_train_state(d)["time"] for _, d in sorted(_steps(ref).items())]
    assert len(times) == EPOCHS
    epoch_s = statistics.median(b - a for a, b in zip(times, times[1:]))
    setup_s = times[0] - t0 - epoch_s  # fork, set-up and the feature cache, before the first step

    rng = random.Random(SEED)
    chain = Chain(ctx, cfg, tmp_path / "killed", data, ref)
    p = chain.start()  # the first run of the chain is killed just after its first checkpoint, which gives
    restart_s = chain.kill_at_first_checkpoint(p, 600) - epoch_s  # the set-up time of a restart
    chain.after(p, killed=True)
    killed = True
    while chain.counts["kills"] < N_KILLS:
        p = chain.start()
        if chain.counts["kills"] % 2:
            killed = chain.kill_in_write(p, restart_s + rng.uniform(0.0, 1.5) * epoch_s, 4 * epoch_s + 2)
        else:
            killed = chain.kill_in_steps_after_a_checkpoint(p, rng.uniform(0.1, 0.8) * epoch_s)
        chain.after(p, killed)
        if not killed:
            break
    p = chain.start()
    chain.after(p, killed=False)
    chain.counts["temps_after_restart"] = len(_temps(chain.run))
    c = chain.counts
    with capsys.disabled():
        print(f"\nfault test: {c['kills']} x kill -9 ({c['during_steps']} during steps, {c['during_writes']} during "
              f"a checkpoint write, {c['after_rename']} between the rename and the latest swap); {c['resumes']} "
              f"resumes wrote a checkpoint: {c['identical']}/{c['compared']} bit-identical to the uninterrupted "
              f"run's; corrupt checkpoints: {c['corrupt']}; temp dirs left by the kills: "
              f"{c['temps_left_by_kills']}, after the restarts: {c['temps_after_restart']} "
              f"(an epoch {epoch_s * 1000:.0f} ms, set-up {setup_s:.2f} s first / {restart_s:.2f} s on a restart)")
    assert c["kills"] >= 10 and c["during_writes"] + c["after_rename"] >= 3 and c["during_steps"] >= 3
    assert c["corrupt"] == 0 and c["temps_after_restart"] == 0
    assert c["compared"] >= 5 and c["identical"] == c["compared"]
    final, reference = latest_checkpoint(chain.run), latest_checkpoint(ref)
    assert final.name == reference.name and _same(final, reference)
    assert all(_same(d, _steps(ref)[s]) for s, d in _steps(chain.run).items())
