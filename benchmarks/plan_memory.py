#!/usr/bin/env python
"""Peak resident memory of a whole planning job (plan.py) against n_evals.

    python benchmarks/plan_memory.py --run outputs/demo_run                        # n_evals 1 10 20 50, cem_cpu
    python benchmarks/plan_memory.py --run outputs/demo_run --full-run outputs/full_run --n-evals 1 10
    python benchmarks/plan_memory.py --run RUN --override batch_size=50 --n-evals 50  # the old one-batch behaviour

Each point is one ``plan.py`` process (default settings plus ``--override``s, goal_H 8, videos and
plots on, wandb disabled); its peak RSS is the kernel's ``ru_maxrss`` of that process (``os.wait4``),
so ffmpeg and other children do not count, and nothing is sampled. ``--full-run`` is a run trained at
the full size (``predictor=vit img_size=196``); the planner there defaults to a small CEM budget.
Prints one line per point and a markdown table; figures depend on the machine (say which).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL_CEM = ["planner=cem", "planner.num_samples=32", "planner.topk=4", "planner.opt_steps=3"]


def run_point(run: Path, n: int, planner: list[str], overrides: list[str], goal_h: int) -> dict:
    """One plan.py job; returns its peak RSS, wall time, batch size and success rate."""
    with tempfile.TemporaryDirectory(prefix="plan_memory_") as tmp:
        cmd = [sys.executable, str(ROOT / "plan.py"), "--config-name=plan", f"ckpt_base_path={run}",
               f"n_evals={n}", f"goal_H={goal_h}", *planner, "progress=false", "wandb.mode=disabled",
               f"hydra.run.dir={tmp}/out", *overrides]
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t
        summary_path = Path(tmp) / "out" / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    batch = re.search(r"(\d+) evaluations at a time", out)
    return {"n_evals": n, "rc": proc.returncode, "peak_rss_mib": usage.ru_maxrss / 1024, "seconds": seconds,
            "batch": int(batch.group(1)) if batch else None, "success_rate": summary.get("success_rate"),
            "tail": "" if proc.returncode == 0 else out.strip().splitlines()[-1] if out.strip() else ""}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="a training run (the demo model)")
    p.add_argument("--full-run", type=Path, help="a training run at the full size (predictor=vit img_size=196)")
    p.add_argument("--n-evals", type=int, nargs="+", default=[1, 10, 20, 50],
                   help="episodes planned together, one measurement each (default 1 10 20 50)")
    p.add_argument("--goal-h", type=int, default=8, help="goal horizon in planning steps (default 8)")
    p.add_argument("--planner", default="cem_cpu", help="planner of the demo model (default cem_cpu)")
    p.add_argument("--override", action="append", default=[], help="plan.py override for every point, repeatable")
    args = p.parse_args(argv)
    for r in filter(None, (args.run, args.full_run)):
        if not (r / "run_info.json").is_file():
            print(f"plan_memory.py: error: {r} is not a training run directory", file=sys.stderr)
            return 2
    models = [("demo", args.run, [f"planner={args.planner}"])]
    if args.full_run:
        models.append(("full-size", args.full_run, SMALL_CEM))
    print(f"# plan.py peak RSS, goal_H {args.goal_h}, overrides {args.override or 'none'}; "
          f"{platform.machine()} CPU, {os.cpu_count()} cores")
    rows = []
    for label, run, planner in models:
        for n in args.n_evals:
            r = {"model": label, "planner": " ".join(planner), **run_point(run, n, planner, args.override, args.goal_h)}
            rows.append(r)
            print(f"{label:9s} n_evals {n:3d}: peak RSS {r['peak_rss_mib']:7.0f} MiB, batch {r['batch']}, "
                  f"{r['seconds']:6.0f} s, success {r['success_rate']}" + (f"  FAILED: {r['tail']}" if r["rc"] else ""),
                  flush=True)
    print("\n| model | planner | n_evals | batch | peak RSS (MiB) | wall (s) | exit |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['planner']} | {r['n_evals']} | {r['batch']} | {r['peak_rss_mib']:.0f} | "
              f"{r['seconds']:.0f} | {r['rc']} |")
    return 0 if all(r["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
