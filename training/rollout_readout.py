"""Refit a trained run's state readout on the world model's own open-loop rollouts (``models.rollout_readout``).

    python -m training.rollout_readout RUN_DIR [--horizon 9] [--max-starts 6] [--steps 3000] [--device auto|cpu|cuda:N]

The world model stays frozen. From up to ``--max-starts`` frames of every training-split episode (demonstrations and
their branches, evenly spread, one planning step apart), the predictor rolls out the episode's true actions up to
``--horizon`` planning steps (planning's goal_H); every predicted latent is paired with the true state the episode
reached at that step, and every encoded start frame with its own state (goals and re-plans read real frames). The
readout starts from the run's own and is fitted to both with a mean squared error in normalised state units.
States only: no action is learned.

Held-out figures (the validation split; the training split when it has none), the run's readout against the refit:
the mean squared error on rollouts and on encoded frames, and the object's and the end effector's position error
(RMS, cm) at the end of the rollouts. Output ``RUN_DIR/rollout_readout/{model.safetensors, config.json}``, written
atomically; planning reads it with ``objective.state_readout=rollout``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.alignment import StateReadout
from models.rollout_readout import READOUT_DIR, save_rollout_readout
from tasks.state_layout import position_slices
from utils.atomic_files import atomic_directory
from utils.torch_device import device_argument

log = logging.getLogger(__name__)


@dataclass
class ReadoutPairs:
    """Latents and the true states they should read: ``z`` [N, P, a] (aligned dims), ``state`` [N, S] normalised,
    ``steps`` [N] planning steps the latent was predicted ahead (0: an encoded frame)."""

    z: torch.Tensor
    state: torch.Tensor
    steps: torch.Tensor

    def rollouts(self) -> ReadoutPairs:
        keep = self.steps > 0
        return ReadoutPairs(self.z[keep], self.state[keep], self.steps[keep])

    def frames(self) -> ReadoutPairs:
        keep = self.steps == 0
        return ReadoutPairs(self.z[keep], self.state[keep], self.steps[keep])


def start_frames(length: int, fs: int, max_starts: int) -> list[int]:
    """Up to ``max_starts`` start frames of an episode of ``length`` frames, evenly spread over the frames 0, fs, 2 fs,
    ... that have at least one planning step after them."""
    candidates = list(range(0, length - fs, fs))
    if len(candidates) <= max_starts:
        return candidates
    return [candidates[i] for i in np.linspace(0, len(candidates) - 1, max_starts).round().astype(int)]


@torch.no_grad()
def rollout_pairs(run, episodes, ids: list[int], horizon: int, max_starts: int, features=None,
                  batch_size: int = 256) -> ReadoutPairs:
    """The (latent, true state) pairs of episodes ``ids``: every start frame encoded (steps 0) and the model's rollout
    of the episode's true actions from it, each predicted step paired with the state reached there."""
    from training.action_prior import encode_episodes

    model, norm, fs = run.model, run.normalizer, run.model.frameskip
    device, a = next(model.parameters()).device, model.alignment_dim
    data = encode_episodes(run, episodes, ids, max_steps=1, features=features)  # every frame: z [n, P, D], chunks
    jobs: dict[int, list[tuple[int, int, int]]] = {}  # steps -> (row of the start in data, episode, start frame)
    z_out, s_out, k_out, base = [], [], [], 0
    for e in ids:
        n = episodes.seq_len(e)
        states = norm.normalize_state(episodes.states[e, :n].float())
        for t0 in start_frames(n, fs, max_starts):
            z_out.append(data.z[base + t0][None, ..., :a]), s_out.append(states[t0][None]), k_out.append(0)
            steps = min(horizon, (n - 1 - t0) // fs)
            jobs.setdefault(steps, []).append((base + t0, e, t0))
        base += n
    for steps, starts in sorted(jobs.items()):
        for i in range(0, len(starts), batch_size):
            part = starts[i:i + batch_size]
            rows = torch.tensor([r for r, _, _ in part])
            z0 = data.z[rows][:, None].to(device)  # [b, 1, P, D]
            act = data.chunks[rows[:, None] + fs * torch.arange(steps)[None]].to(device)  # [b, steps, A * fs]
            pred = model.rollout_latents(z0, act)[:, 1:, ..., :a].float().cpu()  # [b, steps, P, a]
            for j, (_, e, t0) in enumerate(part):
                truth = episodes.states[e, [t0 + fs * (k + 1) for k in range(steps)]].float()
                z_out.append(pred[j]), s_out.append(norm.normalize_state(truth))
                k_out += list(range(1, steps + 1))
    return ReadoutPairs(z=torch.cat(z_out), state=torch.cat(s_out), steps=torch.tensor(k_out))


def fit_readout(start: StateReadout, train: ReadoutPairs, steps: int = 3000, batch_size: int = 256, lr: float = 1e-3,
                seed: int = 0, log_every: int = 1000) -> StateReadout:
    """A copy of ``start`` fitted to ``train``'s rollouts and encoded frames (a batch of each per step, Adam with a
    linearly decaying step size)."""
    readout = copy.deepcopy(start).cpu().float().train()
    rollouts, frames = train.rollouts(), train.frames()
    if not len(rollouts.z) or not len(frames.z):
        raise ValueError("no rollout fits: every episode is shorter than one planning step after its first frame")
    opt = torch.optim.Adam(readout.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0 - i / steps)
    gen = torch.Generator().manual_seed(seed)
    for i in range(steps):
        r = torch.randint(len(rollouts.z), (batch_size,), generator=gen)
        f = torch.randint(len(frames.z), (batch_size // 2,), generator=gen)
        loss = (F.mse_loss(readout(rollouts.z[r]), rollouts.state[r])
                + F.mse_loss(readout(frames.z[f]), frames.state[f]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if log_every and (i + 1) % log_every == 0:
            log.info("rollout readout: step %d/%d, loss %.4f", i + 1, steps, loss.item())
    return readout.eval()


@torch.no_grad()
def evaluate(readouts: dict[str, StateReadout], pairs: ReadoutPairs, normalizer) -> dict[str, float]:
    """Per readout: mean squared error (normalised) on rollouts and on encoded frames, and the object's and end
    effector's position error at the rollouts' last step (the longest rollouts; RMS over the three axes' squares, cm)."""
    out: dict[str, float] = {}
    rollouts, frames = pairs.rollouts(), pairs.frames()
    last = rollouts.steps == rollouts.steps.max() if len(rollouts.steps) else rollouts.steps.bool()
    parts = position_slices(pairs.state.shape[-1])
    for name, readout in readouts.items():
        readout = readout.cpu().float()
        out[f"rollout_mse_{name}"] = F.mse_loss(readout(rollouts.z), rollouts.state).item()
        out[f"frame_mse_{name}"] = F.mse_loss(readout(frames.z), frames.state).item()
        if bool(last.any()):
            gap = normalizer.denormalize_state(readout(rollouts.z[last])) - normalizer.denormalize_state(rollouts.state[last])
            for part, sl in parts.items():
                out[f"{part}_end_rmse_cm_{name}"] = 100 * gap[:, sl].pow(2).sum(-1).mean().sqrt().item()
    return out


def fit_run_rollout_readout(run_dir: str | Path, horizon: int = 9, max_starts: int = 6, steps: int = 3000,
                            device: str = "cpu", seed: int = 0, out: str | Path | None = None) -> tuple[Path, dict]:
    """Fit and save the rollout readout of training run ``run_dir``; returns its directory and held-out figures."""
    from datasets.feature_cache import load_feature_cache
    from datasets.robomimic_dset import RobomimicEpisodes
    from training.run_dir.run_loading import load_world_model

    run = load_world_model(run_dir, device=device)
    if not getattr(run.model, "reads_state", False):
        raise ValueError(f"{run_dir} has no state readout to refit (train it with model.dyn_weight > 0)")
    episodes = RobomimicEpisodes(run.dataset_path)
    features = load_feature_cache(run.dataset_path, run.model.encoder)
    t = time.perf_counter()
    train = rollout_pairs(run, episodes, run.split["train"], horizon, max_starts, features)
    held_split = "val" if run.split.get("val") else "train"
    held = rollout_pairs(run, episodes, run.split[held_split], horizon, max_starts, features) \
        if held_split == "val" else train
    readout = fit_readout(run.model.state_readout, train, steps=steps, seed=seed)
    stats = evaluate({"model": run.model.state_readout, "refit": readout}, held, run.normalizer)
    extra = {"held_out": stats, "held_out_split": held_split, "horizon": horizon, "max_starts": max_starts,
             "steps": steps, "n_train_pairs": len(train.z), "world_model_checkpoint": run.checkpoint_dir.name,
             "train_seconds": round(time.perf_counter() - t, 1)}
    out = Path(out) if out is not None else Path(run_dir) / READOUT_DIR
    with atomic_directory(out) as tmp:
        save_rollout_readout(readout, tmp, extra)
    return out, stats


def fit_after_training(run_dir: str | Path, steps: int, horizon: int, max_starts: int,
                       device: str | torch.device) -> Path | None:
    """The rollout readout of a run that has just finished training (kept when already fitted with ``steps`` steps on
    the run's latest checkpoint; None for a run without a state readout)."""
    import json

    from training.run_dir.checkpoint import fit_head_unless_current

    def fit() -> tuple[Path, dict]:
        return fit_run_rollout_readout(run_dir, horizon, max_starts, steps, str(device))

    saved = Path(run_dir) / READOUT_DIR / "config.json"
    try:
        if saved.is_file() and [json.loads(saved.read_text()).get(k) for k in ("horizon", "max_starts")] != [
                horizon, max_starts]:
            return fit()[0]  # fitted with other rollouts: fit again whatever the checkpoint
        return fit_head_unless_current("rollout readout", Path(run_dir) / READOUT_DIR, run_dir, steps, fit)
    except ValueError as exc:  # no state readout (model.dyn_weight 0), or no episode long enough
        log.warning("rollout readout: not fitted: %s", exc)
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a training run directory (holds run_info.json and checkpoints/)")
    p.add_argument("--horizon", type=int, default=9, help="planning steps rolled out from each start (default 9, "
                   "Lift's whole task; use the goal_H you plan with)")
    p.add_argument("--max-starts", type=int, default=6, help="start frames per episode, evenly spread (default 6)")
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps (default 3000)")
    p.add_argument("--device", type=device_argument, default="cpu", help="auto | cpu | cuda[:N] (default cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of the batches")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if min(args.horizon, args.max_starts, args.steps) < 1:
        p.error("--horizon, --max-starts and --steps must be >= 1")
    if not (Path(args.run_dir) / "run_info.json").is_file():
        p.error(f"{args.run_dir} is not a training run directory (no run_info.json)")
    try:
        out, stats = fit_run_rollout_readout(args.run_dir, args.horizon, args.max_starts, args.steps, args.device,
                                             args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"rollout readout: {out}  " + "  ".join(f"{k} {v:.3f}" for k, v in stats.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
