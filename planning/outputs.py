"""Writers of a planning output dir: logs.json, summary.json (atomic) and per-episode mp4 videos.

``summarize`` is the single definition of the summary; ``planning.merge`` calls it on the merged
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


def summarize(episodes: list[dict], info: dict) -> dict:
    """Summary of per-episode records (sorted by ``eval_index``).

    Args:
        episodes: records from ``planning.evaluator.evaluate_batch``.
        info: run-level fields copied in (planner, goal_H, model, success_metric, encoder_pretrained, ...).
    """
    eps = sorted(episodes, key=lambda r: r["eval_index"])
    n = len(eps)

    def mean(key):
        vals = [r[key] for r in eps if r.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    out = {**info, "n_evals": n, "success_rate": mean("success") if n else 0.0,
           "successes": [bool(r["success"]) for r in eps], "eval_indices": [r["eval_index"] for r in eps]}
    out.update({f"{k}_rate": mean(k) for k in _RATE_KEYS})
    out.update({f"mean_{k}": mean(k) for k in _MEAN_KEYS})
    out["planning_seconds_total"] = float(sum(r["planning_seconds"] for r in eps))
    out["planning_seconds_per_episode"] = out["mean_planning_seconds"] = mean("planning_seconds")
    out["planning_seconds_per_replan"] = (out["planning_seconds_total"] / sum(r["n_replans"] for r in eps)
                                          if n and sum(r["n_replans"] for r in eps) else None)
    return out


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
