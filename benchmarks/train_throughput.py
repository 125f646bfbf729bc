"""Training throughput from the feature cache vs re-encoding the frames every step (same model, same batch).

    python benchmarks/train_throughput.py --data data/demo/lift/dino_wm [--img-size 196] [--batch-size 8]
    python benchmarks/train_throughput.py --data DIR --device cuda --img-size 196 --batch-size 32 --steps 50

Each mode runs in its own subprocess (so peak memory is per mode). Batches come from the training
data path (``training/loop/batches.py``: the feature cache and the window index on the device when they
fit, ``--cache-on-device``); the re-encode mode gathers the decoded frames the same way and runs the
frozen encoder every step. The table shows samples/s over ``--steps`` timed steps (one device sync
at each end, as in training), seconds per step, the speed-up and the peak memory (max RSS on CPU,
max allocated on CUDA). Uses the training config (``conf/``) with ``env=demo`` plus the overrides given.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from utils.cli_types import positive_int, positive_multiple_of  # noqa: E402


def _timed_steps(step, n: int, device) -> float:
    """Seconds for ``n`` calls of ``step`` (the device synchronised before and after, not in between)."""
    import torch

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *_: None)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    sync(device)
    return time.perf_counter() - t0


def profile_step(step, device, rows: int, label: str) -> dict:
    """One profiled step: host time, device-busy time and kernel count (where a step's time goes: a step
    whose host time exceeds its device time is bound by launching kernels, not by the GPU); the
    ``rows`` busiest ops go to stderr."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        wall = _timed_steps(step, 1, device)
    events = prof.key_averages()
    host = sum(e.self_cpu_time_total for e in events) / 1e6
    busy = sum(getattr(e, "self_device_time_total", 0) or 0 for e in events) / 1e6 if cuda else 0.0
    kernels = sum(e.count for e in events if cuda and e.device_type == torch.autograd.DeviceType.CUDA)
    print(f"# profile of one {label} step: {wall * 1e3:.1f} ms wall (profiled), host in ops {host * 1e3:.1f} ms, "
          f"device busy {busy * 1e3:.1f} ms, {kernels} kernels", file=sys.stderr)
    print(events.table(sort_by="self_cpu_time_total", row_limit=rows), file=sys.stderr)
    return {"wall_s": wall, "host_s": host, "device_busy_s": busy, "kernels": kernels}


def _compose_config(args: argparse.Namespace):
    """The training config the benchmark times: the demo env on ``args.data`` plus the command line's overrides."""
    from hydra import compose, initialize_config_dir

    overrides = ["env=demo", f"env.data_path={args.data}", f"img_size={args.img_size}",
                 f"encoder.pretrained={str(not args.random_encoder).lower()}", *args.override]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train_robomimic_compress", overrides=overrides)


def _training_step(args: argparse.Namespace, cfg, encoder, views: int, device):
    """(one optimiser step as a callable, the batch source, the compile mode): the model, data and optimiser
    training builds, fed from the feature cache (``cache`` mode) or by re-encoding frames."""
    import contextlib

    import torch

    from datasets.feature_cache import load_feature_cache
    from datasets.normalizer import Normalizer
    from datasets.robomimic_dset import RobomimicEpisodes, WindowDataset
    from training.loop.data import batch_sources
    from training.model_config import world_model_from_cfg
    from utils.torch_compile import mark_step, training_compile_mode

    ep = RobomimicEpisodes(args.data)
    ids = list(range(len(ep)))
    norm = Normalizer.fit(ep.actions, ep.proprios, ep.states, ep.seq_lengths, ids)
    feats, offsets = load_feature_cache(args.data, encoder) if args.mode == "cache" else (None, None)
    ds = WindowDataset(ep, ids, norm, int(cfg.num_hist), int(cfg.num_pred), int(cfg.frameskip), feats, offsets)
    src, _ = batch_sources(ds, None, args.cache_on_device, device, args.batch_size, args.num_workers)
    model = world_model_from_cfg(cfg, ep.meta.proprio_dim, ep.meta.state_dim, ep.meta.action_dim, encoder=encoder,
                                 views=views).to(device).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4,
                            fused=device.type == "cuda")
    mode = training_compile_mode(args.compile, device.type)[0]
    forward = torch.compile(model, mode=mode) if mode else model  # as training.compile (the frozen encoder stays eager)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if args.mixed_precision == "bf16" \
        else contextlib.nullcontext()
    batches = (b for epoch in range(10**9) for b in src.epoch(epoch, seed=0))

    def step() -> None:
        mark_step(mode)
        with amp:
            loss = forward(next(batches))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, src, mode


def run_mode(args: argparse.Namespace) -> dict:
    """Time ``args.mode`` (build the cache, or train from the cache / from frames); the figures as a dict."""
    import torch

    from datasets.feature_cache import build_feature_cache
    from datasets.meta import DatasetMeta
    from training.model_config import encoder_from_cfg

    cfg = _compose_config(args)
    torch.manual_seed(0)
    device = torch.device(args.device)
    views = DatasetMeta.load(args.data).views
    encoder = encoder_from_cfg(cfg, views)
    if args.mode == "build":
        build_feature_cache(args.data, encoder, device=device, progress=False)
        return {"mode": "build"}
    step, src, mode = _training_step(args, cfg, encoder, views, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    first = _timed_steps(step, 1, device)  # compiles when compiling
    _timed_steps(step, args.warmup, device)
    dt = _timed_steps(step, args.steps, device) / args.steps
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    prof = profile_step(step, device, args.profile, f"{args.mode} mode") if args.profile else None
    return {"mode": args.mode, "s_per_step": dt, "profile": prof, "samples_per_s": args.batch_size / dt, "peak_mem_mb": peak / 2**20,
            "peak_kind": "cuda max allocated" if device.type == "cuda" else "max RSS", "img_size": args.img_size,
            "batch_size": args.batch_size, "patches": encoder.num_patches, "placement": src.placement,
            "compile": mode, "first_step_s": first,
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}


def print_table(rows: list[dict], args: argparse.Namespace) -> float | None:
    """The results table of the timed modes; returns the speed-up (cache / re-encode), None with one mode."""
    r = rows[0]
    firsts = " / ".join(f"{row['first_step_s']:.1f} s" for row in rows)
    print(f"train throughput, img_size {r['img_size']} ({r['patches']} patches), batch {r['batch_size']}, "
          f"device {args.device}, mixed precision {args.mixed_precision}, batches gathered on the {r['placement']}, "
          f"torch.compile {r['compile'] or 'off'} (first step {firsts})")
    print(f"{'mode':<22}{'samples/s':>12}{'s/step':>10}{'peak MB':>10}")
    for row in rows:
        name = "feature cache" if row["mode"] == "cache" else "re-encode frames"
        print(f"{name:<22}{row['samples_per_s']:>12.1f}{row['s_per_step']:>10.4f}{row['peak_mem_mb']:>10.0f}")
    for row in rows:
        if row.get("profile"):
            pr = row["profile"]
            print(f"profile, {row['mode']}: host in ops {pr['host_s'] * 1e3:.1f} ms, device busy "
                  f"{pr['device_busy_s'] * 1e3:.1f} ms, {pr['kernels']} kernels per step")
    if len(rows) < 2:
        return None
    speedup = rows[0]["samples_per_s"] / rows[1]["samples_per_s"]
    print(f"speed-up (cache / frames): {speedup:.1f}x (peak memory: {r['peak_kind']})")
    return speedup


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="converted dataset directory")
    p.add_argument("--img-size", type=positive_multiple_of(14), default=196,
                   help="encoder input size in pixels, a multiple of 14 (default 196)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="windows per training step (default 8)")
    p.add_argument("--steps", type=positive_int, default=5, help="timed training steps per mode")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation, caches; default 2)")
    p.add_argument("--device", default="cpu", help="cpu (default) | cuda | cuda:N")
    p.add_argument("--mixed-precision", choices=["no", "bf16"], default="no", help="bf16 autocast as in training")
    p.add_argument("--cache-on-device", default="auto", help="training.cache_on_device: auto | true | false")
    p.add_argument("--num-workers", type=int, default=0, help="loader processes of host-gathered batches")
    p.add_argument("--compile", default="auto",
                   help="torch.compile the training step as training.compile: auto (CUDA: reduce-overhead; CPU: eager) | "
                        "false | true | a mode; the first (compiling) step is not timed")
    p.add_argument("--profile", type=int, default=0, metavar="ROWS",
                   help="also profile one step per mode: host vs device time, kernel count, the ROWS busiest ops")
    p.add_argument("--random-encoder", action="store_true", help="random encoder weights (no DINOv2 file needed)")
    p.add_argument("--override", action="append", default=[], help="extra Hydra override (repeatable)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--only-cache", action="store_true",
                   help="time the feature-cache mode only (no re-encode run, no speed-up): e.g. a large batch's profile")
    p.add_argument("--mode", choices=["build", "cache", "frames"], help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not (Path(args.data) / "meta.json").is_file():
        print(f"error: {args.data} is not a converted dataset directory (no meta.json)", file=sys.stderr)
        return 2
    if args.mode:
        print(json.dumps(run_mode(args)))
        return 0
    rows = []
    for mode in ("build", "cache") + (() if args.only_cache else ("frames",)):  # the cache is built first, alone
        cmd = [sys.executable, __file__, *argv, "--mode", mode]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(f"error: mode {mode} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            return 1
        if args.profile:
            print(proc.stderr[-20000:], file=sys.stderr)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    rows = rows[1:]
    speedup = print_table(rows, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "speedup": speedup, "device": rows[0]["device_name"],
                                               "mixed_precision": args.mixed_precision, "compile": rows[0]["compile"]},
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
