"""Run the evaluation in batches of envs and write every output of a planning dir, batch by batch.

Output dir layout::

    logs.json                 {"config", "info", "episodes": [per-episode records], "timings", "output_errors"}
    summary.json              planning.outputs.summarize(...)
    videos/eval_XXX_epY.mp4   executed view | goal frame (| decoded imagined frame)
    plots/eef_eval_XXX.png    planned (commanded) vs executed end-effector path
    plots/success.png         success and final object distance per episode

Memory stays bounded by the batch, not by ``n_evals``: each batch's videos and plots are written as
soon as it finishes, then its envs, frames and traces are dropped; only the per-episode records
(small dicts) are kept. An output that cannot be written (disk full, no memory to start ffmpeg, ...)
does not lose the evaluation: the first failure is remembered, later videos / plots are skipped,
planning goes on, ``logs.json`` and ``summary.json`` are written, and then :class:`OutputError`
reports the failure in one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from datasets.video_io import write_video
from planning.evaluator import evaluate_batch, seed_simulation
from planning.outputs import LOGS_FILE, SUMMARY_FILE, OutputError, episode_frames, summarize, write_json
from planning.plots import plot_eef_paths, plot_success
from utils.progress import progress as progress_bar

log = logging.getLogger(__name__)
_WRITE_ERRORS = (OSError, MemoryError, RuntimeError, ValueError)  # what writing a video / png raises


def run_batches(make_env, model, normalizer, data, specs, mpc, settings, device, batch_size: int,
                progress: bool = True, on_batch: Callable | None = None) -> list[dict]:
    """Evaluate ``specs`` in batches of ``batch_size`` envs; returns the records, aligned with ``specs``.

    ``on_batch(records, traces, goal_images)`` is called after each batch (it writes the batch's
    videos and plots); the batch's envs, traces and frames are released before the next one starts.
    """
    size = max(1, int(batch_size))
    records: list[dict] = []
    bar = progress_bar(total=len(specs), desc="episodes", disable=not progress)
    for start in range(0, len(specs), size):
        batch = specs[start:start + size]
        envs = []
        try:
            for spec in batch:
                seed_simulation(spec.seed)
                envs.append(make_env())
            recs, result, goal_imgs = evaluate_batch(model, normalizer, data, envs, batch, mpc, settings, device)
        finally:
            for env in envs:
                env.close()
        if on_batch is not None:
            on_batch(recs, result.traces, goal_imgs)
        records += recs
        del envs, result, goal_imgs
        bar.update(len(batch))
        bar.set_postfix(success_rate=f"{np.mean([r['success'] for r in records]):.2f}")
    bar.close()
    return records


class OutputWriter:
    """Writes the per-episode videos and eef plots of each batch, then the success plot.

    A write that fails is recorded in ``errors`` (and logged); every later video / plot is skipped,
    because what broke one (no space, no memory) would break the next ones too.
    """

    def __init__(self, out_dir: Path, cfg: DictConfig, planner: str, goal_h: int, with_imagined: bool):
        self.out_dir, self.planner, self.goal_h = Path(out_dir), planner, int(goal_h)
        self.videos, self.plots = bool(cfg.outputs.videos), bool(cfg.outputs.plots)
        self.fps, self.with_imagined = float(cfg.outputs.fps), bool(with_imagined)
        self.errors: list[str] = []
        self.skipped = 0
        self.seconds = 0.0

    def _write(self, rec: dict | None, key: str, rel: str, fn: Callable, *args) -> None:
        """``fn(out_dir / rel, *args)``; on success ``rec[key] = rel``; a failure is kept, later writes skipped."""
        if self.errors:
            self.skipped += 1
            return
        try:
            fn(self.out_dir / rel, *args)
        except _WRITE_ERRORS as exc:
            self.errors.append(f"{self.out_dir / rel}: {type(exc).__name__}: {exc}")
            log.warning("could not write %s (%s): later videos and plots are skipped; the results are still saved",
                        rel, exc)
            return
        if rec is not None:
            rec[key] = rel

    def _video(self, path: Path, trace, goal: np.ndarray) -> None:
        write_video(path, episode_frames(trace, goal, self.with_imagined), fps=self.fps)

    def _eef_plot(self, path: Path, rec: dict, trace) -> None:
        ok = "success" if rec["success"] else "failure"
        plot_eef_paths(path, trace, np.asarray(rec["goal_eef_pos"]),
                       f"{self.planner} eval {rec['eval_index']} (episode {rec['episode']}): {ok}")

    def write_batch(self, records: list[dict], traces, goals) -> None:
        """Videos and eef plots of one batch (records get their ``video`` / ``eef_plot`` paths)."""
        t = time.perf_counter()
        for rec, tr, goal in zip(records, traces, goals):
            stem = f"eval_{rec['eval_index']:03d}_ep{rec['episode']}"
            if self.videos:
                self._write(rec, "video", f"videos/{stem}.mp4", self._video, tr, goal)
            if self.plots:
                self._write(rec, "eef_plot", f"plots/eef_{stem}.png", self._eef_plot, rec, tr)
        self.seconds += time.perf_counter() - t

    def finish(self, records: list[dict]) -> None:
        """The success plot over every episode."""
        if self.plots and records:
            self._write(None, "", "plots/success.png", plot_success, sorted(records, key=lambda r: r["eval_index"]),
                        f"{self.planner} goal_H={self.goal_h}: success per episode")

    def raise_if_failed(self) -> None:
        """One-line :class:`OutputError` naming the first output that could not be written."""
        if self.errors:
            more = f"; {self.skipped} later video(s)/plot(s) skipped" if self.skipped else ""
            raise OutputError(f"could not write {self.errors[0]}{more}; the results are saved in "
                              f"{self.out_dir / LOGS_FILE} and {self.out_dir / SUMMARY_FILE}")


def save_results(out_dir: Path, cfg: DictConfig, info: dict, records: list[dict], writer: OutputWriter) -> dict:
    """Write logs.json and summary.json (atomically); returns the summary."""
    summary = summarize(records, info)
    logs = {"config": OmegaConf.to_container(cfg, resolve=True), "info": info,
            "episodes": sorted(records, key=lambda r: r["eval_index"]),
            "timings": {"outputs_seconds": writer.seconds,
                        "planning_seconds_total": summary["planning_seconds_total"]},
            "output_errors": list(writer.errors)}
    write_json(Path(out_dir) / LOGS_FILE, logs)
    write_json(Path(out_dir) / SUMMARY_FILE, summary)
    return summary
