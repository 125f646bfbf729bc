"""Train the goal-conditioned action prior of a trained world-model run (``models.action_prior``).

    python -m training.action_prior RUN_DIR [--steps 3000] [--device auto|cpu|cuda:N]

The world model stays frozen: every training-split frame is encoded once with the run's checkpoint
(``encode_obs``, from the feature cache when there is one), then a small MLP learns
``pi(z_t, z_goal, k) -> action chunk t`` with hindsight goals ``z_goal = z_{t + k * frameskip}``,
``k = 1 .. max_steps`` planning steps, in the same episode. The validation split gives the held-out
loss (printed beside the loss of always predicting the data mean, 0 in normalised units). Output:
``RUN_DIR/action_prior/{model.safetensors, config.json}``, written atomically; CEM uses it when
``planner.prior`` is ``auto`` (the default) or a path.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from models.action_prior import (
    CONFIG_FILE,
    PRIOR_DIR,
    WEIGHTS_FILE,
    ActionPrior,
    ActionPriorConfig,
    save_action_prior,
)
from training.run_dir.checkpoint import latest_checkpoint
from utils.atomic_files import atomic_directory
from utils.torch_device import device_argument

log = logging.getLogger(__name__)


@dataclass
class PriorData:
    """Frozen latents of a set of episodes and the hindsight (frame, goal, steps) index over them.

    z: [n_frames, P, D] encoded frames, episodes back to back; chunks: [n_frames, A] the normalised
    action chunk after each frame (zero where it would run past the episode); index: [n, 3] long rows
    (frame row, goal row, planning steps k).
    """

    z: torch.Tensor
    chunks: torch.Tensor
    index: torch.Tensor


@torch.no_grad()
def encode_episodes(run, episodes, ids: list[int], max_steps: int, features=None) -> PriorData:
    """Encode episodes ``ids`` of ``episodes`` (``RobomimicEpisodes``) with ``run.model`` into :class:`PriorData`.

    ``features``: the run's feature cache ``(fp16 [n_frames, P, E], offsets [N])`` or None (frames are
    then encoded with the model's frozen encoder).
    """
    model, norm, fs = run.model, run.normalizer, run.model.frameskip
    device = next(model.parameters()).device
    zs, chunks, rows, base = [], [], [], 0
    for e in ids:
        n = episodes.seq_len(e)
        proprio = norm.normalize_proprio(episodes.proprios[e, :n]).to(device)[None]
        if features is not None:
            feats, offsets = features
            obs = {"features": torch.from_numpy(np.array(feats[offsets[e]:offsets[e] + n])).to(device).float()[None]}
        else:
            frames = torch.tensor(episodes.frames(e), device=device).float().div_(255.0)  # a copy: the file is read-only
            obs = {"visual": rearrange(frames, "n h w c -> 1 n c h w")}
        zs.append(model.encode_obs({**obs, "proprio": proprio})[0].float().cpu())  # [n, P, D]
        act = norm.normalize_action(episodes.actions[e, :n])  # [n, 7]
        padded = torch.cat([act, act.new_zeros(fs, act.shape[1])])
        chunks.append(rearrange(padded.unfold(0, fs, 1)[:n], "n a f -> n (f a)"))  # [n, 7 * fs]
        t, k = torch.meshgrid(torch.arange(n), torch.arange(1, max_steps + 1), indexing="ij")
        keep = t + k * fs <= n - 1  # the goal frame lies inside the episode
        rows.append(torch.stack([base + t[keep], base + t[keep] + k[keep] * fs, k[keep]], dim=1))
        base += n
    index = torch.cat(rows)
    if not len(index):
        raise ValueError(f"no (frame, goal) pair fits: episodes shorter than one planning step ({fs} env steps)")
    return PriorData(z=torch.cat(zs), chunks=torch.cat(chunks), index=index)


def prior_loss(prior: ActionPrior, data: PriorData, rows: torch.Tensor, input_noise: float = 0.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean squared error of the prior's chunks on index ``rows`` [n] of ``data`` (normalised units)."""
    i, g, k = data.index[rows].unbind(-1)
    z, zg = data.z[i], data.z[g]
    if input_noise > 0:  # planning feeds predicted latents, not encoded ones
        z = z + input_noise * torch.randn(z.shape, generator=generator).to(z)
    return F.mse_loss(prior(z, zg, k), data.chunks[i])


def train_prior(train: PriorData, val: PriorData | None, cfg: ActionPriorConfig, steps: int = 3000,
                batch_size: int = 256, lr: float = 1e-3, input_noise: float = 0.05, seed: int = 0,
                log_every: int = 500) -> tuple[ActionPrior, dict[str, float]]:
    """Fit an :class:`ActionPrior` on ``train``; returns it (eval mode) and its final losses."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    prior = ActionPrior(cfg)
    opt = torch.optim.AdamW(prior.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    n = len(train.index)
    for step in range(1, steps + 1):
        rows = torch.randint(n, (min(batch_size, n),), generator=gen)
        loss = prior_loss(prior, train, rows, input_noise, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps:
            log.info("prior step %d/%d  train mse %.4f", step, steps, loss.item())
    prior.eval()
    with torch.no_grad():
        stats = {"train_mse": float(prior_loss(prior, train, torch.arange(n)))}
        if val is not None and len(val.index):
            rows = torch.arange(len(val.index))
            stats["val_mse"] = float(prior_loss(prior, val, rows))
            stats["val_mse_mean_action"] = float(val.chunks[val.index[:, 0]].pow(2).mean())
    return prior, stats


def fit_run_prior(run_dir: str | Path, steps: int = 3000, max_steps: int | None = None, device: str = "cpu",
                  seed: int = 0, out: str | Path | None = None) -> tuple[Path, dict[str, float]]:
    """Train and save the prior of training run ``run_dir`` (to ``out``, default ``RUN/action_prior``);
    returns its directory and losses."""
    from datasets.feature_cache import load_feature_cache
    from datasets.robomimic_dset import RobomimicEpisodes
    from training.run_dir.run_loading import load_world_model

    run = load_world_model(run_dir, device=device)
    episodes = RobomimicEpisodes(run.dataset_path)
    fs = run.model.frameskip
    max_steps = max_steps or max(1, (int(episodes.seq_lengths.max()) - 1) // fs)
    features = load_feature_cache(run.dataset_path, run.model.encoder)
    t = time.perf_counter()
    demos = {k: [i for i in v if not episodes.meta.is_exploration(i)] for k, v in run.split.items()}  # cloning: demos only
    train = encode_episodes(run, episodes, demos["train"], max_steps, features)
    val = encode_episodes(run, episodes, demos["val"], max_steps, features) if demos.get("val") else None
    log.info("encoded %d train / %d val frames (%d pairs) in %.0f s", len(train.z), 0 if val is None else len(val.z),
             len(train.index), time.perf_counter() - t)
    cfg = ActionPriorConfig(n_patches=train.z.shape[1], latent_dim=train.z.shape[2],
                            action_dim=train.chunks.shape[1], max_steps=max_steps)
    prior, stats = train_prior(train, val, cfg, steps=steps, seed=seed)
    extra = {"losses": stats, "steps": steps, "world_model_checkpoint": run.checkpoint_dir.name,
             "train_seconds": round(time.perf_counter() - t, 1)}
    out = Path(out) if out is not None else Path(run_dir) / PRIOR_DIR
    with atomic_directory(out) as tmp:
        save_action_prior(prior, tmp, extra)
    return out, stats


def fit_after_training(run_dir: str | Path, steps: int, device: str | torch.device) -> Path:
    """The prior of a run that has just finished training, fitted on ``device`` (the one it trained on).

    A prior already fitted with ``steps`` steps on the run's latest checkpoint is kept (a rerun of a finished
    run, e.g. ``run_demo.sh`` again, does not spend the fit twice)."""
    from training.run_dir.checkpoint import fit_head_unless_current

    return fit_head_unless_current("action prior", Path(run_dir) / PRIOR_DIR, run_dir, steps,
                                   lambda: fit_run_prior(run_dir, steps=steps, device=device))


def refusal(run_dir: str, steps: int, max_steps: int | None, out: str | None) -> str | None:
    """Why these arguments cannot give a prior (one line), checked before any work; None when they can."""
    info = Path(run_dir) / "run_info.json"
    if not info.is_file():
        return f"{run_dir} is not a training run directory (no run_info.json)"
    try:
        json.loads(info.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{info} is not readable JSON ({exc})"
    if latest_checkpoint(run_dir) is None:
        return f"{run_dir} has no checkpoint yet: train it first"
    if steps < 1 or (max_steps is not None and max_steps < 1):
        return f"--steps and --max-steps must be >= 1 (got {steps}, {max_steps})"
    target = Path(out) if out is not None else Path(run_dir) / PRIOR_DIR
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        return f"--out {target} exists and is not a directory: choose a new directory"
    if target.is_dir() and (not {c.name for c in target.iterdir()} <= {WEIGHTS_FILE, CONFIG_FILE}
                            or ((target / CONFIG_FILE).is_file() and not _is_prior_config(target / CONFIG_FILE))):
        return f"--out {target} holds files other than an action prior's: choose a new or empty directory"
    return None


def _is_prior_config(path: Path) -> bool:
    """Whether ``path`` is the config.json of a saved action prior (not another model's config.json)."""
    try:
        saved = json.loads(path.read_text()).get("config")
        ActionPriorConfig(**saved)
    except (OSError, ValueError, TypeError, AttributeError):
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Writes RUN_DIR/action_prior/ (model.safetensors + config.json with the losses).")
    p.add_argument("run_dir", help="a training run directory (holds run_info.json and checkpoints/)")
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps (batch 256)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="largest goal distance in planning steps (default: the longest episode)")
    p.add_argument("--device", default="auto", type=device_argument,
                   help="auto (a CUDA GPU when there is one, else cpu) | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--seed", type=int, default=0, help="seed of the prior's initial weights and batches (default 0)")
    p.add_argument("--out", default=None, help="output directory (default RUN_DIR/action_prior)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    refused = refusal(args.run_dir, args.steps, args.max_steps, args.out)
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    out, stats = fit_run_prior(args.run_dir, steps=args.steps, max_steps=args.max_steps, device=args.device,
                               seed=args.seed, out=args.out)
    print(f"action prior: {out}  " + "  ".join(f"{k} {v:.4f}" for k, v in stats.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
