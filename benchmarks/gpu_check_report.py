#!/usr/bin/env python
"""The table of ``benchmarks/gpu_check.sh``: issue 10's figures beside their targets, from its result folder.

    python benchmarks/gpu_check_report.py /tmp/gpu_check [--batches 32 256]

Reads ``<step>.status`` / ``<step>.log`` / ``<step>.json`` written by gpu_check.sh and prints a markdown
table (what, figure, target, met). A step that failed, timed out or was skipped says so in its row.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+): step (\d+), .*?([\d.]+) samples/s")
PARAMS_LINE = re.compile(r"model: (\d+) trainable parameters")
COMPILE_LINE = re.compile(r"training step compiled with torch.compile \(mode ([\w-]+)\)")


def status(res: Path, name: str) -> str | None:
    """None when step ``name`` succeeded, else why not (exit code / timeout / skipped / not run)."""
    p = res / f"{name}.status"
    if not p.is_file():
        return "not run"
    s = p.read_text().strip()
    return None if s == "0" else {"124": "timed out"}.get(s, s if not s.isdigit() else f"failed (exit {s})")


def load(res: Path, name: str) -> dict | None:
    p = res / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _throughput_row(res: Path, key: str, what: str, target: str, min_speedup: float | None) -> list[str]:
    """A table row for a train_throughput result ``key``; ``min_speedup``: the target (None: no target)."""
    d = load(res, key)
    if status(res, key) or d is None:
        return [what, status(res, key) or "no result", target, "-"]
    cache, frames = (r["samples_per_s"] for r in d["rows"])
    fig = (f"cache {cache:.0f} samples/s ({d['rows'][0]['placement']}), re-encode {frames:.0f} samples/s, "
           f"torch.compile {d.get('compile') or 'off'}")
    prof = d["rows"][0].get("profile")
    if prof:  # host-bound when the host needs longer to issue a step's kernels than the GPU to run them
        fig += (f"; one cached step: host {prof['host_s'] * 1e3:.1f} ms, GPU busy {prof['device_busy_s'] * 1e3:.1f} ms, "
                f"{prof['kernels']} kernels")
    if min_speedup is None:
        return [what, fig, target, "-"]
    return [what, f"{fig}: **{d['speedup']:.1f}x**", target, mark(d["speedup"] >= min_speedup)]


def row_throughput(res: Path) -> list[str]:
    return _throughput_row(res, "train_throughput", "`train_throughput.py --img-size 196 --batch-size 32` (fp32)",
                           "cache >= 20x re-encode", 20)


def row_throughput_eager(res: Path) -> list[str]:
    return _throughput_row(res, "train_throughput_eager", "same, `--compile false` (eager, before)", "(no target)",
                           None)


def row_profile_big(res: Path) -> list[str]:
    """The cached training step at the large batch, bf16, profiled: is it bound by the host or the GPU?"""
    name, what = "train_profile_big", "`train_throughput.py --mixed-precision bf16 --only-cache --profile`, large batch"
    d = load(res, name)
    if status(res, name) or d is None:
        return [what, status(res, name) or "no result", "(where the step's time goes)", "-"]
    r = d["rows"][0]
    fig = f"batch {r['batch_size']}: {r['samples_per_s']:,.0f} samples/s, torch.compile {d.get('compile') or 'off'}"
    if r.get("profile"):
        p = r["profile"]
        fig += (f"; one step: host {p['host_s'] * 1e3:.1f} ms, GPU busy {p['device_busy_s'] * 1e3:.1f} ms, "
                f"{p['kernels']} kernels")
    return [what, fig, "(where the step's time goes)", "-"]


def row_throughput_host(res: Path) -> list[str]:
    return _throughput_row(res, "train_throughput_host", "same, `--cache-on-device false --num-workers 4` (cache "
                           "too big for the GPU: pinned host batches)", "(no target)", None)


def row_training(res: Path, bs: int, suffix: str = "", target: bool = True) -> list[str]:
    """Row of the trainer run ``train_bs{bs}{suffix}``; ``target``: judged against 10,000 samples/s."""
    name, what = f"train_bs{bs}{suffix}", f"`train_robomimic_compress.py img_size=196 predictor=vit bf16`, batch {bs}"
    log = (res / f"{name}.log").read_text(errors="replace") if (res / f"{name}.log").is_file() else ""
    epochs = EPOCH_LINE.findall(log)
    goal = ">= 10,000 samples/s" if target else "(comparison)"
    if status(res, name) or not epochs:
        return [what + suffix.replace("_", ", training.compile="), status(res, name) or "no epoch line in the log",
                goal, "-"]
    params = PARAMS_LINE.search(log)
    compiled = COMPILE_LINE.search(log)
    what += f", torch.compile {compiled.group(1) if compiled else 'off'}"
    last = float(epochs[-1][3])
    fig = (f"{last:,.0f} samples/s (last of {len(epochs)} epochs, {epochs[-1][2]} steps in all; first epoch "
           f"{float(epochs[0][3]):,.0f}){f', {int(params.group(1)):,} parameters' if params else ''}")
    return [what, fig, goal, mark(last >= 10_000) if target else "-"]


PYTEST_LINE = re.compile(r"^=*\s*((?:\d+ \w+(?:, )?)+) in [\d.]+s", re.M)


def row_gpu_tests(res: Path) -> list[str]:
    """The GPU-only tests (``pytest -m cuda``): their summary line."""
    what, target = "`pytest -m cuda` (CEM's CUDA graph, reduce-overhead training vs eager)", "all pass"
    log = (res / "gpu_tests.log").read_text(errors="replace") if (res / "gpu_tests.log").is_file() else ""
    found = PYTEST_LINE.findall(log)
    if not found:
        return [what, status(res, "gpu_tests") or "no summary line", target, "-"]
    summary = found[-1].strip()
    return [what, summary, target, mark(status(res, "gpu_tests") is None and "skipped" not in summary)]


def _plan_row(res: Path, name: str, what: str, target: str, figure) -> list[str]:
    """A table row for the plan_latency result ``name``; ``figure(d) -> (text, target met)``."""
    d = load(res, name)
    err = status(res, name) or (None if d else "no result")
    if err:
        return [what, err, target, "-"]
    text, ok = figure(d)
    return [f"{what}, torch.compile {d.get('compile') or 'off'}, CUDA graphs {d.get('graphs', '?')}", text, target,
            mark(ok)]


def _demo_figure(d: dict) -> tuple[str, bool]:
    r = d["rows"][-1]
    ratio = r["loop_s"] / r["batched_s"]
    return f"n_evals {r['n_evals']}: batched {r['batched_s']:.2f} s vs loop {r['loop_s']:.2f} s, **{ratio:.1f}x**", ratio >= 5


def _full_figure(d: dict) -> tuple[str, bool]:
    one, many = d["rows"][0], d["rows"][-1]
    loop = f" (loop {many['loop_s']:.2f} s)" if many["loop_s"] else ""
    fig = (f"1 episode {one['batched_s']:.2f} s per {d['num_samples']}x{d['horizon']}x{d['opt_steps']} re-plan; "
           f"n_evals {many['n_evals']}: {many['batched_s']:.2f} s batched{loop}, {many['peak_mib'] / 1024:.1f} GiB peak")
    return fig, one["batched_s"] <= 0.3 and many["batched_s"] <= 1.5


def _long_figure(d: dict) -> tuple[str, bool]:
    r = d["rows"][-1]
    fig = f"horizon {d['horizon']}, n_evals {r['n_evals']}: {r['batched_s']:.2f} s, {r['peak_mib'] / 1024:.1f} GiB peak"
    return fig, r["batched_s"] <= 5 and r["peak_mib"] <= 16e9 / 2**20


def row_plan_demo(res: Path) -> list[str]:
    return _plan_row(res, "plan_demo", "`plan_latency.py` demo model (56 px)", "loop / batched >= 5x", _demo_figure)


def row_plan_full(res: Path) -> list[str]:
    return _plan_row(res, "plan_full", "same, `predictor=vit img_size=196` (full size)",
                     "1 episode <= 0.3 s; 10 episodes <= 1.5 s", _full_figure)


def row_plan_compared(res: Path, name: str, what: str) -> list[str]:
    """A full-size planning row without a target (a comparison: another compile mode, no CUDA graph)."""
    row = _plan_row(res, name, what, "(comparison)", lambda d: (_full_figure(d)[0], True))
    return row[:3] + ["-"]


COMPARED_PLANS = (("plan_full_nograph", "same, `--no-cuda-graph` (CEM iterations eager)"),
                  ("plan_full_nocudnn", "same, `--no-cudnn-attention` (flash / memory-efficient SDPA)"),
                  ("plan_full_ro", "same, `--compile reduce-overhead` (the predictor's own graphs)"),
                  ("plan_full_mac", "same, `--compile max-autotune-no-cudagraphs` (epilogue fusion)"),
                  ("plan_full_eager", "same, `--compile false` (eager kernels)"))


def row_plan_long(res: Path) -> list[str]:
    return _plan_row(res, "plan_long", "same, `--horizon 25 --n-evals 10 --no-loop`", "<= 5 s, peak <= 16 GB",
                     _long_figure)


def row_plan_hist3(res: Path) -> list[str]:
    row = _plan_row(res, "plan_hist3", "extra: full size with `num_hist=3`",
                    "(no target)", lambda d: ("; ".join(f"n_evals {r['n_evals']}: {r['batched_s']:.2f} s, "
                                                        f"{r['peak_mib'] / 1024:.1f} GiB" for r in d["rows"]), True))
    return row[:3] + ["-"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", help="gpu_check.sh result folder")
    p.add_argument("--batches", type=int, nargs="+", default=[32, 256], help="training batch sizes that were run")
    args = p.parse_args(argv)
    res = Path(args.results)
    if not res.is_dir():
        print(f"gpu_check_report.py: error: {res} is not a folder", file=sys.stderr)
        return 2
    env = (res / "env.log").read_text().strip().replace("\n", "; ") if (res / "env.log").is_file() else "?"
    rows = [row_gpu_tests(res), row_throughput(res), row_throughput_eager(res), *(row_training(res, b) for b in args.batches),
            row_profile_big(res), row_training(res, args.batches[-1], "_default", target=False), row_plan_demo(res), row_plan_full(res),
            *(row_plan_compared(res, n, w) for n, w in COMPARED_PLANS), row_plan_long(res), row_plan_hist3(res),
            row_throughput_host(res)]
    rows = [r for r in rows if r]
    print(f"## issue 10 GPU figures ({env})\n")
    print("| what | figure | target | met |\n| --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
