"""Small synthetic data for unit tests without robosuite.

- :func:`make_dataset`: a dataset directory in the datasets/meta.py format. A coloured square moves
  with the (integrated) actions; the "object" state is its position, so the frames, states,
  proprios and actions are consistent and learnable.
- :func:`make_robomimic_hdf5`: a structurally valid robomimic hdf5 file (random values, a stub
  model xml), for the converter's file checks (not for a conversion: it fits no simulator).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
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


LOW_DIM_WIDTHS = {"object": 10, "robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2,
                  "robot0_joint_vel": 7, "robot0_gripper_qvel": 2}


def make_robomimic_hdf5(path: Path, n_demos: int = 2, steps: int = 5, image_size: int = 8,
                        cameras: tuple[str, ...] = ("agentview",), seed: int = 0) -> Path:
    """A robomimic-layout Lift file: per demo actions [T, 7] in [-1, 1], states [T, 32], low-dim obs,
    uint8 images [T, S, S, 3] per camera, a ``model_file``; ``mask/train`` lists every demo."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {
            "robots": ["Panda"], "control_freq": 20, "camera_names": list(cameras)}})
        for i in range(n_demos):
            demo = data.create_group(f"demo_{i}")
            demo.attrs["model_file"] = f"<mujoco model='stub{i}'><worldbody/></mujoco>"
            demo["actions"] = rng.uniform(-1, 1, (steps, 7))
            demo["states"] = rng.normal(size=(steps, 32))
            for key, width in LOW_DIM_WIDTHS.items():
                demo[f"obs/{key}"] = rng.normal(size=(steps, width))
            for cam in cameras:
                demo[f"obs/{cam}_image"] = rng.integers(0, 256, (steps, image_size, image_size, 3), dtype=np.uint8)
        f["mask/train"] = np.array([f"demo_{i}" for i in range(n_demos)], dtype="S")
    return path
