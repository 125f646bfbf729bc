"""Open and validate a robomimic hdf5 file before conversion; every problem is one clear line.

:class:`InputError` messages name the file, the demo and the key, e.g.
``data.hdf5: demo_3: 'actions' has 52 steps but 'states' has 51``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

IMAGE_SUFFIX = "_image"


class InputError(ValueError):
    """Bad converter input (the CLI prints the message and exits with code 2)."""


@dataclass
class SourceInfo:
    """What the converter needs to know about a validated input file."""

    path: Path
    env_name: str
    env_type: int
    env_kwargs: dict
    demo_keys: list[str]  # in episode order
    lengths: list[int]
    sim_state_dim: int
    action_dim: int
    image_cameras: list[str] = field(default_factory=list)  # cameras with obs/<cam>_image
    image_shape: tuple[int, ...] | None = None  # [H, W, 3] of stored images


def _demo_sort_key(name: str) -> tuple[int, str]:
    m = re.search(r"(\d+)$", name)
    return (int(m.group(1)) if m else 1 << 60, name)


def open_input(path: str | Path) -> h5py.File:
    """Open ``path`` read-only, or raise InputError if it is missing or not an hdf5 file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise InputError(f"{path}: not an hdf5 file")
    return h5py.File(path, "r")


def demo_keys(f: h5py.File, path: Path, filter_key: str | None) -> list[str]:
    """Demo names in episode order (all of ``data``, or those listed in ``mask/<filter_key>``)."""
    data = f["data"]
    if filter_key is None:
        keys = [k for k in data.keys() if isinstance(data[k], h5py.Group)]
    else:
        if f"mask/{filter_key}" not in f:
            have = sorted(f["mask"].keys()) if "mask" in f else []
            raise InputError(f"{path}: filter key 'mask/{filter_key}' not found (available: {have})")
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in f[f"mask/{filter_key}"][()]]
        missing = [k for k in keys if k not in data]
        if missing:
            raise InputError(f"{path}: mask/{filter_key} lists {missing[0]}, which is not in 'data'")
    if not keys:
        raise InputError(f"{path}: 'data' holds no demos" + (f" for filter key {filter_key!r}" if filter_key else ""))
    return sorted(keys, key=_demo_sort_key)


def iter_chunks(ds: h5py.Dataset, rows: int = 4096) -> Iterator[np.ndarray]:
    for start in range(0, ds.shape[0], rows):
        yield ds[start:start + rows]


def validate(f: h5py.File, path: str | Path, filter_key: str | None = None) -> SourceInfo:
    """Check the file's structure (not its images' pixels) and return what conversion needs."""
    path = Path(path)
    if "data" not in f or not isinstance(f["data"], h5py.Group):
        raise InputError(f"{path}: no 'data' group (not a robomimic dataset)")
    data = f["data"]
    if "env_args" not in data.attrs:
        raise InputError(f"{path}: 'data' has no 'env_args' attribute")
    try:
        env_args = json.loads(data.attrs["env_args"])
        env_name, env_kwargs = env_args["env_name"], dict(env_args.get("env_kwargs", {}))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: 'data' attribute 'env_args' is not valid robomimic env_args JSON ({exc})") from None
    keys = demo_keys(f, path, filter_key)
    lengths, sim_dim, action_dim = [], None, None
    cams: set[str] | None = None
    image_shape = None
    for key in keys:
        demo = data[key]
        for name in ("actions", "states"):
            if name not in demo:
                raise InputError(f"{path}: {key}: missing '{name}'")
        actions, states = demo["actions"], demo["states"]
        if actions.ndim != 2 or states.ndim != 2:
            raise InputError(f"{path}: {key}: 'actions' and 'states' must be 2-D, got {actions.shape} and {states.shape}")
        if actions.shape[0] != states.shape[0]:
            raise InputError(f"{path}: {key}: 'actions' has {actions.shape[0]} steps but 'states' has {states.shape[0]}")
        if actions.shape[0] == 0:
            raise InputError(f"{path}: {key}: 'actions' is empty")
        if sim_dim is not None and (states.shape[1] != sim_dim or actions.shape[1] != action_dim):
            raise InputError(f"{path}: {key}: 'states'/'actions' widths {states.shape[1]}/{actions.shape[1]} "
                             f"differ from the first demo's {sim_dim}/{action_dim}")
        sim_dim, action_dim = states.shape[1], actions.shape[1]
        for name, ds in (("actions", actions), ("states", states)):
            if not all(np.isfinite(chunk).all() for chunk in iter_chunks(ds)):
                raise InputError(f"{path}: {key}: '{name}' contains NaN or inf")
        obs = demo["obs"] if "obs" in demo else {}
        demo_cams = {k[: -len(IMAGE_SUFFIX)] for k in obs.keys() if k.endswith(IMAGE_SUFFIX)}
        cams = demo_cams if cams is None else cams & demo_cams
        for cam in demo_cams:
            ds = obs[f"{cam}{IMAGE_SUFFIX}"]
            if ds.shape[0] != actions.shape[0] or ds.ndim != 4 or ds.shape[-1] != 3:
                raise InputError(f"{path}: {key}: 'obs/{cam}{IMAGE_SUFFIX}' has shape {ds.shape}, "
                                 f"expected [{actions.shape[0]}, H, W, 3]")
            image_shape = image_shape or tuple(ds.shape[1:])
        lengths.append(int(actions.shape[0]))
    return SourceInfo(path=path, env_name=env_name, env_type=int(env_args.get("type", 1)),
                      env_kwargs=env_kwargs, demo_keys=keys, lengths=lengths, sim_state_dim=int(sim_dim),
                      action_dim=int(action_dim), image_cameras=sorted(cams or []), image_shape=image_shape)
