"""One episode of a robomimic hdf5 file as dataset arrays: frames + state / proprio / velocity.

Two sources of frames and vectors:

- :func:`episode_from_hdf5`: frames from ``obs/<camera>_image`` (resized if asked; several cameras side by
  side), vectors from
  the hdf5 low-dim obs through ``extract_vectors``.
- :func:`episode_from_sim`: for states-only files (robomimic ``demo_v15.hdf5``): the simulator is
  reset to every recorded state and the camera is rendered there (robomimic's
  ``dataset_states_to_obs.py`` does the same); vectors come from the live observation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from envs.robosuite_env import RobosuiteEnv
from tasks.state_layout import OBJECT_KEYS, OBJECT_LAYOUTS, OBJECT_POSE, REQUIRED_KEYS, extract_vectors

log = logging.getLogger(__name__)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 [T, H, W, 3] -> uint8 [T, size, size, 3] (bilinear with antialiasing; no-op if same)."""
    if frames.shape[1] == size and frames.shape[2] == size:
        return frames
    x = rearrange(torch.from_numpy(np.ascontiguousarray(frames)).float(), "t h w c -> t c h w")
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return rearrange(x.round().clamp(0, 255).to(torch.uint8), "t c h w -> t h w c").numpy()


def model_xml_of(demo: h5py.Group) -> str | None:
    """The demo's ``model_file`` attribute (MuJoCo xml), or None."""
    xml = demo.attrs.get("model_file")
    if xml is None:
        return None
    return xml.decode() if isinstance(xml, bytes) else str(xml)


def has_low_dim(demo: h5py.Group) -> bool:
    """True if the demo's obs hold every key ``extract_vectors`` needs."""
    if "obs" not in demo:
        return False
    obs = demo["obs"]
    return any(k in obs for k in OBJECT_KEYS) and all(k in obs for k in REQUIRED_KEYS)


def _low_dim_obs(demo: h5py.Group) -> dict[str, np.ndarray]:
    obs = demo["obs"]
    keys = [k for k in (*OBJECT_KEYS, *REQUIRED_KEYS) if k in obs]
    return {k: obs[k][()] for k in keys}


def detect_object_layout(demo: h5py.Group, env_name: str, env: RobosuiteEnv | None,
                         strict: bool = False) -> str:
    """Which order ``obs/object`` is stored in, found by matching the simulator at the first state.

    Returns "canonical" when the env is unavailable or no layout matches (with a warning; with
    ``strict`` a ValueError instead: the obs then contradict the recorded states).
    """
    if env is None:
        return "canonical"
    live = env.reset_to(demo["states"][0], model_xml=model_xml_of(demo))["state"]
    obs0 = {k: v[:1] for k, v in _low_dim_obs(demo).items()}
    errors = {}
    for layout in OBJECT_LAYOUTS:
        stored = extract_vectors(obs0, env_name, layout)["state"][0]
        errors[layout] = float(np.abs(stored[OBJECT_POSE] - live[OBJECT_POSE]).max())
        if errors[layout] < 1e-3:
            return layout
    message = f"'obs/object' matches the simulator at its first state in no known layout (max errors {errors})"
    if strict:
        raise ValueError(message)
    log.warning("%s: %s; assuming the canonical order", demo.name, message)
    return "canonical"


def vectors_from_sim(demo: h5py.Group, env: RobosuiteEnv, with_frames: bool) -> dict[str, np.ndarray]:
    """state / proprio / velocity [T, D] (and frames [T, S, V * S, 3], ``env``'s frame cameras, if asked) from the
    recorded states."""
    xml = model_xml_of(demo)
    if xml is not None:
        try:
            env.load_model_xml(xml)
        except Exception as exc:  # e.g. an xml from another robosuite version whose assets are gone
            log.warning("%s: cannot load its model_file (%s: %s); rendering in the env's own model, "
                        "object sizes may differ slightly", demo.name, type(exc).__name__, exc)
    keys = ("state", "proprio", "velocity", "image") if with_frames else ("state", "proprio", "velocity")
    out: dict[str, list] = {k: [] for k in keys}
    for state in demo["states"][()]:
        obs = env.observe_state(state)
        for k in keys:
            out[k].append(obs[k])
    arrays = {k: np.stack(v) for k, v in out.items()}
    if with_frames:
        arrays["frames"] = arrays.pop("image")
    return arrays


def episode_from_hdf5(demo: h5py.Group, cameras: str | Sequence[str], image_size: int, env_name: str,
                      object_layout: str, env: RobosuiteEnv | None = None) -> dict[str, np.ndarray]:
    """``{"frames": uint8 [T, S, V * S, 3], "state", "proprio", "velocity": float32 [T, D]}`` from the file: the
    V ``cameras``' ``obs/<camera>_image`` frames, each resized to S x S, side by side.

    Vectors come from the file's low-dim obs, or from ``env`` (reset to each state) if it has none.
    """
    cameras = [cameras] if isinstance(cameras, str) else list(cameras)
    frames = np.concatenate([resize_frames(demo[f"obs/{c}_image"][()], image_size) for c in cameras], axis=2)
    if has_low_dim(demo):
        return {"frames": frames, **extract_vectors(_low_dim_obs(demo), env_name, object_layout)}
    if env is None:
        raise ValueError(f"{demo.name} has no low-dim obs and no simulator was given to compute them")
    return {"frames": frames, **vectors_from_sim(demo, env, with_frames=False)}


def episode_from_sim(demo: h5py.Group, env: RobosuiteEnv, use_file_vectors: bool, env_name: str,
                     object_layout: str) -> dict[str, np.ndarray]:
    """The same arrays, with frames (and, if the file has no low-dim obs, vectors) from the simulator."""
    out = vectors_from_sim(demo, env, with_frames=True)
    if use_file_vectors:
        out.update(extract_vectors(_low_dim_obs(demo), env_name, object_layout))
    return out
