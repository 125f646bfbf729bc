"""Open and validate a robomimic hdf5 file before conversion; every problem is one clear line.

:class:`InputError` messages name the file, the demo and the key, e.g.
``data.hdf5: demo_3: 'actions' has 52 steps but 'states' has 51``. This module checks what the
file alone says (structure, dtypes, shapes, finite values, ``env_args`` syntax, model xml syntax;
see ``datasets/demo_checks.py`` for one demo); ``conversion/env_checks.py`` checks the file against
the simulator.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py

from datasets.demo_checks import DemoFacts, check_demo

DEFAULT_CONTROL_FREQ = 20.0


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
    image_shapes: dict[str, tuple[int, int]] = field(default_factory=dict)  # camera -> (H, W), in all demos
    low_dim: bool = False  # every demo holds the low-dim obs the vectors are read from
    control_freq: float = DEFAULT_CONTROL_FREQ

    @property
    def image_cameras(self) -> list[str]:
        """Cameras with ``obs/<cam>_image`` in every demo."""
        return sorted(self.image_shapes)


def _demo_sort_key(name: str) -> tuple[int, str]:
    m = re.search(r"(\d+)$", name)
    return (int(m.group(1)) if m else 1 << 60, name)


def open_input(path: str | Path) -> h5py.File:
    """Open ``path`` read-only, or raise InputError if it is missing, unreadable or not a sound hdf5 file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file" + (" (it is a directory)" if path.is_dir() else ""))
    try:
        if not h5py.is_hdf5(path):
            raise InputError(f"{path}: not an hdf5 file")
        return h5py.File(path, "r")
    except OSError as exc:  # unreadable, or an hdf5 header whose body is cut off / corrupt
        raise InputError(f"{path}: cannot open the hdf5 file (truncated or corrupt?): {exc}") from None


def demo_keys(f: h5py.File, path: Path, filter_key: str | None) -> list[str]:
    """Demo names in episode order (all of ``data``, or those listed in ``mask/<filter_key>``)."""
    data = f["data"]
    if filter_key is None:
        keys = [k for k in data.keys() if isinstance(data[k], h5py.Group)]
    else:
        mask = f.get(f"mask/{filter_key}") if isinstance(f.get("mask"), h5py.Group) else None
        if not isinstance(mask, h5py.Dataset):
            have = sorted(f["mask"].keys()) if isinstance(f.get("mask"), h5py.Group) else []
            raise InputError(f"{path}: filter key 'mask/{filter_key}' not found (available: {have})")
        if mask.dtype.kind not in "SUO" or mask.ndim != 1:
            raise InputError(f"{path}: 'mask/{filter_key}' must be a 1-D list of demo names, got "
                             f"dtype {mask.dtype} shape {mask.shape}")
        keys = [k.decode(errors="replace") if isinstance(k, bytes) else str(k) for k in mask[()]]
        missing = [k for k in keys if not isinstance(data.get(k), h5py.Group)]
        if missing:
            raise InputError(f"{path}: mask/{filter_key} lists {missing[0]}, which is not a demo group in 'data'")
    if not keys:
        raise InputError(f"{path}: 'data' holds no demos" + (f" for filter key {filter_key!r}" if filter_key else ""))
    if len(set(keys)) != len(keys):
        raise InputError(f"{path}: mask/{filter_key} lists a demo twice")
    return sorted(keys, key=_demo_sort_key)


def _str_list(value: Any) -> bool:
    items = [value] if isinstance(value, str) else value
    return isinstance(items, list) and bool(items) and all(isinstance(x, str) and x for x in items)


def _env_kwargs_problem(kw: Any) -> str | None:
    if not isinstance(kw, dict):
        return f"'env_kwargs' is a {type(kw).__name__}, not a JSON object"
    if kw.get("controller_configs") is not None and not isinstance(kw["controller_configs"], dict):
        return f"'env_kwargs.controller_configs' must be a JSON object, got {kw['controller_configs']!r}"[:200]
    if "robots" in kw and not _str_list(kw["robots"]):
        return f"'env_kwargs.robots' must be a robot name or a list of names, got {kw['robots']!r}"
    if kw.get("camera_names") is not None and not _str_list(kw["camera_names"]):
        return f"'env_kwargs.camera_names' must be a camera name or a list of names, got {kw['camera_names']!r}"
    freq = kw.get("control_freq", DEFAULT_CONTROL_FREQ)
    if isinstance(freq, bool) or not isinstance(freq, (int, float)) or not 0 < freq < float("inf"):
        return f"'env_kwargs.control_freq' must be a positive number, got {freq!r}"
    return None


def parse_env_args(data: h5py.Group, path: Path) -> tuple[str, int, dict]:
    """``(env_name, env_type, env_kwargs)`` from the ``data`` attribute ``env_args`` (JSON), checked."""
    if "env_args" not in data.attrs:
        raise InputError(f"{path}: 'data' has no 'env_args' attribute")
    where = f"{path}: 'data' attribute 'env_args'"
    raw = data.attrs["env_args"]
    try:
        args = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{where} is not valid JSON ({exc})") from None
    if not isinstance(args, dict) or not isinstance(args.get("env_name"), str) or not args["env_name"]:
        raise InputError(f"{where} has no 'env_name' string")
    env_type = args.get("type", 1)
    if env_type != 1 or isinstance(env_type, bool):
        raise InputError(f"{where}: 'type' is {env_type!r}; only robosuite envs (type 1) are supported")
    kwargs = args.get("env_kwargs", {})
    problem = _env_kwargs_problem(kwargs)
    if problem:
        raise InputError(f"{where}: {problem}")
    return args["env_name"], 1, dict(kwargs)


def _merge_demo(info: SourceInfo, key: str, facts: DemoFacts, first: bool) -> None:
    """Add one demo's facts to ``info``; widths and image sizes must agree with the first demo's."""
    if first:
        info.sim_state_dim, info.action_dim = facts.state_dim, facts.action_dim
        info.image_shapes, info.low_dim = dict(facts.image_shapes), facts.low_dim
    elif (facts.state_dim, facts.action_dim) != (info.sim_state_dim, info.action_dim):
        raise InputError(f"{info.path}: {key}: 'states'/'actions' widths {facts.state_dim}/{facts.action_dim} "
                         f"differ from the first demo's {info.sim_state_dim}/{info.action_dim}")
    for cam, shape in facts.image_shapes.items():
        if cam in info.image_shapes and info.image_shapes[cam] != shape:
            raise InputError(f"{info.path}: {key}: 'obs/{cam}_image' frames are {shape[0]}x{shape[1]}, "
                             f"those of {info.demo_keys[0]} {info.image_shapes[cam][0]}x{info.image_shapes[cam][1]}")
    info.image_shapes = {c: s for c, s in info.image_shapes.items() if c in facts.image_shapes}
    info.low_dim = info.low_dim and facts.low_dim
    info.lengths.append(facts.length)


def validate(f: h5py.File, path: str | Path, filter_key: str | None = None) -> SourceInfo:
    """Check everything the file alone can tell (see ``check_demo``); return what conversion needs."""
    path = Path(path)
    try:
        if not isinstance(f.get("data"), h5py.Group):
            raise InputError(f"{path}: no 'data' group (not a robomimic dataset)")
        env_name, env_type, env_kwargs = parse_env_args(f["data"], path)
        keys = demo_keys(f, path, filter_key)
    except (OSError, RuntimeError, KeyError) as exc:  # h5py read errors of a damaged file
        raise InputError(f"{path}: cannot read the file's structure ({type(exc).__name__}: {exc})") from None
    info = SourceInfo(path=path, env_name=env_name, env_type=env_type, env_kwargs=env_kwargs, demo_keys=keys,
                      lengths=[], sim_state_dim=0, action_dim=0,
                      control_freq=float(env_kwargs.get("control_freq", DEFAULT_CONTROL_FREQ)))
    for i, key in enumerate(keys):
        where = f"{path}: {key}"
        try:
            facts = check_demo(f["data"][key], env_name)
        except ValueError as exc:  # check_demo's own one-line findings
            raise InputError(f"{where}: {exc}") from None
        except (OSError, RuntimeError, KeyError) as exc:  # h5py: a dataset whose data is cut off / corrupt
            raise InputError(f"{where}: cannot read it ({type(exc).__name__}: {exc})") from None
        _merge_demo(info, key, facts, first=i == 0)
    return info
