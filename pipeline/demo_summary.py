"""Print the closing table of ``run_demo.sh``: planners side by side and where the outputs are.

    python -m pipeline.demo_summary --train-run outputs/demo/train PLAN_DIR [PLAN_DIR ...]

Reads each planning directory's ``summary.json`` and the training run's newest ``train_state.json``;
writes the same table to ``<first plan dir>/../demo_summary.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"demo_summary: cannot read {path}: {e}") from None


def _fmt(x: Any, spec: str = ".3f") -> str:
    if isinstance(x, bool) or x is None:
        return "-" if x is None else str(x)
    if isinstance(x, (int, float)):
        return format(x, spec)
    return str(x)


def collect(train_run: Path, plan_dirs: list[Path]) -> dict[str, Any]:
    """Gather the figures of one demo job into a JSON-able dict."""
    latest = train_run / "checkpoints" / "latest"
    train_state = _load_json(latest / "train_state.json") if (latest / "train_state.json").exists() else {}
    rows = []
    for d in plan_dirs:
        s = _load_json(d / "summary.json")
        rows.append({
            "planner": s.get("planner", d.name),
            "success_rate": s.get("success_rate"),
            "n_evals": s.get("n_evals"),
            "goal_reached_rate": s.get("goal_reached_rate"),
            "final_latent_dist": s.get("mean_final_latent_dist"),
            "final_object_dist_m": s.get("mean_final_object_dist"),
            "plan_seconds_per_episode": s.get("mean_planning_seconds"),
            "dir": str(d),
            "encoder_pretrained": s.get("encoder_pretrained"),
        })
    # every planning summary records whether the run's encoder was pretrained
    flags = {r["encoder_pretrained"] for r in rows if r["encoder_pretrained"] is not None}
    return {"train_run": str(train_run), "train_step": train_state.get("step"),
            "train_epoch": train_state.get("epoch"),
            "encoder_pretrained": flags.pop() if len(flags) == 1 else None, "planners": rows}


def render_table(summary: dict[str, Any]) -> str:
    """Markdown table of the planners plus the output locations."""
    lines = ["| planner | success rate | goal reached | n | final latent dist | final object dist (m) | plan s/episode |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in summary["planners"]:
        lines.append(f"| {r['planner']} | {_fmt(r['success_rate'], '.2f')} | {_fmt(r['goal_reached_rate'], '.2f')} | "
                     f"{_fmt(r['n_evals'], 'd')} | "
                     f"{_fmt(r['final_latent_dist'])} | {_fmt(r['final_object_dist_m'])} | "
                     f"{_fmt(r['plan_seconds_per_episode'], '.1f')} |")
    enc = summary.get("encoder_pretrained")
    label = {True: "pretrained DINOv2 ViT-S/14", False: "RANDOM frozen ViT-S/14 (encoder.pretrained=false)"}
    lines += ["", f"encoder: {label.get(enc, 'unknown')}",
              f"checkpoints: {summary['train_run']}/checkpoints/latest (step {summary['train_step']})"]
    for r in summary["planners"]:
        lines.append(f"{r['planner']}: videos, plots and logs.json in {r['dir']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("plan_dirs", nargs="+", type=Path, help="planning output directories (with summary.json)")
    p.add_argument("--train-run", type=Path, required=True, help="the training run directory")
    p.add_argument("--elapsed", type=float, default=None, help="wall seconds of the whole job, for the table")
    args = p.parse_args(argv)
    summary = collect(args.train_run, args.plan_dirs)
    if args.elapsed is not None:
        summary["elapsed_seconds"] = args.elapsed
    table = render_table(summary)
    if args.elapsed is not None:
        table += f"\nwhole job: {args.elapsed / 60:.1f} min"
    out_dir = args.plan_dirs[0].parent
    (out_dir / "demo_summary.md").write_text(table + "\n")
    (out_dir / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
