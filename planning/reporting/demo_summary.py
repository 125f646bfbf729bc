"""Print the closing table of ``run_demo.sh``: planners side by side and where the outputs are.

    python -m planning.reporting.demo_summary --train-run outputs/demo/train PLAN_DIR [PLAN_DIR ...]

Reads each planning directory's ``summary.json`` only (it records the checkpoint and the training step
it planned with); writes the same table to ``<first plan dir>/../demo_summary.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from planning.reporting.merge import markdown_table
from planning.reporting.outputs import SUMMARY_FILE, write_json
from utils.atomic_files import atomic_write_text

_COLS = {  # row key: (header, format, summary.json key)
    "planner": ("planner", None, "planner"),
    "chosen_by": ("actions chosen by", None, "actions_chosen_by"),
    "mpc": ("re-plans", None, None),  # from planner_settings (mpc_label)
    "success_rate": ("success rate", ".2f", "success_rate"),
    "success_ci95": ("95% interval", ".2f", "success_ci95"),
    "goal_reached_rate": ("goal reached", ".2f", "goal_reached_rate"),
    "n_evals": ("n", "d", "n_evals"),
    "n_distinct_episodes": ("episodes", "d", "n_distinct_episodes"),
    "final_latent_dist": ("final latent dist", ".3f", "mean_final_latent_dist"),
    "final_object_dist_m": ("final object dist (m)", ".3f", "mean_final_object_dist"),
    "plan_seconds_per_episode": ("plan s/episode", ".1f", "mean_planning_seconds"),
}


def _load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"demo_summary: cannot read {path}: {e}") from None


def _one(values) -> Any:
    """The value every planner agrees on, else None."""
    found = {v for v in values if v is not None}
    return found.pop() if len(found) == 1 else None


def mpc_label(summary: dict[str, Any]) -> str | None:
    """How the evaluation re-planned, in a few words: the steps executed per re-plan (``every step``, ``[2,1,1,1]``)
    and a later state cost when there was one, e.g. ``[2,1,1,1], later eef cost (rollout readout)``."""
    settings = summary.get("planner_settings") or {}
    taken = settings.get("n_taken_actions")
    if taken is None:
        return None
    label = "every step" if taken == 1 else f"{taken} steps" if isinstance(taken, int) else \
        "[" + ",".join(str(n) for n in taken) + "]"
    later = settings.get("later_objective") or {}
    if later.get("state_weight"):
        label += f", later {later.get('state_position', 'object')} cost ({later.get('state_readout', 'model')} readout)"
    return label


def collect(train_run: Path, plan_dirs: list[Path]) -> dict[str, Any]:
    """Gather the figures of one demo job into a JSON-able dict."""
    summaries = [(d, _load_json(d / SUMMARY_FILE)) for d in plan_dirs]
    rows = [{**{k: s.get(src) for k, (_, _, src) in _COLS.items() if src}, "mpc": mpc_label(s),
             "planner": s.get("planner", d.name),
             "dir": str(d), "encoder_pretrained": s.get("encoder_pretrained")} for d, s in summaries]
    return {"train_run": str(train_run), "train_step": _one(s.get("model_step") for _, s in summaries),
            "checkpoint": _one(s.get("checkpoint") for _, s in summaries),
            "encoder_pretrained": _one(r["encoder_pretrained"] for r in rows), "planners": rows}


def render_table(summary: dict[str, Any]) -> str:
    """Markdown table of the planners plus the output locations."""
    table = markdown_table(summary["planners"], list(_COLS), headers=[h for h, _, _ in _COLS.values()],
                           formats={k: f for k, (_, f, _) in _COLS.items() if f})
    label = {True: "pretrained DINOv2 ViT-S/14", False: "RANDOM frozen ViT-S/14 (encoder.pretrained=false)"}
    lines = [table, f"encoder: {label.get(summary.get('encoder_pretrained'), 'unknown')}",
             f"checkpoint: {summary.get('checkpoint') or summary['train_run']} (step {summary['train_step']})"]
    lines += [f"{r['planner']}: videos, plots and logs.json in {r['dir']}" for r in summary["planners"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("plan_dirs", nargs="+", type=Path, help="planning output directories (with summary.json)")
    p.add_argument("--train-run", type=Path, required=True, help="the training run directory")
    p.add_argument("--elapsed", type=float, default=None, help="wall seconds of the whole job, for the table")
    args = p.parse_args(argv)
    summary = collect(args.train_run, args.plan_dirs)
    table = render_table(summary)
    if args.elapsed is not None:
        summary["elapsed_seconds"] = args.elapsed
        table += f"\nwhole job: {args.elapsed / 60:.1f} min"
    out_dir = args.plan_dirs[0].parent
    atomic_write_text(out_dir / "demo_summary.md", table + "\n")
    write_json(out_dir / "demo_summary.json", summary)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
