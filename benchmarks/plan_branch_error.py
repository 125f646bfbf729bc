#!/usr/bin/env python
"""Where the search's own plans truly end, and where the world model believed they would.

    python benchmarks/plan_branch_error.py RUN                       # plan branches of the run's own dataset
    python benchmarks/plan_branch_error.py RUN --data DERIVED --json plan_branch_error.json

Plan branches (``python -m conversion.exploration DATA --from-plans PLAN_DIR --out NEW``) are the executed actions
of planning jobs replayed in the simulator from the same starts: what those plans truly did. For every plan branch
that lifted its object (it rose more than ``--lift-cm`` above its start) this benchmark compares, axis by axis, in
centimetres:

* ``true end - goal``: the object's and the end effector's position at the branch's last frame against the goal (the
  last frame of the demonstration it branched from, the goal ``plan.py episodes.start_mode=end`` plans to). A dataset
  stores the observation before each action, so both are one env step before the end of their actions;
* ``predicted - goal``: the run's state readout of its own rollout of the branch's actions against its readout of the
  encoded goal (what the model believed the plan would reach; runs with a state readout, ``model.dyn_weight`` > 0);
* ``readout of the true end - goal``: the same readout of the encoded true last frame (how well the readout sees a
  real frame, e.g. after a re-plan from it);
* ``predicted - goal (rollout readout)``: where the run has one (``python -m training.rollout_readout RUN``), the
  readout refitted on the model's own rollouts applied to the same rollout and goal (``objective.state_readout=rollout``).

A mean ``true end - goal`` far from zero where ``predicted - goal`` is near zero is a bias of the model on the plans
the search chooses: re-planning cannot remove what the cost does not see, and ``goal reached`` (object within 2 cm of
the goal's) fails by that much. By default the branches of ``--data`` that the run's own dataset does not hold are
measured (those a derived dataset appended after it: new to the run); on the run's own dataset, all of them.
Frames are encoded with the run's frozen encoder (no feature cache needed). CPU or GPU (``--device``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report_cli import model_arguments, report, run_parser  # noqa: E402
from datasets.meta import DatasetMeta  # noqa: E402
from datasets.robomimic_dset import RobomimicEpisodes  # noqa: E402
from models.rollout_readout import READOUT_DIR, load_rollout_readout  # noqa: E402
from planning.execution.observations import to_model_obs  # noqa: E402
from tasks.state_layout import position_slices  # noqa: E402
from training.run_dir.run_loading import load_world_model  # noqa: E402

PLAN_PREFIX = "plan_"  # conversion.exploration's key for a plan branch


class PlanBranchError(Exception):
    """Bad input (one line, exit code 2)."""


@torch.no_grad()
def branch_offsets(model, normalizer, data: RobomimicEpisodes, branch: int, device: torch.device,
                   rollout_reader=None) -> dict[str, np.ndarray]:
    """[3] metres per quantity for one plan branch: true end, predicted end and readout of the true end, each minus
    the goal (the source demonstration's last frame), for the object and the end effector; with ``rollout_reader``
    (``models.rollout_readout``) also the predicted end as that reader sees it."""
    src, fs = data.meta.explore_sources[branch], model.frameskip
    last_b, last_s = data.seq_len(branch) - 1, data.seq_len(src) - 1
    steps = data.seq_len(branch) // fs  # the planning steps the branch executed (one action per stored frame)

    def encode(ep: int, t: int) -> torch.Tensor:
        frames = data.frames(ep)[[t]][None]
        return model.encode_obs(to_model_obs(frames, data.proprios[ep, [t]].numpy()[None], normalizer, device))

    parts = position_slices(data.states.shape[-1])
    true = (data.states[branch, last_b] - data.states[src, last_s]).numpy()
    out = {f"{name}_true": true[sl] for name, sl in parts.items()}
    if getattr(model, "reads_state", False):
        z_goal, z_end = encode(src, last_s), encode(branch, last_b)
        acts = torch.stack([data.actions[branch, k * fs:(k + 1) * fs].reshape(-1) for k in range(steps)])[None]
        z_pred = model.rollout_latents(encode(branch, 0), normalizer.normalize_action(acts.to(device).float()))

        def read(z, reader=model.read_state):  # [1, T, P, D] -> [S] metres, the last step
            return normalizer.denormalize_state(reader(z[:, -1]).float().cpu())[0].numpy()

        goal = read(z_goal)
        for name, sl in parts.items():
            out[f"{name}_predicted"] = (read(z_pred) - goal)[sl]
            out[f"{name}_readout_true"] = (read(z_end) - goal)[sl]
            if rollout_reader is not None:
                out[f"{name}_predicted_rollout_readout"] = (read(z_pred, rollout_reader)
                                                            - read(z_goal, rollout_reader))[sl]
    return out


def new_branches_from(run_data: Path, data_dir: Path) -> int:
    """The first episode index of ``data_dir`` the run's own dataset does not hold: 0 for the run's own dataset, its
    episode count for a dataset derived from it (``conversion.exploration`` appends), else 0 (all)."""
    if data_dir.resolve() == run_data.resolve():
        return 0
    parent = DatasetMeta.load(data_dir).extra.get("derived_from")
    if parent and Path(parent).resolve() == run_data.resolve():
        return DatasetMeta.load(run_data).n_episodes
    return 0


def measure(run_dir: str | Path, data_dir: str | Path | None = None, lift_cm: float = 2.0,
            from_index: int | None = None, model_epoch: str | int = "latest", device: str = "cpu") -> dict:
    """Per-axis means and mean absolute offsets (cm) over the lifted plan branches (see the module docstring)."""
    try:
        run = load_world_model(run_dir, model_epoch, device=device)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise PlanBranchError(f"cannot load the run {run_dir}: {str(exc).splitlines()[0]}") from exc
    data_dir = Path(data_dir or run.dataset_path)
    try:
        data = RobomimicEpisodes(data_dir)
        first = new_branches_from(Path(run.dataset_path), data_dir) if from_index is None else int(from_index)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise PlanBranchError(f"cannot load the dataset {data_dir}: {str(exc).splitlines()[0]}") from exc
    keys = data.meta.demo_keys
    branches = [i for i in range(first, len(keys)) if keys[i].startswith(PLAN_PREFIX)]
    if not branches:
        raise PlanBranchError(f"{data_dir} holds no plan branch from episode {first} on (make some with python -m "
                              "conversion.exploration DATA --from-plans PLAN_DIR --out NEW)")
    z0 = data.states[branches, 0, 2]
    z_end = torch.stack([data.states[i, data.seq_len(i) - 1, 2] for i in branches])
    lifted = [i for i, rise in zip(branches, (z_end - z0).tolist()) if rise > lift_cm / 100]
    reader = None
    if (Path(run_dir) / READOUT_DIR).is_dir():
        try:
            reader = load_rollout_readout(Path(run_dir) / READOUT_DIR, device)
        except (FileNotFoundError, ValueError) as exc:
            raise PlanBranchError(f"cannot load the rollout readout: {exc}") from exc
    rows = [branch_offsets(run.model, run.normalizer, data, i, torch.device(device), reader) for i in lifted]
    res = {"run": str(run_dir), "data": str(data_dir), "from_index": first, "n_plan_branches": len(branches),
           "n_lifted": len(lifted), "lift_cm": lift_cm, "episodes": lifted}
    if rows:
        for key in rows[0]:
            cm = 100 * np.stack([r[key] for r in rows])
            res[key] = {"mean_cm": cm.mean(0).round(2).tolist(), "mean_abs_cm": np.abs(cm).mean(0).round(2).tolist()}
        res["object_within_2cm"] = float(np.mean([np.linalg.norm(r["object_true"]) < 0.02 for r in rows]))
    return res


def format_table(res: dict) -> str:
    lines = [f"{res['n_lifted']} of {res['n_plan_branches']} plan branches (episodes {res['from_index']}+ of "
             f"{res['data']}) lifted the object by > {res['lift_cm']:g} cm; offsets from the goal, cm (x, y, z):"]
    labels = [("true", "true end - goal"), ("predicted", "predicted - goal (readout of the rollout)"),
              ("readout_true", "readout of the true end - goal"),
              ("predicted_rollout_readout", "predicted - goal (rollout readout)")]
    for part in ("object", "eef"):
        for suffix, label in labels:
            key = f"{part}_{suffix}"
            if key in res:
                m, a = res[key]["mean_cm"], res[key]["mean_abs_cm"]
                lines.append(f"  {part:6s} {label:42s} mean {m[0]:6.2f} {m[1]:6.2f} {m[2]:6.2f}"
                             f"   mean |.| {a[0]:5.2f} {a[1]:5.2f} {a[2]:5.2f}")
    if "object_within_2cm" in res:
        lines.append(f"object within 2 cm of the goal's at the end: {res['object_within_2cm']:.2f} of the lifted branches")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = run_parser(__doc__)
    ap.add_argument("--data", default=None, help="dataset holding the plan branches (default: the run's own)")
    ap.add_argument("--from-index", type=int, default=None,
                    help="first episode index to read (default: the branches new to the run, see above)")
    ap.add_argument("--lift-cm", type=float, default=2.0, help="a branch counts as lifted above this rise (default 2)")
    model_arguments(ap)
    args = ap.parse_args(argv)
    return report(lambda: measure(args.run, args.data, args.lift_cm, args.from_index, args.model_epoch, args.device),
                  format_table, args.json, PlanBranchError)


if __name__ == "__main__":
    sys.exit(main())
