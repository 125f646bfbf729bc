"""Run the evaluation in batches of envs and write every output of a planning dir.

Output dir layout::

    logs.json                 {"config", "info", "episodes": [per-episode records], "timings"}
    summary.json              planning.outputs.summarize(...)
    videos/eval_XXX_epY.mp4   executed view | goal frame (| decoded imagined frame)
    plots/eef_eval_XXX.png    planned (commanded) vs executed end-effector path
    plots/success.png         success and final object distance per episode
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from datasets.video_io import write_video
from planning.evaluator import evaluate_batch, seed_simulation
from planning.outputs import LOGS_FILE, SUMMARY_FILE, episode_frames, summarize, write_json
from planning.plots import plot_eef_paths, plot_success
from utils.progress import progress as progress_bar

log = logging.getLogger(__name__)


def run_batches(make_env, model, normalizer, data, specs, mpc, settings, device, batch_size: int | None = None,
                progress: bool = True):
    """Evaluate ``specs`` in batches of ``batch_size`` envs (None: all at once).

    Returns (records, traces, goal_images), each aligned with ``specs``.
    """
    size = int(batch_size or len(specs)) or 1
    records, traces, goals = [], [], []
    bar = progress_bar(total=len(specs), desc="episodes", disable=not progress)
    for start in range(0, len(specs), size):
        batch = specs[start:start + size]
        envs = []
        for spec in batch:
            seed_simulation(spec.seed)
            envs.append(make_env())
        try:
            recs, result, goal_imgs = evaluate_batch(model, normalizer, data, envs, batch, mpc, settings, device)
        finally:
            for env in envs:
                env.close()
        records += recs
        traces += result.traces
        goals += goal_imgs
        bar.update(len(batch))
        bar.set_postfix(success_rate=f"{np.mean([r['success'] for r in records]):.2f}")
    bar.close()
    return records, traces, goals


def write_outputs(out_dir: Path, cfg: DictConfig, info: dict, records: list[dict], traces, goals, data,
                  with_imagined: bool) -> dict:
    """Write videos, plots, logs.json and summary.json (the two json files last); returns the summary."""
    out_dir = Path(out_dir)
    t = time.perf_counter()
    fps = float(cfg.outputs.fps)
    for rec, tr, goal in zip(records, traces, goals):
        stem = f"eval_{rec['eval_index']:03d}_ep{rec['episode']}"
        if cfg.outputs.videos:
            path = out_dir / "videos" / f"{stem}.mp4"
            write_video(path, episode_frames(tr, goal, with_imagined), fps=fps)
            rec["video"] = str(path.relative_to(out_dir))
        if cfg.outputs.plots:
            goal_eef = np.asarray(rec["goal_eef_pos"])
            path = out_dir / "plots" / f"eef_{stem}.png"
            ok = "success" if rec["success"] else "failure"
            plot_eef_paths(path, tr, goal_eef, f"{info['planner']} eval {rec['eval_index']} (episode "
                                                f"{rec['episode']}): {ok}")
            rec["eef_plot"] = str(path.relative_to(out_dir))
    if cfg.outputs.plots and records:
        plot_success(out_dir / "plots" / "success.png", records,
                     f"{info['planner']} goal_H={info['goal_H']}: success per episode")
    summary = summarize(records, info)
    logs = {"config": OmegaConf.to_container(cfg, resolve=True), "info": info,
            "episodes": sorted(records, key=lambda r: r["eval_index"]),
            "timings": {"outputs_seconds": time.perf_counter() - t,
                        "planning_seconds_total": summary["planning_seconds_total"]}}
    write_json(out_dir / LOGS_FILE, logs)
    write_json(out_dir / SUMMARY_FILE, summary)
    return summary
