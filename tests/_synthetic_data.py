"""A small synthetic dataset directory in the datasets/meta.py format (for unit tests without robosuite).

A coloured square moves with the (integrated) actions; the "object" state is its position, so the
frames, states, proprios and actions are consistent and learnable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from datasets.meta import DatasetMeta, VectorSlice, video_path
from datasets.video_io import write_video


def make_dataset(path: Path, n_episodes: int = 4, t_max: int = 24, size: int = 28, seed: int = 0,
                 nan_actions: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    lengths = [t_max - (i % 3) for i in range(n_episodes)]
    states = np.zeros((n_episodes, t_max, 10), np.float32)
    proprios = np.zeros((n_episodes, t_max, 9), np.float32)
    actions = np.zeros((n_episodes, t_max, 7), np.float32)
    sims = np.zeros((n_episodes, t_max, 5), np.float64)
    for e, T in enumerate(lengths):
        pos = rng.uniform(0.3, 0.7, 2)
        a = rng.uniform(-1, 1, (T, 7)).astype(np.float32)
        frames = np.zeros((T, size, size, 3), np.uint8)
        for t in range(T):
            x, y = (pos * (size - 6)).astype(int)
            frames[t, y : y + 6, x : x + 6] = (220, 60 + 5 * e, 40)
            states[e, t, :2], states[e, t, 2:7] = pos, [0.0, 1.0, 0.0, 0.0, 0.0]
            states[e, t, 7:] = rng.normal(0, 0.01, 3)
            proprios[e, t, :2], proprios[e, t, 2:] = pos + 0.05, a[t, 2]
            sims[e, t, :2] = pos
            pos = np.clip(pos + 0.03 * a[t, :2], 0.0, 1.0)
        actions[e, :T] = a
        write_video(video_path(path, e), frames)
    if nan_actions:
        actions[:] = np.nan
    for name, arr in (("states", states), ("proprios", proprios), ("actions", actions), ("sim_states", sims),
                      ("velocities", np.zeros((n_episodes, t_max, 2), np.float32))):
        torch.save(torch.from_numpy(arr), path / f"{name}.pth")
    torch.save(torch.tensor(lengths, dtype=torch.int64), path / "seq_lengths.pth")
    DatasetMeta(env_name="Synthetic", env_kwargs={}, camera_names=["agentview"], image_size=size, action_dim=7,
                state_slices=[VectorSlice("object", 0, 7), VectorSlice("extra", 7, 10)],
                proprio_slices=[VectorSlice("eef", 0, 9)], velocity_slices=[VectorSlice("v", 0, 2)],
                sim_state_dim=5, n_episodes=n_episodes, n_frames=int(sum(lengths)),
                demo_keys=[f"demo_{i}" for i in range(n_episodes)], source_sha256=f"synthetic{seed}").save(path)
    return path
