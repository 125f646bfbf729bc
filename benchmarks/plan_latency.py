#!/usr/bin/env python
"""Seconds per CEM re-plan: all episodes in one batched call vs a loop over episodes, and peak memory.

    python benchmarks/plan_latency.py                      # 300 samples, horizon 5, 30 iterations, n_evals 1 and 10
    python benchmarks/plan_latency.py --opt-steps 5 --n-evals 1 10 --override predictor=vit
    python benchmarks/plan_latency.py --horizon 25 --n-evals 10 --chunk-size 1024   # memory bound at long horizons

The model is the real VWorldModel built from conf/train_robomimic_compress.yaml (+ overrides) with
randomly initialised weights (a random frozen encoder too, unless --override encoder.pretrained=true):
latency does not depend on the weights. Observations and goals are random images / proprio.
Prints one line per n_evals and a summary table; figures depend on the machine (say which).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planning.execution.observations import precompute_features  # noqa: E402
from planning.objectives import LatentGoalObjective  # noqa: E402
from planning.planners.cem import CEMPlanner  # noqa: E402
from planning.planners.protocol import PlanContext  # noqa: E402


def build_model(overrides: list[str], device: str):
    """A randomly initialised VWorldModel from the training config (Lift-like dims: proprio 9, state 19)."""
    from hydra import compose, initialize_config_dir

    from tasks import get_task
    from tasks.state_layout import PROPRIO_DIM
    from training.model_config import world_model_from_cfg

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train_robomimic_compress",
                      overrides=["env=demo", "encoder.pretrained=false", *overrides])
    torch.manual_seed(0)
    lift = get_task("lift")  # the Lift demo model's dims
    model = world_model_from_cfg(cfg, proprio_dim=PROPRIO_DIM, state_dim=lift.object_dim + PROPRIO_DIM,
                                 action_dim=lift.action_dim)
    return model.to(device).eval(), cfg


def make_context(model, b: int, horizon: int, device: str) -> PlanContext:
    g = torch.Generator().manual_seed(b)
    s = int(model.img_size)
    obs = {"visual": torch.rand(b, 1, 3, s, s, generator=g).to(device),
           "proprio": torch.randn(b, 1, model.proprio_dim, generator=g).to(device)}
    goal = {"visual": torch.rand(b, 1, 3, s, s, generator=g).to(device),
            "proprio": torch.randn(b, 1, model.proprio_dim, generator=g).to(device)}
    a = model.action_dim * model.frameskip
    with torch.no_grad():
        z_goal = model.encode_obs(goal)
        obs = precompute_features(model, obs)
    return PlanContext(obs_0=obs, past_actions=torch.zeros(b, 0, a, device=device), z_goal=z_goal, horizon=horizon,
                       generators=[torch.Generator().manual_seed(i) for i in range(b)],
                       action_low=-3 * torch.ones(a), action_high=3 * torch.ones(a))


def split(ctx: PlanContext, i: int) -> PlanContext:
    """Episode ``i`` of ``ctx`` alone (same generator, same obs)."""
    return PlanContext(obs_0={k: v[i:i + 1] for k, v in ctx.obs_0.items()}, past_actions=ctx.past_actions[i:i + 1],
                       z_goal=ctx.z_goal[i:i + 1], horizon=ctx.horizon, generators=[ctx.generators[i]],
                       action_low=ctx.action_low, action_high=ctx.action_high)


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB -> MiB (process peak RSS)


def timed(fn, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    return time.perf_counter() - t


def report(rows: list[tuple], device: str, args: argparse.Namespace, cfg, hw: str, mode: str | None = None,
           graphs: str = "off") -> None:
    """The markdown table of ``rows`` (n_evals, batched s, loop s or None, peak MiB), and the JSON file."""
    print("\n| n_evals | batched s/re-plan | per-episode loop s | loop / batched | peak MiB |")
    print("|---|---|---|---|---|")
    for b, bt, lp, mem in rows:
        print(f"| {b} | {bt:.2f} | {'-' if lp is None else f'{lp:.2f}'} | "
              f"{'-' if lp is None else f'{lp / bt:.2f}x'} | {mem:.0f} |")
    mem_note = "CUDA max allocated" if device.startswith("cuda") else "process peak RSS"
    print(f"(peak memory = {mem_note})")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "device": hw, "img_size": int(cfg.img_size), "predictor": str(cfg.predictor.name),
            "heads": int(cfg.predictor.heads), "num_hist": int(cfg.num_hist), "horizon": args.horizon,
            "num_samples": args.num_samples, "opt_steps": args.opt_steps, "peak_kind": mem_note, "compile": mode,
            "graphs": graphs, "cudnn_attention": not args.no_cudnn_attention,
            "rows": [{"n_evals": b, "batched_s": bt, "loop_s": lp, "peak_mib": mem} for b, bt, lp, mem in rows]},
            indent=1))


def profile_replan(planner, ctx: PlanContext, device: str, n_rows: int) -> None:
    """Where one batched re-plan spends its time: the busiest ops, and device-busy vs wall time."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.startswith("cuda")
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        wall = timed(lambda: planner.plan(ctx), device)
    events = prof.key_averages()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    busy = sum(getattr(e, key, 0) or 0 for e in events) / 1e6
    print(f"\n# profile of one re-plan ({ctx.batch_size} episodes): {wall:.3f} s wall (profiled), "
          f"{busy:.3f} s {'device-busy (kernels)' if cuda else 'CPU in ops'}")
    print(events.table(sort_by=key, row_limit=n_rows))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-samples", type=int, default=300, help="CEM samples per iteration (default 300)")
    p.add_argument("--topk", type=int, default=30, help="CEM elites refitted per iteration (default 30)")
    p.add_argument("--horizon", type=int, default=5, help="planning steps per plan (default 5)")
    p.add_argument("--opt-steps", type=int, default=30, help="CEM iterations per re-plan")
    p.add_argument("--n-evals", type=int, nargs="+", default=[1, 10], help="episodes planned together")
    p.add_argument("--chunk-size", type=int, default=4096, help="(episode, sample) rollouts per model forward")
    p.add_argument("--no-loop", action="store_true", help="skip the per-episode loop (batched only)")
    p.add_argument("--device", default="auto", help="auto (a GPU via gpu_utils if any) | cpu | cuda:N")
    p.add_argument("--override", action="append", default=[], help="training-config override, repeatable")
    p.add_argument("--compile", default="auto",
                   help="predictor rollouts through torch.compile: auto (CUDA: mode default; CPU: eager) | "
                        "false | true | a torch.compile mode (as plan.py compile=...)")
    p.add_argument("--no-cuda-graph", action="store_true",
                   help="run CEM's iterations eagerly (default on a GPU: each re-plan's iterations replayed as one "
                        "CUDA graph, as plan.py planner.cuda_graph=true)")
    p.add_argument("--no-cudnn-attention", action="store_true",
                   help="keep SDPA off its cuDNN kernel (torch picks it first on Hopper with recent cuDNN): flash or "
                        "memory-efficient attention instead, to compare")
    p.add_argument("--repeat", type=int, default=1, help="time each batched re-plan this often, keep the fastest")
    p.add_argument("--profile", type=int, default=0, metavar="ROWS",
                   help="also profile one batched re-plan of the largest n_evals: the ROWS busiest ops")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    return p


def graphs_label(model, args: argparse.Namespace, device: str) -> str:
    """Which CUDA graphs replay: CEM's iterations, the predictor's own, or none."""
    if not device.startswith("cuda"):
        return "off (CPU)"
    if model.rollout_graphs:
        return "predictor (reduce-overhead)"
    return "off" if args.no_cuda_graph else "CEM iterations"


def pick_device(setting: str) -> str:
    """``auto``: the best GPU through gpu_utils, else cpu; anything else as given."""
    if setting != "auto":
        return setting
    from gpu_utils import select_gpus_for_run

    ids = select_gpus_for_run(num_gpus=1)
    return f"cuda:{ids[0]}" if ids else "cpu"


def warm_up(planner, model, args: argparse.Namespace, device: str, mode: str | None) -> None:
    """Allocator and kernels; when compiling, every batch size once (each new shape compiles)."""
    for b in sorted(set(args.n_evals)) if mode else [1]:
        t = time.perf_counter()
        planner.plan(make_context(model, b, args.horizon, device))
        if mode:
            print(f"warm-up n_evals {b}: {time.perf_counter() - t:.1f} s (compiling)")


def measure(planner, model, args: argparse.Namespace, device: str) -> tuple[list[tuple], PlanContext]:
    """(rows (n_evals, batched s, loop s or None, peak MiB), the last context) over ``args.n_evals``."""
    rows = []
    for b in args.n_evals:
        ctx = make_context(model, b, args.horizon, device)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(device)
        batched = min(timed(lambda c=ctx: planner.plan(c), device) for _ in range(max(1, args.repeat)))
        mem = peak_memory_mb(device)
        loop = None if args.no_loop else timed(lambda c=ctx, n=b: [planner.plan(split(c, i)) for i in range(n)], device)
        rows.append((b, batched, loop, mem))
        ratio = f", loop/batched {loop / batched:.2f}x" if loop else ""
        print(f"n_evals {b:3d}: batched {batched:8.2f} s/re-plan ({batched / b:.2f} s per episode)"
              + (f", per-episode loop {loop:8.2f} s" if loop else "") + ratio + f", peak memory {mem:.0f} MiB")
    return rows, ctx


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.num_samples < args.topk or min(args.n_evals) < 1:
        print("plan_latency.py: error: need --num-samples >= --topk and --n-evals >= 1", file=sys.stderr)
        return 2
    from utils.torch_compile import PLANNING_AUTO_MODE, compile_mode

    device = pick_device(args.device)
    try:
        mode = compile_mode(args.compile, device.split(":")[0], PLANNING_AUTO_MODE)
    except ValueError as exc:
        print(f"plan_latency.py: error: {exc}", file=sys.stderr)
        return 2
    if args.no_cudnn_attention:
        torch.backends.cuda.enable_cudnn_sdp(False)
    model, cfg = build_model(args.override, device)
    if mode is not None:
        model.compile_for_rollouts(mode)
    hw = torch.cuda.get_device_name(device) if device.startswith("cuda") else \
        f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} torch threads"
    print(f"# CEM re-plan latency: {args.num_samples} samples, top {args.topk}, horizon {args.horizon}, "
          f"{args.opt_steps} iterations, chunk {args.chunk_size}; model img {cfg.img_size} "
          f"({model.encoder.num_patches} patches), predictor {cfg.predictor.name}, torch.compile {mode or 'off'}, "
          f"CUDA graphs {graphs_label(model, args, device)}; device {device} ({hw})")
    planner = CEMPlanner(model, LatentGoalObjective(), horizon=args.horizon, num_samples=args.num_samples,
                         topk=args.topk, opt_steps=args.opt_steps, chunk_size=args.chunk_size,
                         cuda_graph=not args.no_cuda_graph)
    warm_up(planner, model, args, device, mode)
    rows, ctx = measure(planner, model, args, device)
    graphs = graphs_label(model, args, device)
    if planner.cuda_graph != (not args.no_cuda_graph):
        graphs = "off (recording failed or disagreed: see the warning above)"
        print("note: CEM's CUDA graph was turned off during the run; figures are eager")
    report(rows, device, args, cfg, hw, mode, graphs)
    if args.profile:
        try:
            profile_replan(planner, ctx, device, args.profile)
        except Exception as e:  # noqa: BLE001 - the figures above are already out; a profiler quirk must not fail them
            print(f"# profile failed: {type(e).__name__}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
