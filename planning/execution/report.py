"""Run the evaluation in batches of envs and write every output of a planning dir, batch by batch.

Output dir layout::

    logs.json                 {"config", "info", "episodes": [per-episode records], "timings", "output_errors"}
    summary.json              planning.reporting.outputs.summarize(...)
    videos/eval_XXX_epY.mp4   executed view | goal frame (| decoded imagined frame)
    plots/eef_eval_XXX.png    planned (commanded) vs executed end-effector path
    plots/success.png         success and final object distance per episode
    actions/eval_XXX_epY.npz  the env actions executed (outputs.actions=true; datasets.executed_actions)
    job.json, batches/        the job's identity and its finished batches (planning.execution.resume)

Memory stays bounded by the batch, not by ``n_evals``: each batch's videos and plots are written as
soon as it finishes, then its records (``plan.py`` commits them to ``batches/``, so a killed job
resumes after its last finished batch), and its envs, frames and traces are dropped. An output that
cannot be written (disk full, no memory to start ffmpeg, ...) does not lose the evaluation: the first
failure is remembered, later videos / plots are skipped, planning goes on, ``logs.json`` and
``summary.json`` are written, and then :class:`OutputError` reports the failure in one line. A CUDA
out-of-memory error in a batch is :class:`BatchOutOfMemory`, with what the GPU held when it happened.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from datasets import executed_actions
from datasets.video_io import write_video
from planning.execution.evaluator import evaluate_batch, seed_simulation
from planning.reporting.outputs import (
    LOGS_FILE,
    SUMMARY_FILE,
    OutputError,
    episode_frames,
    summarize,
    write_json,
)
from planning.reporting.plots import plot_eef_paths, plot_success
from utils.progress import progress as progress_bar

log = logging.getLogger(__name__)
_WRITE_ERRORS = (OSError, MemoryError, RuntimeError, ValueError)  # what writing a video / png raises
_UNITS = {"B": 1, "KiB": 2 ** 10, "MiB": 2 ** 20, "GiB": 2 ** 30, "TiB": 2 ** 40}


class BatchOutOfMemory(Exception):
    """CUDA ran out of memory planning one batch (the batches before it are finished and saved).

    Attributes:
        size: evaluations planned together in the failed batch; finished: evaluations finished before it.
        base / peak / wanted: bytes allocated on the GPU before the batch, at most during it, and the request
            that failed (None where not known, e.g. off a GPU).
    """

    def __init__(self, message: str, size: int, finished: int, base: int | None = None, peak: int | None = None,
                 wanted: int | None = None):
        super().__init__(message)
        self.size, self.finished, self.base, self.peak, self.wanted = size, finished, base, peak, wanted


def _wanted_bytes(message: str) -> int | None:
    """The request a CUDA out-of-memory message names ("Tried to allocate 2.50 GiB"), in bytes."""
    m = re.search(r"Tried to allocate ([0-9.]+) ?(B|KiB|MiB|GiB|TiB)", message)
    return int(float(m.group(1)) * _UNITS[m.group(2)]) if m else None


def run_batches(make_env, model, normalizer, data, specs, mpc, settings, device, batch_size: int,
                progress: bool = True, on_batch: Callable | None = None) -> list[dict]:
    """Evaluate ``specs`` in batches of ``batch_size`` envs; returns the records, aligned with ``specs``.

    ``on_batch(records, traces, goal_images)`` is called after each batch (it writes the batch's
    videos and plots, and records the batch as finished); the batch's envs, traces and frames are
    released before the next one starts.

    Raises:
        BatchOutOfMemory: CUDA ran out of memory in a batch (every batch before it went through ``on_batch``).
    """
    size = max(1, int(batch_size))
    records: list[dict] = []
    cuda = str(device).startswith("cuda") and torch.cuda.is_available()
    bar = progress_bar(total=len(specs), desc="episodes", disable=not progress)
    for start in range(0, len(specs), size):
        batch = specs[start:start + size]
        envs = []
        base = None
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        try:
            for spec in batch:
                seed_simulation(spec.seed)
                envs.append(make_env())
            recs, result, goal_imgs = evaluate_batch(model, normalizer, data, envs, batch, mpc, settings, device)
        except torch.cuda.OutOfMemoryError as exc:
            peak = torch.cuda.max_memory_allocated(device) if cuda else None
            raise BatchOutOfMemory(str(exc), len(batch), len(records), base, peak, _wanted_bytes(str(exc))) from exc
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
    """Writes the per-episode videos, eef plots and executed actions of each batch, then the success plot.

    A write that fails is recorded in ``errors`` (and logged); every later video / plot is skipped,
    because what broke one (no space, no memory) would break the next ones too.
    """

    def __init__(self, out_dir: Path, cfg: DictConfig, planner: str, goal_h: int, with_imagined: bool,
                 dataset: tuple[str, int] | None = None):
        """dataset: (name, n_episodes) of the dataset planned on, recorded with the executed actions
        (``cfg.outputs.actions``)."""
        self.out_dir, self.planner, self.goal_h = Path(out_dir), planner, int(goal_h)
        self.videos, self.plots = bool(cfg.outputs.videos), bool(cfg.outputs.plots)
        self.actions = bool(cfg.outputs.get("actions", False))
        if self.actions and dataset is None:
            raise ValueError("outputs.actions needs the dataset's name and episode count")
        self.dataset = dataset
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

    def _executed(self, path: Path, rec: dict, trace) -> None:
        name, n = self.dataset
        executed_actions.save(path, executed_actions.ExecutedActions(
            np.stack(trace.actions), int(rec["episode"]), int(rec["start"]), name, int(n), bool(rec["success"])))

    def write_batch(self, records: list[dict], traces, goals) -> tuple[float, list[str]]:
        """Videos, eef plots and executed actions of one batch (records get their ``video`` / ``eef_plot`` /
        ``actions_file`` paths).

        Returns the seconds they took and the outputs of this batch that could not be written."""
        t, failed_before = time.perf_counter(), len(self.errors)
        for rec, tr, goal in zip(records, traces, goals):
            stem = f"eval_{rec['eval_index']:03d}_ep{rec['episode']}"
            if self.videos:
                self._write(rec, "video", f"videos/{stem}.mp4", self._video, tr, goal)
            if self.plots:
                self._write(rec, "eef_plot", f"plots/eef_{stem}.png", self._eef_plot, rec, tr)
            if self.actions and tr.actions:
                self._write(rec, "actions_file", f"actions/{stem}{executed_actions.SUFFIX}", self._executed, rec, tr)
        seconds = time.perf_counter() - t
        self.seconds += seconds
        return seconds, self.errors[failed_before:]

    def finish(self, records: list[dict]) -> None:
        """The success plot over every episode."""
        if self.plots and records:
            self._write(None, "", "plots/success.png", plot_success, sorted(records, key=lambda r: r["eval_index"]),
                        f"{self.planner} goal_H={self.goal_h}: success per episode")

    def raise_if_failed(self, errors: list[str] | None = None) -> None:
        """One-line :class:`OutputError` naming the first output that could not be written (``errors``: over every
        launch of the job; default this writer's)."""
        errors = self.errors if errors is None else errors
        if errors:
            more = f"; {self.skipped} later video(s)/plot(s) skipped" if self.skipped else ""
            raise OutputError(f"could not write {errors[0]}{more}; the results are saved in "
                              f"{self.out_dir / LOGS_FILE} and {self.out_dir / SUMMARY_FILE}")


def save_results(out_dir: Path, cfg: DictConfig, info: dict, records: list[dict], outputs_seconds: float,
                 output_errors: list[str]) -> dict:
    """Write logs.json and summary.json (atomically); returns the summary.

    ``outputs_seconds`` / ``output_errors``: what writing the videos and plots took and what failed, over every
    launch of the job."""
    summary = summarize(records, info)
    logs = {"config": OmegaConf.to_container(cfg, resolve=True), "info": info,
            "episodes": sorted(records, key=lambda r: r["eval_index"]),
            "timings": {"outputs_seconds": float(outputs_seconds),
                        "planning_seconds_total": summary["planning_seconds_total"]},
            "output_errors": list(output_errors)}
    write_json(Path(out_dir) / LOGS_FILE, logs)
    write_json(Path(out_dir) / SUMMARY_FILE, summary)
    return summary
