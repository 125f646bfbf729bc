#!/usr/bin/env python
"""Planning quality of a trained run: success against goal_H for the world model's CEM, the prior-seeded CEM, the
prior alone and the baselines, on the run's test episodes (never trained or tuned on).

    python benchmarks/plan_quality.py --run outputs/demo/train --out plan_outputs/quality
    python benchmarks/plan_quality.py --run RUN --goal-h 3,5,9 --planners cem_cpu,random,replay,hold --n 20
    python benchmarks/plan_quality.py --run RUN --plan-arg objective.alpha=1 --cem-arg planner.num_samples=128

Every cell (planner x goal_H) is one ``plan.py`` job on the run's *test* episodes (``--split``, default
``test``; tune on ``val``): the goal is the episode's terminal state (the scripted demos hold the task's
success state for their last steps, so the goal is a state where the task is done) and the start is
``goal_H x frameskip`` env steps before it; the largest goal_H that the episodes allow starts at the
episode's first frame, i.e. the planner has to do the whole task. ``--n`` evaluations per cell (episodes
are reused with another seed when there are fewer: each cell says how many distinct episodes it used, and its
95 % interval counts those). Columns: ``cem`` (the world model alone), ``cem_prior`` (CEM seeded by the
behaviour-cloned action prior), ``prior`` (the prior alone), ``random``, ``hold`` (do nothing) and ``replay``
(the demonstration's own actions). A goal_H longer than the episodes allow is reported
and skipped. Finished cells (their summary.json exists) are not rerun, and an interrupted cell resumes
inside the cell: its plan.py job keeps the evaluations it finished (``batches/``) and plans the rest, so rerunning
the same command after a kill or preemption loses at most the batch in progress. A cell that holds evaluations
planned with other settings stops the benchmark in one line (use another ``--out``). At the end ``planning.reporting.merge --by goal_H`` writes ``goal_H_table.{md,csv,json}`` and
``success_vs_goal_H.png`` into ``--out``; the table is printed with the wall time.

Metrics per cell: task success (the env's own check after the last step), goal reached (object within
``eval.goal_tolerance`` of the goal's and the gripper opening matching the goal's), their 95 % Wilson intervals,
n and the distinct episodes, evaluations whose start already satisfies the task (not counted in the rates),
the share of model failures (failed evaluations whose plan the world model scored below the demonstration's own
actions: the ranking diagnostic) with the failed plans' predicted cost beside their true end's latent distance,
final object / eef distances, seconds per re-plan.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

log = logging.getLogger("plan_quality")
DEFAULT_GOAL_H = "3,5,10,15,20,25"
DEFAULT_PLANNERS = "cem,cem_prior,prior,random,hold,replay"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, type=Path, help="training run dir (holds .hydra/ and checkpoints/)")
    p.add_argument("--out", type=Path, default=None, help="output dir (default plan_outputs/quality_<run name>)")
    p.add_argument("--goal-h", default=DEFAULT_GOAL_H, help=f"comma-separated goal horizons (default {DEFAULT_GOAL_H})")
    p.add_argument("--planners", default=None,
                   help=f"comma-separated conf/planner names (default {DEFAULT_PLANNERS}: CEM's full budget, ~2 s "
                        "per re-plan of 8 episodes at 56 px on 2 CPU cores; cem_cpu / cem_prior_cpu: a small one)")
    p.add_argument("--dataset", type=Path, default=None,
                   help="plan on all episodes of another converted dataset (another source or generator) instead "
                        "of the run's own split")
    p.add_argument("--split", default="test", choices=("test", "val", "train"),
                   help="the run's episodes to plan on (default test: never trained or tuned on; choose settings "
                        "on val)")
    p.add_argument("--n", type=int, default=20, help="evaluations per cell (default 20)")
    p.add_argument("--seed", type=int, default=0, help="evaluation seed (episode order, planner noise)")
    p.add_argument("--plan-arg", action="append", default=[], metavar="OVERRIDE",
                   help="extra Hydra override for every plan.py job (repeatable), e.g. objective.alpha=1")
    p.add_argument("--cem-arg", action="append", default=[], metavar="OVERRIDE",
                   help="extra Hydra override for the model-based planners only (cem*, random_shooting), "
                        "e.g. planner.num_samples=128")
    p.add_argument("--videos", action="store_true", help="write per-episode videos and plots (slower)")
    p.add_argument("--config-name", default="plan", help="plan.py config (default plan)")
    args = p.parse_args(argv)
    if args.n < 1:
        p.error("--n must be >= 1")
    if args.planners is None:
        args.planners = DEFAULT_PLANNERS
    if not (args.run / ".hydra" / "config.yaml").is_file():
        p.error(f"--run {args.run} is not a training run dir (no .hydra/config.yaml)")
    from training.run_dir.checkpoint import latest_checkpoint

    if latest_checkpoint(args.run) is None:
        p.error(f"--run {args.run} has no checkpoint yet: train it first")
    if not all(h.isdigit() and int(h) > 0 for h in args.goal_h.split(",")):
        p.error(f"--goal-h {args.goal_h!r}: comma-separated whole numbers >= 1, e.g. 5,10")
    known = sorted(f.stem for f in (ROOT / "conf" / "planner").glob("*.yaml"))
    if unknown := [name for name in args.planners.split(",") if name not in known]:
        p.error(f"--planners: no planner {', '.join(unknown)} (choose from {', '.join(known)})")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        p.error(f"--out {args.out} is a file, not a directory")
    return args


def cell_dir(out: Path, planner: str, goal_h: int) -> Path:
    return out / f"{planner}_gH{goal_h}"


class CellError(Exception):
    """A cell whose earlier evaluations plan.py refused to resume (other settings): one line, exit code 2."""


def run_cell(args: argparse.Namespace, out: Path, planner: str, goal_h: int) -> str:
    """Run one plan.py job unless it already finished; returns "done", "cached", "resumed" (an interrupted cell
    finished: plan.py planned only what its earlier launch left) or "skipped: <reason>"."""
    from planning.execution.resume import JOB_FILE, finished_evaluations

    d = cell_dir(out, planner, goal_h)
    if (d / "summary.json").is_file():
        return "cached"
    earlier = (d / JOB_FILE).is_file()
    if earlier:
        log.info("%s goal_H=%d: resuming the cell (%d of %d evaluations finished earlier)", planner, goal_h,
                 len(finished_evaluations(d)), args.n)
    media = [] if args.videos else ["outputs.videos=false", "outputs.plots=false"]
    cmd = [sys.executable, str(ROOT / "plan.py"), f"--config-name={args.config_name}",
           f"ckpt_base_path={args.run.resolve()}", f"planner={planner}", f"n_evals={args.n}", f"goal_H={goal_h}",
           f"seed={args.seed}", f"episodes.split={args.split}", "episodes.start_mode=end", "progress=false",
           f"hydra.run.dir={d}", *media, *([f"dataset_path={args.dataset.resolve()}"] if args.dataset else []),
           *args.plan_arg,
           *(args.cem_arg if planner.startswith(("cem", "random_shooting")) else [])]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ})
    if proc.returncode == 2:  # bad cell (e.g. goal_H longer than the episodes): one line, go on
        reason = (proc.stderr.strip().splitlines() or ["exit 2"])[-1]
        if earlier:  # the cell's earlier evaluations: planned with other settings (or another checkpoint)
            raise CellError(f"cell {d.name}: {reason}")
        return f"skipped: {reason}"
    if proc.returncode != 0:
        raise RuntimeError(f"plan.py failed for {planner} goal_H={goal_h} (exit {proc.returncode}; the cell's "
                           f"finished evaluations are kept in {d}, the same command resumes it):\n"
                           f"{proc.stderr[-3000:]}")
    return "resumed" if earlier else "done"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    out = (args.out or ROOT / "plan_outputs" / f"quality_{args.run.resolve().name}").resolve()  # plan.py runs in ROOT
    out.mkdir(parents=True, exist_ok=True)
    horizons = [int(h) for h in args.goal_h.split(",") if h]
    planners = [p for p in args.planners.split(",") if p]
    t0 = time.perf_counter()
    status = {}
    for goal_h in horizons:
        for planner in planners:
            t = time.perf_counter()
            try:
                st = run_cell(args, out, planner, goal_h)
            except CellError as exc:
                print(f"plan_quality: error: {exc}", file=sys.stderr)
                return 2
            status[f"{planner}_gH{goal_h}"] = st
            log.info("%-10s goal_H=%-3d %s (%.0f s)", planner, goal_h, st, time.perf_counter() - t)
            if st.startswith("skipped"):
                break  # the other planners of this goal_H would be skipped for the same reason
    from planning.reporting.merge import main as merge_main

    done = [cell_dir(out, p, h) for h in horizons for p in planners if (cell_dir(out, p, h) / "summary.json").is_file()]
    if not done:
        print("plan_quality: error: no cell finished (see the reasons above)", file=sys.stderr)
        return 2
    rc = merge_main(["--by", "goal_H", "--out", str(out), *map(str, done)])
    wall = time.perf_counter() - t0
    (out / "benchmark.json").write_text(json.dumps({"run": str(args.run.resolve()), "n": args.n, "seed": args.seed,
                                                    "planners": planners, "goal_H": horizons,
                                                    "plan_args": args.plan_arg, "cem_args": args.cem_arg,
                                                    "split": args.split,
                                                    "dataset": str(args.dataset) if args.dataset else None,
                                                    "cells": status,
                                                    "wall_seconds": wall}, indent=1))
    print(f"wall time {wall:.0f} s; cells: " + ", ".join(f"{k} {v}" for k, v in status.items()))
    return rc


if __name__ == "__main__":
    sys.exit(main())
