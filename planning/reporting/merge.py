"""Merge planning outputs: shards into one result, or many results into a table by a key.

    python -m planning.reporting.merge SHARD_DIR [SHARD_DIR ...] --out OUT      # one logs.json + summary.json
    python -m planning.reporting.merge MULTIRUN_DIR --out OUT                    # every logs.json found below
    python -m planning.reporting.merge --by goal_H MULTIRUN_DIR [--out OUT]      # horizon study table + png

A merged summary is computed by the same ``planning.reporting.outputs.summarize`` as a single job, on the
union of the shards' per-episode records, so it equals the single job's (same seeds => same
evaluations). Shards must agree on the run, goal_H, seed, n_evals and the planner / objective / MPC /
episode settings; an evaluation found twice is an error; missing evaluations are reported
(``complete: false``). ``--by`` groups by (planner, KEY), merging the shards of each group.

wandb (``planning.reporting.wandb_log``, settings from the jobs' ``wandb`` config, ``--wandb-mode`` overrides the
mode): shards log nothing themselves, so a merge of shards logs the merged evaluation as one run;
``--by`` logs each sharded group once the same way, plus one run with the table and its plot.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from pathlib import Path

from planning.reporting.outputs import LOGS_FILE, SUMMARY_FILE, OutputError, summarize, write_json
from utils.atomic_files import atomic_write_text

log = logging.getLogger(__name__)
_SAME = ("planner", "goal_H", "frameskip", "ckpt_base_path", "model_epoch", "success_metric", "n_evals_requested")
_SAME_CONFIG = ("seed", "planner", "objective", "mpc", "episodes", "eval", "history_frames", "goal_source",
                "dataset_path", "model_epoch")
_TABLE_COLS = ("success_rate", "success_ci95", "task_success_rate", "goal_reached_rate", "goal_reached_ci95",
               "mean_final_object_dist", "mean_final_eef_dist", "n_start_is_success", "model_failure_share",
               "failed_first_plan_cost", "failed_true_end_distance",
               "mean_final_latent_dist", "n_evals", "n_distinct_episodes", "planning_seconds_per_replan",
               "actions_chosen_by")


class MergeError(Exception):
    """Inconsistent or missing inputs (one line, exit code 2)."""


def find_logs(dirs: list[str | Path]) -> list[Path]:
    """logs.json of each dir, or every logs.json below a dir that has none itself (a multirun dir)."""
    found = []
    for d in map(Path, dirs):
        if not d.is_dir():
            raise MergeError(f"{d} is not a directory")
        if (d / LOGS_FILE).is_file():
            found.append(d / LOGS_FILE)
        else:
            below = sorted(p for p in d.rglob(LOGS_FILE) if not p.parent.name.startswith("merged"))
            for job in sorted(p.parent.parent for p in d.rglob(".hydra/config.yaml")):
                if not (job / LOGS_FILE).is_file():
                    log.warning("%s has no %s (the job failed or is still running): left out", job, LOGS_FILE)
            if not below:
                raise MergeError(f"no {LOGS_FILE} in or below {d}")
            found += below
    return found


def merge_logs(logs: list[dict], sources: list[str]) -> tuple[dict, dict]:
    """Merge shard logs (dicts as written to logs.json) -> (merged logs, merged summary)."""
    if not logs:
        raise MergeError("nothing to merge")
    ref, ref_cfg = logs[0]["info"], logs[0]["config"]
    for lg, src in zip(logs, sources):
        diff = [k for k in _SAME if lg["info"].get(k) != ref.get(k)]
        diff += [f"config.{k}" for k in _SAME_CONFIG if lg["config"].get(k) != ref_cfg.get(k) and k not in diff]
        if diff:
            raise MergeError(f"{src} differs from {sources[0]} in {', '.join(diff)}: not shards of one job")
    episodes, seen = [], {}
    for lg, src in zip(logs, sources):
        for rec in lg["episodes"]:
            if rec["eval_index"] in seen:
                raise MergeError(f"evaluation {rec['eval_index']} is in both {seen[rec['eval_index']]} and {src}")
            seen[rec["eval_index"]] = src
            episodes.append(rec)
    episodes.sort(key=lambda r: r["eval_index"])
    expected = ref.get("n_evals_requested")
    missing = sorted(set(range(expected)) - set(seen)) if expected else []
    if missing:
        log.warning("merged result is incomplete: %d of %d evaluations missing (%s)", len(missing), expected,
                    missing[:10])
    info = {**ref, "shard": {"merged_from": len(logs), "count": ref.get("shard", {}).get("count")},
            "complete": not missing, "missing_evals": missing}
    summary = summarize(episodes, info)
    config = {**logs[0]["config"], "shard": {"index": None, "count": logs[0]["config"].get("shard", {}).get("count")}}
    merged = {"config": config, "info": info, "episodes": episodes, "merged_from": sources,
              "timings": {"planning_seconds_total": summary["planning_seconds_total"]}}
    return merged, summary


def load(paths: list[Path]) -> list[dict]:
    out = []
    for p in paths:
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise MergeError(f"cannot read {p}: {exc}") from exc
    return out


def group_by(logs: list[dict], sources: list[str], key: str) -> list[tuple[list[dict], list[str]]]:
    """(logs, sources) of each (planner, ``info[key]``) group, sorted by planner then value."""
    groups: dict = {}
    for lg, src in zip(logs, sources):
        if key not in lg["info"]:
            raise MergeError(f"{src} has no {key!r} in its info")
        groups.setdefault((str(lg["info"]["planner"]), lg["info"][key]), []).append((lg, src))
    return [([m[0] for m in groups[g]], [m[1] for m in groups[g]])
            for g in sorted(groups, key=lambda g: (g[0], isinstance(g[1], str), g[1]))]


def table_rows(logs: list[dict], sources: list[str], key: str) -> list[dict]:
    """Group logs by (planner, ``info[key]``) (shards of a group are merged) -> one row per group, sorted."""
    rows = []
    for members, srcs in group_by(logs, sources, key):
        _, summary = merge_logs(members, srcs)
        rows.append({key: summary[key], "planner": summary["planner"], **{c: summary.get(c) for c in _TABLE_COLS},
                     "complete": summary["complete"]})
    return rows


def wandb_cfg(logs: list[dict], mode: str | None) -> dict:
    """The jobs' ``wandb`` config group, with ``mode`` (``--wandb-mode``) overriding theirs."""
    return {**(logs[0]["config"].get("wandb") or {}), **({"mode": mode} if mode else {})}


def log_merged(logs: list[dict], sources: list[str], merged: dict, summary: dict, out: Path,
               mode: str | None) -> None:
    """Log a merge of shards to wandb as one evaluation run (nothing when the inputs are not shards)."""
    if not any((lg["info"].get("shard") or {}).get("count", 1) > 1 for lg in logs):
        return
    from planning.reporting import wandb_log

    wcfg = wandb_cfg(logs, mode)
    root = {rec["eval_index"]: Path(src) for lg, src in zip(logs, sources) for rec in lg["episodes"]}
    wandb_log.log_evaluation(wcfg, out, merged["info"], summary, merged["episodes"], merged["config"],
                             media_dir=lambda rec: root[rec["eval_index"]])
    if wcfg.get("log_to_training_run"):
        wandb_log.log_to_training_run(wcfg, merged["info"], summary)


def format_cell(v, spec: str | None = None) -> str:
    """A table cell: None -> '-', a number with ``spec`` (default: floats .3f, ints as they are)."""
    if v is None:
        return "-"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        return f"{format_cell(v[0], spec or '.2f')}-{format_cell(v[1], spec or '.2f')}"  # an interval
    if isinstance(v, (int, float)) and not isinstance(v, bool) and (spec or isinstance(v, float)):
        return format(v, spec or ".3f")
    return str(v)


def markdown_table(rows: list[dict], cols: list[str], headers: list[str] | None = None,
                   formats: dict[str, str] | None = None) -> str:
    """Markdown table of ``rows`` (dicts) over ``cols``; ``headers`` default to the column keys,
    ``formats`` maps a column to its format spec (see :func:`format_cell`)."""
    formats = formats or {}
    lines = ["| " + " | ".join(headers or cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join(format_cell(r.get(c), formats.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_markdown(rows: list[dict], key: str) -> str:
    return markdown_table(rows, [key, "planner", *_TABLE_COLS])


def to_csv(rows: list[dict], key: str) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[key, "planner", *_TABLE_COLS, "complete"])
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m planning.reporting.merge", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("dirs", nargs="+", help="planning output dirs (or a dir holding several, e.g. a multirun dir)")
    p.add_argument("--out", help="output dir (default: merged/ in the first dir, or the first dir itself with --by)")
    p.add_argument("--by", metavar="KEY", help="make a table grouped by this key (e.g. goal_H) instead of one merge")
    p.add_argument("--wandb-mode", choices=["online", "offline", "disabled"],
                   help="override the jobs' wandb.mode for what this merge logs")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        paths = find_logs(args.dirs)
        logs, sources = load(paths), [str(x.parent) for x in paths]
        if args.by:
            return _by_table(args, logs, sources)
        merged, summary = merge_logs(logs, sources)
        out = Path(args.out or Path(args.dirs[0]) / "merged")
        write_json(out / LOGS_FILE, merged)
        write_json(out / SUMMARY_FILE, summary)
        rate = "n/a" if summary["success_rate"] is None else f"{summary['success_rate']:.3f}"
        print(f"merged {len(logs)} result(s), {summary['n_evals']} evaluations: success_rate "
              f"{rate}{'' if summary['complete'] else ' (INCOMPLETE)'} -> {out}")
        _to_wandb(lambda: log_merged(logs, sources, merged, summary, out, args.wandb_mode))
        return 0
    except MergeError as exc:
        print(f"planning.reporting.merge: error: {exc}", file=sys.stderr)
        return 2
    except OutputError as exc:
        print(f"planning.reporting.merge: error: {exc}", file=sys.stderr)
        return 1


def _to_wandb(fn) -> None:
    """Run a wandb logging step after the files are written; its failure is one OutputError line."""
    try:
        fn()
    except Exception as exc:  # wandb's own errors (no network, bad key, ...)
        raise OutputError(f"could not log to wandb: {type(exc).__name__}: {exc} (the merged files are written)") from exc


def _by_table(args, logs: list[dict], sources: list[str]) -> int:
    """``--by KEY``: the table (md / csv / json), its plot, and the wandb runs."""
    from planning.reporting.plots import plot_horizon

    rows = table_rows(logs, sources, args.by)
    out = Path(args.out or args.dirs[0])
    out.mkdir(parents=True, exist_ok=True)
    stem, plot = f"{args.by}_table", out / f"success_vs_{args.by}.png"
    md = to_markdown(rows, args.by)
    atomic_write_text(out / f"{stem}.md", md)
    atomic_write_text(out / f"{stem}.csv", to_csv(rows, args.by))
    write_json(out / f"{stem}.json", rows)
    if all(isinstance(r[args.by], (int, float)) for r in rows):
        plot_horizon(plot, rows, f"success against {args.by}", key=args.by)
    print(md, end="")
    print(f"written: {out / stem}.md/.csv/.json and {plot}")

    def publish():
        from planning.reporting import wandb_log

        for members, srcs in group_by(logs, sources, args.by):
            merged, summary = merge_logs(members, srcs)
            log_merged(members, srcs, merged, summary, out, args.wandb_mode)
        wandb_log.log_horizon_study(wandb_cfg(logs, args.wandb_mode), out, rows, args.by, plot if plot.is_file() else None,
                                    logs[0]["info"].get("train_run_name"))

    _to_wandb(publish)
    return 0


if __name__ == "__main__":
    sys.exit(main())
