#!/usr/bin/env python
"""Where the world model's cost of the demonstration's own actions comes from: its rollout error over the horizon.

    python benchmarks/rollout_error.py RUN                           # val demos, goal_H 9
    python benchmarks/rollout_error.py RUN --goal-h 8 --split val --json rollout_error.json

The ranking diagnostic (``plan.py``, ``model_failure_share``) compares the model's cost of a plan with its cost of the
demonstration's actions. Those actions reach the goal exactly, so their cost is the model's own error. This benchmark
takes every demonstration of the run's split (exploration branches and replays left out) that is long enough: the
goal is its last frame, the start ``goal_H`` planning steps earlier (as ``plan.py`` picks them with
``episodes.start_mode=end``). Per planning step k it prints medians over those demonstrations of:

* ``true``: the latent cost (the planner's default objective: mean squared distance over patches and dims) of the
  encoded frame k steps after the start, against the encoded goal: how far the task's states lie from the goal;
* ``predicted``: the same cost of the model's open-loop rollout of the demonstration's actions after k steps (at
  k = goal_H: the cost the ranking diagnostic calls ``first_reference_cost``);
* ``error``: the rollout's distance from the encoded truth after k steps.

A failing plan whose true end (``failed_true_end_distance`` in a plan summary) is lower than ``predicted`` at
goal_H defeats the demonstration through the model's error over the horizon, whatever the search.

For a run that reads states from its latents (``model.dyn_weight`` > 0, the learned state cost), two more rows, in
centimetres: ``object readout error`` (the object's position read from the rollout against the true one) and
``object rise`` (the true height of the object above its start). The object-position state cost
(``plan.py objective.state_weight=W objective.state_tolerance=T``) can tell a lift from a miss only where the
readout error at goal_H is well below the rise. Frames are
encoded with the run's frozen encoder here (no feature cache needed). CPU or GPU (``--device``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report_cli import model_arguments, report, run_parser  # noqa: E402
from datasets.robomimic_dset import RobomimicEpisodes  # noqa: E402
from planning.execution.observations import to_model_obs  # noqa: E402
from planning.objectives import LatentGoalObjective  # noqa: E402
from training.run_dir.run_loading import load_world_model  # noqa: E402


class RolloutErrorError(Exception):
    """Bad input (one line, exit code 2)."""


@torch.no_grad()
def demo_curves(model, normalizer, data: RobomimicEpisodes, episode: int, goal_h: int,
                device: torch.device) -> dict[str, np.ndarray]:
    """The three curves [goal_H + 1] of one demonstration (k = 0 is the start, k = goal_H the goal's step)."""
    fs = model.frameskip
    last = data.seq_len(episode) - 1
    ts = last - fs * np.arange(goal_h, -1, -1)  # [goal_H + 1] frames, the last one the goal
    frames = data.frames(episode)[ts][None]  # [1, T, H, W, 3]
    z = model.encode_obs(to_model_obs(frames, data.proprios[episode, ts].numpy()[None], normalizer, device))
    acts = torch.stack([data.actions[episode, t:t + fs].reshape(-1) for t in ts[:-1]])[None]  # [1, goal_H, fs * A]
    acts = normalizer.normalize_action(acts.to(device).float())
    z_pred = model.rollout_latents(z[:, :1], acts)  # [1, goal_H + 1, P, D], step 0 the encoded start
    cost = LatentGoalObjective().per_step
    goal = z[:, -1]
    curves = {"true": cost(z, goal)[0].cpu().numpy(), "predicted": cost(z_pred, goal)[0].cpu().numpy(),
              "error": cost(z_pred, z)[0].cpu().numpy()}  # step by step against the encoded truth
    if getattr(model, "reads_state", False):
        true_pos = data.states[episode, ts, :3].numpy()  # [goal_H + 1, 3] metres
        read_pos = normalizer.denormalize_state(model.read_state(z_pred)[0].float().cpu())[:, :3].numpy()
        curves["object_readout_error_cm"] = 100 * np.linalg.norm(read_pos - true_pos, axis=-1)
        curves["object_rise_cm"] = 100 * (true_pos[:, 2] - true_pos[0, 2])
    return curves


def measure(run_dir: str | Path, goal_h: int, split: str = "val", max_episodes: int | None = None,
            model_epoch: str | int = "latest", device: str = "cpu") -> dict:
    """Medians per step over the split's long-enough demonstrations (see the module docstring)."""
    if goal_h < 1:
        raise RolloutErrorError(f"--goal-h must be >= 1, got {goal_h}")
    try:
        run = load_world_model(run_dir, model_epoch, device=device)
        data = RobomimicEpisodes(run.dataset_path)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise RolloutErrorError(f"cannot load {run_dir}: {str(exc).splitlines()[0]}") from exc
    if split not in run.split:
        raise RolloutErrorError(f"the run has no {split!r} split (it has {sorted(run.split)})")
    span = goal_h * run.model.frameskip + 1
    demos = [e for e in run.split[split] if not data.meta.is_exploration(e)]
    usable = [e for e in demos if data.seq_len(e) >= span][:max_episodes]
    if not usable:
        raise RolloutErrorError(f"no {split} demonstration of {run.dataset_path} spans goal_H={goal_h} "
                                f"({span} env steps); the {len(demos)} there are shorter")
    curves = [demo_curves(run.model, run.normalizer, data, e, goal_h, torch.device(device)) for e in usable]
    med = {key: np.median(np.stack([c[key] for c in curves]), axis=0).tolist() for key in curves[0]}
    return {"run": str(run_dir), "split": split, "goal_H": goal_h, "frameskip": run.model.frameskip,
            "n_demonstrations": len(usable), "episodes": usable, "steps": list(range(goal_h + 1)), **med,
            "demo_predicted_cost": med["predicted"][-1]}


def format_table(res: dict) -> str:
    cols = res["steps"]
    rows = [("step after the start", [f"{k:7d}" for k in cols])]
    rows += [(f"{name} cost to the goal" if name != "error" else "rollout error", [f"{v:7.4f}" for v in res[name]])
             for name in ("true", "predicted", "error")]
    rows += [(label, [f"{v:7.2f}" for v in res[key]]) for key, label in (
        ("object_readout_error_cm", "object readout error (cm)"), ("object_rise_cm", "object rise (cm)")) if key in res]
    width = max(len(r[0]) for r in rows)
    lines = [f"{label:<{width}} " + " ".join(vals) for label, vals in rows]
    lines.append(f"{res['n_demonstrations']} {res['split']} demonstrations, goal_H {res['goal_H']}: the model's cost of "
                 f"the demonstration's own actions (first_reference_cost) is {res['demo_predicted_cost']:.4f} (median)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = run_parser(__doc__)
    ap.add_argument("--goal-h", type=int, default=9, help="planning steps from the start to the goal (default 9)")
    ap.add_argument("--split", default="val", help="the run's episode split to read (val | test | train; default val)")
    ap.add_argument("--max-episodes", type=int, default=None, help="at most this many demonstrations")
    model_arguments(ap)
    args = ap.parse_args(argv)
    return report(lambda: measure(args.run, args.goal_h, args.split, args.max_episodes, args.model_epoch, args.device),
                  format_table, args.json, RolloutErrorError)


if __name__ == "__main__":
    sys.exit(main())
