"""Writers of a planning output dir: logs.json, summary.json (atomic) and per-episode mp4 videos.

``summarize`` is the single definition of the summary; ``planning.reporting.merge`` calls it on the merged
episode list, so a merged summary equals a single job's by construction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from utils.atomic_files import atomic_write_json

LOGS_FILE, SUMMARY_FILE = "logs.json", "summary.json"
_MEAN_KEYS = ("final_latent_dist", "final_object_dist", "final_eef_dist", "start_object_dist")
_RATE_KEYS = ("task_success", "success_any", "goal_reached", "start_is_success", "goal_is_success")


class OutputError(Exception):
    """An output could not be written (reported in one line; the evaluation results are saved first)."""


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (tmp file in the same dir, then rename)."""
    atomic_write_json(path, obj, indent=2, default=_json_default)


def _json_default(x):
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def wilson_interval(successes: float, n: int, z: float = 1.96) -> list[float] | None:
    """95 % Wilson score interval [low, high] of a rate of ``successes`` out of ``n`` (None for n = 0)."""
    if n <= 0:
        return None
    p = successes / n
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)
    return [round(float(max(0.0, low)), 4), round(float(min(1.0, high)), 4)]


def summarize(episodes: list[dict], info: dict) -> dict:
    """Summary of per-episode records (sorted by ``eval_index``).

    The headline rates (``success_rate``, ``task_success_rate``, ``goal_reached_rate``) count only the
    evaluations whose start does not already satisfy the task (``start_is_success``: doing nothing would
    "succeed" there); those are counted in ``n_start_is_success`` and the rates over every evaluation are
    ``*_rate_all``. Each headline rate has a 95 % Wilson interval (``*_ci95``) over the distinct start/goal
    pairs it counts (``n_rated_pairs``): an evaluation repeated on the same pair with another seed is not
    more evidence about the planner on new episodes. ``n_distinct_episodes`` / ``n_distinct_pairs`` say how
    many different episodes and start/goal pairs the ``n_evals`` evaluations used.

    Args:
        episodes: records from ``planning.execution.evaluator.evaluate_batch``.
        info: run-level fields copied in (planner, goal_H, model, success_metric, encoder_pretrained, ...).
    """
    eps = sorted(episodes, key=lambda r: r["eval_index"])
    n = len(eps)
    rated = [r for r in eps if not r.get("start_is_success")]

    def mean(key, rows=eps):
        vals = [r[key] for r in rows if r.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    out = {**info, "n_evals": n, "success_rate": mean("success", rated),
           "successes": [bool(r["success"]) for r in eps], "eval_indices": [r["eval_index"] for r in eps]}
    out.update({f"{k}_rate": mean(k) for k in _RATE_KEYS})
    for key in ("task_success", "goal_reached"):
        out[f"{key}_rate"] = mean(key, rated)
    for key in ("success", "task_success", "goal_reached"):
        out[f"{key}_rate_all"] = mean(key)
    out.update(_distinct(eps, rated, out))
    out.update(_ranking(eps))
    out.update(_failed_end_offsets(eps))
    out.update({f"mean_{k}": mean(k) for k in _MEAN_KEYS})
    out.update({k: mean(k) for k in sorted({k for r in eps for k in r if k.startswith("mean_")})})
    out["planning_seconds_total"] = float(sum(r["planning_seconds"] for r in eps))
    out["planning_seconds_per_episode"] = out["mean_planning_seconds"] = mean("planning_seconds")
    out["planning_seconds_per_replan"] = (out["planning_seconds_total"] / sum(r["n_replans"] for r in eps)
                                          if n and sum(r["n_replans"] for r in eps) else None)
    return out


def _pair(r: dict) -> tuple:
    return r.get("episode"), r.get("start"), r.get("goal")


def _distinct(eps: list[dict], rated: list[dict], out: dict) -> dict:
    """Distinct episodes / pairs and the Wilson intervals of the headline rates over the rated pairs."""
    pairs: dict[tuple, list[dict]] = {}
    for r in rated:
        pairs.setdefault(_pair(r), []).append(r)
    res = {"n_distinct_episodes": len({r.get("episode") for r in eps}), "n_distinct_pairs": len({_pair(r) for r in eps}),
           "n_start_is_success": sum(bool(r.get("start_is_success")) for r in eps), "n_rated_pairs": len(pairs)}
    for key in ("success", "task_success", "goal_reached"):
        per_pair = [np.mean([bool(r[key]) for r in rs]) for rs in pairs.values() if all(key in r for r in rs)]
        res[f"{key}_ci95"] = wilson_interval(float(np.sum(per_pair)), len(per_pair)) if per_pair else None
    return res


def _ranking(eps: list[dict]) -> dict:
    """Summary of the ranking diagnostic (``planning.execution.evaluator.ranking``): of the failed evaluations, the share
    whose failing plan the model scored below the demonstration's actions (model failures).

    For the failed evaluations it also puts the model's predicted cost of its first plan beside where the episode
    truly ended (``final_latent_dist``: the encoded last observation's mean squared distance to the goal latent, the
    objective's latent term; the two compare directly under the default objective, whose other terms are off), and the demonstration's predicted cost beside both. A model failure where the true end lies far above
    the prediction is the search exploiting the model's error (``failed_true_end_distance`` >>
    ``failed_first_plan_cost``); one where the true end lies below the demonstration's predicted cost is a cost that
    the failing state satisfies better than the model's rollout of the demonstration (``failed_true_end_distance`` <
    ``failed_first_reference_cost``): there a more precise model over the horizon, or a cost that weighs the object,
    is the lever, not a smaller error on unseen actions."""
    ranked = [r for r in eps if r.get("model_prefers_plan") is not None]
    if not ranked:
        return {}
    failed = [r for r in ranked if not r["success"]]
    med = lambda rs, key: float(np.median([r[key] for r in rs]))  # noqa: E731
    res = {"median_first_plan_cost": med(ranked, "first_plan_cost"),
           "median_first_reference_cost": med(ranked, "first_reference_cost"),
           "model_prefers_plan_rate": float(np.mean([r["model_prefers_plan"] for r in ranked])),
           "n_failed": len(failed), "n_model_failures": sum(r["model_prefers_plan"] for r in failed),
           "model_failure_share": float(np.mean([r["model_prefers_plan"] and not r["success"] for r in ranked]))}
    if failed and all(r.get("final_latent_dist") is not None for r in failed):
        res |= {"failed_first_plan_cost": med(failed, "first_plan_cost"),
                "failed_first_reference_cost": med(failed, "first_reference_cost"),
                "failed_true_end_distance": med(failed, "final_latent_dist")}
    return res


def _failed_end_offsets(eps: list[dict]) -> dict:
    """Where the failed evaluations ended against their goal: the per-axis median of ``final_X_pos - goal_X_pos``
    (metres, world frame; z up) for the object and the end effector, e.g. ``[0.0, 0.0, -0.015]`` = the failures end
    1.5 cm under the goal. Empty when no evaluation failed or the records predate these fields."""
    failed = [r for r in eps if not r["success"]]
    res = {}
    for what in ("object", "eef"):
        rows = [np.subtract(r[f"final_{what}_pos"], r[f"goal_{what}_pos"]) for r in failed
                if r.get(f"final_{what}_pos") is not None and r.get(f"goal_{what}_pos") is not None]
        if rows and len(rows) == len(failed):
            res[f"failed_{what}_offset_median_m"] = [float(x) for x in np.median(np.stack(rows), axis=0)]
    return res


def side_by_side(*panels: np.ndarray | None) -> np.ndarray:
    """Concatenate uint8 [H, W, 3] panels horizontally (None panels skipped; heights must match)."""
    return np.concatenate([p for p in panels if p is not None], axis=1)


def episode_frames(trace, goal_image: np.ndarray, with_imagined: bool) -> np.ndarray:
    """uint8 [T, H, W', 3]: executed view | goal frame | (imagined frame, black until the first plan)."""
    h, w = goal_image.shape[:2]
    out = []
    for frame, imag in zip(trace.frames, trace.imagined):
        panel = None
        if with_imagined:
            panel = np.zeros_like(goal_image) if imag is None else _fit(imag, h, w)
        out.append(side_by_side(frame, goal_image, panel))
    return np.stack(out)


def _fit(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour resize of uint8 [h', w', 3] to [h, w, 3] (decoded frames may be smaller)."""
    if img.shape[:2] == (h, w):
        return img
    ys = (np.arange(h) * img.shape[0] / h).astype(int)
    xs = (np.arange(w) * img.shape[1] / w).astype(int)
    return img[ys][:, xs]
