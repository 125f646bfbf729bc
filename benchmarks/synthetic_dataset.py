#!/usr/bin/env python
"""A benchmark-sized synthetic dataset directory in the converter's format, without robosuite or ffmpeg.

    python benchmarks/synthetic_dataset.py --out /tmp/syn --episodes 50 --frames 150 --size 84

Each episode is a coloured square driven by random actions over a textured background (numpy only);
states, proprios, actions, sim states and seq_lengths are written as in ``datasets/meta.py``, and the
frames in their lossless ``.npy`` form (``datasets/video_io.py`` reads those when the ``.mp4`` is
absent), so no video codec is needed. Throughput and latency do not depend on what the frames show.
An existing directory with the same parameters is reused (``meta.json`` records them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets.meta import DatasetMeta, VectorSlice, video_path  # noqa: E402
from datasets.video_io import write_video  # noqa: E402

STATE_DIM, PROPRIO_DIM, ACTION_DIM, SIM_DIM = 10, 9, 7, 12


def episode_frames(pos: np.ndarray, size: int, colour: np.ndarray, background: np.ndarray) -> np.ndarray:
    """uint8 [T, size, size, 3]: ``background`` with a square at each position ``pos`` [T, 2] in [0, 1]."""
    side = max(2, size // 10)
    xy = np.round(pos * (size - side)).astype(int)  # [T, 2] top-left corners
    grid = np.arange(size)
    inside_x = (grid[None, :] >= xy[:, :1]) & (grid[None, :] < xy[:, :1] + side)  # [T, W]
    inside_y = (grid[None, :] >= xy[:, 1:]) & (grid[None, :] < xy[:, 1:] + side)  # [T, H]
    square = inside_y[:, :, None] & inside_x[:, None, :]  # [T, H, W]
    return np.where(square[..., None], colour, background[None]).astype(np.uint8)


def make_dataset(out: Path, episodes: int, frames: int, size: int, seed: int = 0) -> Path:
    """Write the dataset directory ``out`` (reused when its meta.json records the same parameters)."""
    params = {"episodes": episodes, "frames": frames, "size": size, "seed": seed}
    if (out / "meta.json").is_file() and DatasetMeta.load(out).extra.get("synthetic") == params:
        return out
    import torch

    rng = np.random.default_rng(seed)
    lengths = np.array([frames - (i % 3) for i in range(episodes)])
    arrays = {"states": np.zeros((episodes, frames, STATE_DIM), np.float32),
              "proprios": np.zeros((episodes, frames, PROPRIO_DIM), np.float32),
              "velocities": np.zeros((episodes, frames, 2), np.float32),
              "actions": np.zeros((episodes, frames, ACTION_DIM), np.float32),
              "sim_states": np.zeros((episodes, frames, SIM_DIM), np.float64)}
    for e, n in enumerate(lengths):
        act = rng.uniform(-1, 1, (n, ACTION_DIM)).astype(np.float32)
        pos = np.clip(rng.uniform(0.2, 0.8, 2) + np.cumsum(0.02 * act[:, :2], axis=0), 0.0, 1.0)  # [n, 2]
        arrays["actions"][e, :n] = act
        arrays["states"][e, :n, :2], arrays["states"][e, :n, 3] = pos, 1.0
        arrays["states"][e, :n, 7:] = rng.normal(0, 0.01, (n, STATE_DIM - 7))
        arrays["proprios"][e, :n, :2], arrays["proprios"][e, :n, 2:] = pos + 0.05, act[:, 2:3]
        arrays["sim_states"][e, :n, :2] = pos
        background = rng.integers(0, 90, (size, size, 3))
        colour = np.array([200 + e % 50, 40 + 3 * (e % 60), 40])
        write_video(video_path(out, e), episode_frames(pos, size, colour, background), lossless=True)
    for name, arr in arrays.items():
        torch.save(torch.from_numpy(arr), out / f"{name}.pth")
    torch.save(torch.from_numpy(lengths.astype(np.int64)), out / "seq_lengths.pth")
    DatasetMeta(env_name="Synthetic", env_kwargs={}, camera_names=["agentview"], image_size=size,
                action_dim=ACTION_DIM, state_slices=[VectorSlice("object", 0, 7), VectorSlice("extra", 7, STATE_DIM)],
                proprio_slices=[VectorSlice("eef", 0, PROPRIO_DIM)], velocity_slices=[VectorSlice("v", 0, 2)],
                sim_state_dim=SIM_DIM, n_episodes=episodes, n_frames=int(lengths.sum()),
                demo_keys=[f"demo_{i}" for i in range(episodes)], source_sha256=f"synthetic-{seed}-{episodes}-{frames}",
                lossless=True, extra={"synthetic": params}).save(out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="dataset directory to write")
    p.add_argument("--episodes", type=int, default=50, help="episodes to write (default 50)")
    p.add_argument("--frames", type=int, default=150, help="frames per episode (some episodes 1-2 shorter)")
    p.add_argument("--size", type=int, default=84, help="frame size in pixels")
    p.add_argument("--seed", type=int, default=0, help="seed of the random frames and actions (default 0)")
    args = p.parse_args(argv)
    if args.episodes < 2 or args.frames < 20 or args.size < 8:
        print("synthetic_dataset.py: error: need --episodes >= 2, --frames >= 20, --size >= 8", file=sys.stderr)
        return 2
    target = Path(args.out)
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / "meta.json").is_file())):
        print(f"synthetic_dataset.py: error: --out {target} exists and is not a dataset directory: choose a new "
              "or empty one", file=sys.stderr)
        return 2
    out = make_dataset(target, args.episodes, args.frames, args.size, args.seed)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
