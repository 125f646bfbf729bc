#!/usr/bin/env python
"""Benchmark the data side: scripted-demo success rate and speed, converter throughput.

Prints, per task: success rate and seconds per episode without cameras (``--episodes``), seconds
per episode with two cameras (``--camera-episodes``), then the converter's frames per second on
the camera file (frames from the hdf5) and on a states-only copy (frames rendered).

    python benchmarks/bench_demo_data.py --tasks lift,can --episodes 10 --camera-episodes 2
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import h5py

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from convert_robomimic_to_dino_wm import convert  # noqa: E402
from envs.generate_demos import generate_demos, scripted_tasks  # noqa: E402
from utils.cli_types import positive_int  # noqa: E402


def strip_images(src: Path, dst: Path) -> None:
    """Copy ``src`` without camera images and low-dim obs (a states-only file)."""
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        f.copy("mask", g)
        data = g.create_group("data")
        data.attrs.update(dict(f["data"].attrs))
        for name in f["data"]:
            d = data.create_group(name)
            d.attrs.update(dict(f[f"data/{name}"].attrs))
            for key in ("states", "actions", "rewards", "dones"):
                f.copy(f"data/{name}/{key}", d)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="lift,can", help="comma-separated scripted tasks (default lift,can)")
    p.add_argument("--episodes", type=positive_int, default=10, help="episodes without cameras per task")
    p.add_argument("--camera-episodes", type=positive_int, default=2, help="episodes with two cameras per task")
    p.add_argument("--image-size", type=positive_int, default=84, help="camera image size in pixels (default 84)")
    args = p.parse_args()
    if unknown := [t for t in args.tasks.split(",") if t not in scripted_tasks()]:
        p.error(f"--tasks: no scripted task {', '.join(unknown)} (choose from {', '.join(scripted_tasks())})")
    logging.basicConfig(level=logging.WARNING)
    cams = ["agentview", "robot0_eye_in_hand"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for task in args.tasks.split(","):
            s = generate_demos(task, args.episodes, tmp / f"{task}_nocam.hdf5", camera_names=None, progress=False)
            print(f"{task}: no cameras: {s['successes']}/{s['attempts']} successful "
                  f"({100 * s['success_rate']:.0f}%), {s['seconds_per_episode']:.2f} s/episode, "
                  f"{s['steps_per_episode']:.0f} steps/episode")
            if args.camera_episodes:
                path = tmp / f"{task}_cam.hdf5"
                s = generate_demos(task, args.camera_episodes, path, camera_names=cams,
                                   image_size=args.image_size, progress=False)
                print(f"{task}: two {args.image_size}x{args.image_size} cameras: "
                      f"{s['seconds_per_episode']:.2f} s/episode")
                t0 = time.perf_counter()
                meta = convert(path, tmp / f"{task}_out", progress=False)
                dt = time.perf_counter() - t0
                print(f"{task}: convert (frames from hdf5): {meta.n_frames / dt:.0f} frames/s "
                      f"({meta.n_frames} frames, {dt:.1f} s incl. env build)")
                strip_images(path, tmp / f"{task}_states.hdf5")
                t0 = time.perf_counter()
                meta = convert(tmp / f"{task}_states.hdf5", tmp / f"{task}_out2", image_size=args.image_size,
                               progress=False)
                dt = time.perf_counter() - t0
                print(f"{task}: convert (states-only, rendered): {meta.n_frames / dt:.0f} frames/s "
                      f"({meta.n_frames} frames, {dt:.1f} s incl. env build)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
