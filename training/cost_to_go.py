"""Fit the learned cost-to-go of a trained world-model run (``models.cost_to_go``) on its frozen latents.

    python -m training.cost_to_go RUN_DIR [--steps 3000] [--device auto|cpu|cuda:N]

States only, no actions. Every training-split frame is encoded once with the run's checkpoint (from the feature
cache when there is one); three kinds of (frame, goal) pairs teach it:

* along a demonstration: a later frame of the same episode is ``(j - i) / frameskip`` planning steps away
  (regression);
* another scene: a frame of another demonstration is at least ``far`` away (hinge);
* an exploration branch (``conversion.exploration``): ``j`` env steps into a branch taken at frame ``t0`` of its
  demonstration, a goal ``g >= t0`` of that demonstration is at least ``(g - t0 + j) / frameskip`` away (hinge):
  random actions do not bring the task closer, whatever the world model's latent distance says.

Output ``RUN_DIR/cost_to_go/{model.safetensors, config.json}``, written atomically; planning uses it with
``objective.cost_to_go_weight`` > 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.cost_to_go import CTG_DIR, CostToGo, CostToGoConfig, save_cost_to_go
from utils.atomic_files import atomic_directory
from utils.torch_device import device_argument

log = logging.getLogger(__name__)


@dataclass
class Trajectories:
    """Frozen latents of a set of episodes, back to back: z [n_frames, P, D]; episode [n_frames] its episode id;
    t [n_frames] its frame index; start / length per episode id (dicts); branches: episode id -> (source episode,
    start frame in it)."""

    z: torch.Tensor
    episode: torch.Tensor
    t: torch.Tensor
    start: dict[int, int]
    length: dict[int, int]
    branches: dict[int, tuple[int, int]]

    @property
    def demos(self) -> list[int]:
        return [e for e in self.start if e not in self.branches]


def branch_starts(episodes, ids: list[int]) -> dict[int, tuple[int, int]]:
    """episode id -> (source demonstration, the frame of it the branch started from) for the branches in ``ids``
    (``meta.explore_starts``, or found by matching the branch's first sim state with its source's)."""
    meta, out = episodes.meta, {}
    starts = getattr(meta, "explore_starts", None) or []
    for e in ids:
        if not meta.is_exploration(e):
            continue
        src = meta.explore_sources[e]
        if starts and starts[e] >= 0:
            out[e] = (src, int(starts[e]))
            continue
        n = episodes.seq_len(src)
        err = (episodes.sim_states[src, :n, 1:] - episodes.sim_states[e, 0, 1:]).abs().amax(-1)
        out[e] = (src, int(err.argmin()))
    return out


@torch.no_grad()
def encode(run, episodes, ids: list[int], features=None) -> Trajectories:
    """Encode episodes ``ids`` with ``run.model`` (``training.action_prior.encode_episodes`` does the same for the
    prior; here every frame is kept with its episode and index)."""
    from training.action_prior import encode_episodes

    data = encode_episodes(run, episodes, ids, max_steps=1, features=features)
    lengths = [episodes.seq_len(e) for e in ids]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    episode = torch.cat([torch.full((n,), e) for e, n in zip(ids, lengths)])
    t = torch.cat([torch.arange(n) for n in lengths])
    return Trajectories(z=data.z, episode=episode, t=t, start=dict(zip(ids, starts.tolist())),
                        length=dict(zip(ids, lengths)), branches=branch_starts(episodes, ids))


def sample_pairs(tr: Trajectories, n: int, fs: int, gen: torch.Generator) -> dict[str, tuple[torch.Tensor, ...]]:
    """Row indices into ``tr.z`` of three batches of ``n`` pairs: "along" (frame, later frame of the same
    demonstration, steps), "other" (frame, frame of another demonstration), "branch" (branch frame, goal in its
    demonstration, lower bound in steps)."""
    demos = tr.demos
    pick = lambda k: torch.tensor(demos)[torch.randint(len(demos), (k,), generator=gen)]  # noqa: E731
    e = pick(n)
    length = torch.tensor([tr.length[int(x)] for x in e])
    start = torch.tensor([tr.start[int(x)] for x in e])
    i = (torch.rand(n, generator=gen) * length).long()
    j = i + (torch.rand(n, generator=gen) * (length - i)).long()
    j = torch.where(torch.rand(n, generator=gen) < 0.3, length - 1, j)  # the terminal frame: the planning goal
    out = {"along": (start + i, start + j, (j - i).float() / fs)}
    e2 = pick(n)
    e2 = torch.where(e2 == e, pick(n), e2)
    length2, start2 = (torch.tensor([d[int(x)] for x in e2]) for d in (tr.length, tr.start))
    g2 = length2 // 2 + (torch.rand(n, generator=gen) * (length2 - length2 // 2)).long()
    keep = e2 != e
    out["other"] = ((start + i)[keep], (start2 + g2)[keep])
    if tr.branches:
        b = torch.tensor(list(tr.branches))[torch.randint(len(tr.branches), (n,), generator=gen)]
        src = torch.tensor([tr.branches[int(x)][0] for x in b])
        t0 = torch.tensor([tr.branches[int(x)][1] for x in b])
        blen, bstart = (torch.tensor([d[int(x)] for x in b]) for d in (tr.length, tr.start))
        slen, sstart = (torch.tensor([d[int(x)] for x in src]) for d in (tr.length, tr.start))
        jb = 1 + (torch.rand(n, generator=gen) * (blen - 1)).long()
        g = t0 + (torch.rand(n, generator=gen) * (slen - t0)).long()
        g = torch.where(torch.rand(n, generator=gen) < 0.5, slen - 1, g)
        out["branch"] = (bstart + jb, sstart + g, (g - t0 + jb).float() / fs)
    return out


def ctg_loss(model: CostToGo, tr: Trajectories, pairs: dict, input_noise: float, gen: torch.Generator) -> torch.Tensor:
    """Regression along demonstrations (Huber, in planning steps) + the two hinge losses (steps short of the bound)."""
    far = model.cfg.far

    def z_at(rows):
        z = tr.z[rows]
        return z + input_noise * torch.randn(z.shape, generator=gen) if input_noise > 0 else z

    i, j, steps = pairs["along"]
    loss = F.smooth_l1_loss(model(z_at(i), tr.z[j]), steps)
    i, g = pairs["other"]
    loss = loss + F.relu(far - model(z_at(i), tr.z[g])).mean()
    if "branch" in pairs:
        i, g, low = pairs["branch"]
        loss = loss + F.relu(low - model(z_at(i), tr.z[g])).mean()
    return loss


def train_cost_to_go(train: Trajectories, cfg: CostToGoConfig, fs: int, steps: int = 3000, batch_size: int = 256,
                     lr: float = 1e-3, input_noise: float = 0.05, seed: int = 0, log_every: int = 500) -> CostToGo:
    """Fit a :class:`CostToGo` on ``train`` (eval mode on return)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = CostToGo(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    for step in range(1, steps + 1):
        loss = ctg_loss(model, train, sample_pairs(train, batch_size, fs, gen), input_noise, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps:
            log.info("cost-to-go step %d/%d  loss %.4f", step, steps, loss.item())
    return model.eval()


@torch.no_grad()
def evaluate(model: CostToGo, tr: Trajectories, fs: int, seed: int = 1) -> dict[str, float]:
    """Held-out figures: mean absolute error (steps) along demonstrations; how often another scene's goal and a
    branch's goal are ranked farther than the demonstration's own goal from the same kind of frame."""
    gen = torch.Generator().manual_seed(seed)
    pairs = sample_pairs(tr, 2048, fs, gen)
    i, j, steps = pairs["along"]
    out = {"mae_steps": float((model(tr.z[i], tr.z[j]) - steps).abs().mean())}
    i, g = pairs["other"]
    out["other_scene_mean"] = float(model(tr.z[i], tr.z[g]).mean())
    if "branch" in pairs:
        i, g, low = pairs["branch"]
        out["branch_below_bound"] = float((model(tr.z[i], tr.z[g]) < low).float().mean())
    return out


def fit_run_cost_to_go(run_dir: str | Path, steps: int = 3000, device: str = "cpu", seed: int = 0,
                       out: str | Path | None = None) -> tuple[Path, dict[str, float]]:
    """Fit and save the cost-to-go of training run ``run_dir``; returns its directory and held-out figures."""
    from datasets.feature_cache import load_feature_cache
    from datasets.robomimic_dset import RobomimicEpisodes
    from training.run_dir.run_loading import load_world_model

    run = load_world_model(run_dir, device=device)
    episodes = RobomimicEpisodes(run.dataset_path)
    fs = run.model.frameskip
    features = load_feature_cache(run.dataset_path, run.model.encoder)
    t = time.perf_counter()
    train = encode(run, episodes, run.split["train"], features)
    val_ids = run.split.get("val") or []
    val = encode(run, episodes, val_ids, features) if len([e for e in val_ids if not episodes.meta.is_exploration(e)]) > 1 \
        else None
    far = float((int(episodes.seq_lengths.max()) - 1) / fs + 5)
    cfg = CostToGoConfig(n_patches=train.z.shape[1], latent_dim=train.z.shape[2], far=far)
    model = train_cost_to_go(train, cfg, fs, steps=steps, seed=seed)
    stats = evaluate(model, val if val is not None else train, fs)
    extra = {"held_out": stats, "held_out_split": "val" if val is not None else "train", "steps": steps,
             "world_model_checkpoint": run.checkpoint_dir.name, "train_seconds": round(time.perf_counter() - t, 1)}
    out = Path(out) if out is not None else Path(run_dir) / CTG_DIR
    with atomic_directory(out) as tmp:
        save_cost_to_go(model, tmp, extra)
    return out, stats


def fit_after_training(run_dir: str | Path, steps: int, device: str | torch.device) -> Path:
    """The cost-to-go of a run that has just finished training (kept when already fitted with ``steps`` steps on the
    run's latest checkpoint)."""
    from training.run_dir.checkpoint import fit_head_unless_current

    return fit_head_unless_current("cost-to-go", Path(run_dir) / CTG_DIR, run_dir, steps,
                                   lambda: fit_run_cost_to_go(run_dir, steps=steps, device=str(device)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a training run directory (holds run_info.json and checkpoints/)")
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps, batch 256 of each pair kind (default 3000)")
    p.add_argument("--device", type=device_argument, default="cpu", help="auto | cpu | cuda[:N] (default cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of the pairs and the initial weights")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.steps < 1:
        p.error("--steps must be >= 1")
    if not (Path(args.run_dir) / "run_info.json").is_file():
        p.error(f"{args.run_dir} is not a training run directory (no run_info.json)")
    out, stats = fit_run_cost_to_go(args.run_dir, steps=args.steps, device=args.device, seed=args.seed)
    print(f"cost-to-go: {out}  " + "  ".join(f"{k} {v:.3f}" for k, v in stats.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
