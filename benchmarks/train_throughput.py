"""Training throughput from the feature cache vs re-encoding the frames every step (same model, same batch).

    python benchmarks/train_throughput.py --data data/demo/lift/dino_wm [--img-size 196] [--batch-size 8]

Each mode runs in its own subprocess (so peak memory is per mode) and the table shows samples/s and
the median seconds per step, the speed-up and the peak memory (max RSS on CPU, max allocated on CUDA).
Uses the training config (``conf/``) with ``env=demo_lift`` plus the overrides given.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_mode(args: argparse.Namespace) -> dict:
    import torch
    from hydra import compose, initialize_config_dir

    from datasets.feature_cache import build_feature_cache, load_feature_cache
    from datasets.normalizer import Normalizer
    from datasets.robomimic_dset import RobomimicEpisodes, WindowDataset
    from models.factory import build_encoder, build_world_model

    overrides = ["env=demo_lift", f"env.data_path={args.data}", f"img_size={args.img_size}",
                 f"encoder.pretrained={str(not args.random_encoder).lower()}", *args.override]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train_robomimic_compress", overrides=overrides)
    torch.manual_seed(0)
    device = torch.device(args.device)
    encoder = build_encoder(cfg)
    ep = RobomimicEpisodes(args.data)
    ids = list(range(len(ep)))
    norm = Normalizer.fit(ep.actions, ep.proprios, ep.states, ep.seq_lengths, ids)
    feats = offsets = None
    if args.mode == "build":
        build_feature_cache(args.data, encoder, device=device, progress=False)
        return {"mode": "build"}
    if args.mode == "cache":
        feats, offsets = load_feature_cache(args.data, encoder)
    ds = WindowDataset(ep, ids, norm, int(cfg.num_hist), int(cfg.num_pred), int(cfg.frameskip), feats, offsets)
    model = build_world_model(cfg, ep.meta.proprio_dim, ep.meta.state_dim, encoder=encoder).to(device).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    g = torch.Generator().manual_seed(0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        idx = torch.randint(len(ds), (args.batch_size,), generator=g).tolist()
        items = [ds[i] for i in idx]
        batch = {k: torch.stack([it[k] for it in items]).to(device) for k in items[0]}
        loss = model(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    dt = statistics.median(times)  # robust to stalls on a shared machine
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"mode": args.mode, "s_per_step": dt, "samples_per_s": args.batch_size / dt, "peak_mem_mb": peak / 2**20,
            "peak_kind": "cuda max allocated" if device.type == "cuda" else "max RSS", "img_size": args.img_size,
            "batch_size": args.batch_size, "patches": encoder.num_patches}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="converted dataset directory")
    p.add_argument("--img-size", type=int, default=196)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=5, help="timed training steps per mode (median reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--random-encoder", action="store_true", help="random encoder weights (no DINOv2 file needed)")
    p.add_argument("--override", action="append", default=[], help="extra Hydra override (repeatable)")
    p.add_argument("--mode", choices=["build", "cache", "frames"], help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not (Path(args.data) / "meta.json").is_file():
        print(f"error: {args.data} is not a converted dataset directory (no meta.json)", file=sys.stderr)
        return 2
    if args.mode:
        print(json.dumps(run_mode(args)))
        return 0
    rows = []
    for mode in ("build", "cache", "frames"):  # the cache is built first, in its own process
        cmd = [sys.executable, __file__, *sys.argv[1:], "--mode", mode]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(f"error: mode {mode} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            return 1
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    rows = rows[1:]
    r = rows[0]
    print(f"train throughput, img_size {r['img_size']} ({r['patches']} patches), batch {r['batch_size']}, "
          f"device {args.device}")
    print(f"{'mode':<22}{'samples/s':>12}{'s/step':>10}{'peak MB':>10}")
    for row in rows:
        name = "feature cache" if row["mode"] == "cache" else "re-encode frames"
        print(f"{name:<22}{row['samples_per_s']:>12.1f}{row['s_per_step']:>10.3f}{row['peak_mem_mb']:>10.0f}")
    print(f"speed-up (cache / frames): {rows[0]['samples_per_s'] / rows[1]['samples_per_s']:.1f}x "
          f"(peak memory: {r['peak_kind']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
