"""Check a validated robomimic file (``hdf5_checks.SourceInfo``) against the simulator it names.

- ``env_args`` must name an env, robots and controller types this robosuite knows, and the env
  must build from the stored kwargs (:func:`open_env`); ``allow_unknown=True`` (the converter's
  ``--allow-unknown-env``) skips the simulator checks instead, where the simulator is not needed
  for frames or vectors.
- ``actions`` width and range = the env's action spec (e.g. 7 in [-1, 1] for a Panda with an
  OSC_POSE arm + gripper); ``states`` width = the env's flattened MuJoCo state ``1 + nq + nv``.
- every demo's ``model_file`` compiles in MuJoCo and its flattened state has the ``states`` width.
- ``obs/object`` matches the simulator's object pose at the first and last step of every demo.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import h5py
import numpy as np

from conversion.episode_source import detect_object_layout, model_xml_of
from datasets.demo_checks import VECTOR_KEYS, iter_chunks
from datasets.hdf5_checks import InputError, SourceInfo
from envs.controller_config import controller_summary, unknown_names
from envs.model_xml import flat_state_dim
from envs.robosuite_env import RobosuiteEnv
from tasks.state_layout import OBJECT_POSE, extract_vectors
from utils.xml_text import model_key

log = logging.getLogger(__name__)

SKIPPED = "action width and range, state width against the env, obs/object against the simulator"
ACTION_TOL = 1e-6  # actions may exceed the env's bounds by this much (float rounding)
POSE_TOL = 1e-3  # obs/object pose vs the simulator's, at a recorded state


def _skip(info: SourceInfo, reason: str) -> None:
    log.warning("%s: --allow-unknown-env: %s; skipping the checks that need the simulator (%s)",
                info.path, reason, SKIPPED)


def open_env(info: SourceInfo, cameras: Sequence[str], image_size: int, render: bool, needed: bool,
             allow_unknown: bool) -> RobosuiteEnv | None:
    """The env of ``info`` (rendering ``cameras`` side by side, the main one first, if ``render``), or None if
    skipped under ``allow_unknown``.

    ``needed``: the simulator makes the frames or the vectors, so it must build even if ``allow_unknown``.
    """
    import robosuite

    where = f"{info.path}: 'data' attribute 'env_args'"
    unknown = unknown_names(info.env_name, info.env_kwargs)
    if unknown and (needed or not allow_unknown):
        hint = "; this file needs the simulator for its frames or vectors" if needed else \
            " (--allow-unknown-env converts without the simulator checks)"
        raise InputError(f"{where}: robosuite {robosuite.__version__} does not know {', '.join(unknown)}{hint}")
    if unknown:
        _skip(info, f"unknown {', '.join(unknown)}")
        return None
    try:
        return RobosuiteEnv(info.env_name, info.env_kwargs, camera_name=cameras[0], image_size=image_size,
                            render=render, frame_cameras=cameras)
    except ValueError as exc:
        if render and "camera" in str(exc):
            raise InputError(f"{info.path}: {info.env_name}: {exc}") from None
        error = exc
    except Exception as exc:  # robosuite.make: a bad kwarg, a bad controller parameter, ...
        error = exc
    if allow_unknown and not needed:
        _skip(info, f"cannot build {info.env_name} ({type(error).__name__}: {error})")
        return None
    raise InputError(f"{where}: cannot build {info.env_name} from its env_kwargs "
                     f"({type(error).__name__}: {error})") from None


def check_actions(f: h5py.File, info: SourceInfo, env: RobosuiteEnv) -> None:
    """``actions`` width = the env's action dim and every value inside its action bounds."""
    low, high = env.action_low, env.action_high
    if info.action_dim != low.shape[0]:
        controller = controller_summary(info.env_kwargs)
        raise InputError(f"{info.path}: {info.demo_keys[0]}: 'actions' has width {info.action_dim}; "
                         f"{info.env_name} with controller {controller} takes {low.shape[0]}")
    for key in info.demo_keys:
        for start, chunk in iter_chunks(f["data"][key]["actions"]):
            bad = (chunk < low - ACTION_TOL) | (chunk > high + ACTION_TOL)
            if bad.any():
                t, d = np.argwhere(bad)[0]
                raise InputError(f"{info.path}: {key}: 'actions' value {chunk[t, d]:.6g} at step {start + t}, "
                                 f"dim {d} is outside {info.env_name}'s action range [{low[d]:g}, {high[d]:g}]")


def check_state_width(info: SourceInfo, env: RobosuiteEnv) -> None:
    """``states`` width = the env's flattened MuJoCo state ``[time, qpos, qvel]``."""
    nq, nv = int(env.env.sim.model.nq), int(env.env.sim.model.nv)
    if info.sim_state_dim != 1 + nq + nv:
        raise InputError(f"{info.path}: {info.demo_keys[0]}: 'states' has width {info.sim_state_dim}; "
                         f"{info.env_name}'s flattened MuJoCo state [time, qpos, qvel] has {1 + nq + nv} "
                         f"(1 + nq {nq} + nv {nv})")


def check_model_files(f: h5py.File, info: SourceInfo) -> None:
    """Every demo's ``model_file`` compiles and has a flattened state of the ``states`` width."""
    dims: dict[str, int] = {}
    for key in info.demo_keys:
        xml = model_xml_of(f["data"][key])
        mk = model_key(xml)
        if mk not in dims:
            try:
                dims[mk] = flat_state_dim(xml)
            except (ValueError, OSError) as exc:
                message = " ".join(str(exc).split())
                raise InputError(f"{info.path}: {key}: attribute 'model_file' does not load in MuJoCo "
                                 f"({message})") from None
        if dims[mk] != info.sim_state_dim:
            raise InputError(f"{info.path}: {key}: 'states' has width {info.sim_state_dim}, but the flattened "
                             f"state of its 'model_file' has {dims[mk]}")


def _check_poses(demo: h5py.Group, info: SourceInfo, env: RobosuiteEnv, layout: str) -> None:
    obs = demo["obs"]
    keys = [k for k in VECTOR_KEYS if k in obs]
    for t in sorted({0, demo["states"].shape[0] - 1}):
        live = env.observe_state(demo["states"][t])["state"][OBJECT_POSE]
        stored = extract_vectors({k: obs[k][t:t + 1] for k in keys}, info.env_name, layout)["state"][0, OBJECT_POSE]
        err = float(np.abs(stored - live).max())
        if err > POSE_TOL:
            raise InputError(f"{info.path}: {demo.name.rsplit('/', 1)[-1]}: 'obs/object' pose at step {t} is "
                             f"{err:.3g} away from the simulator's at 'states'[{t}] (it must describe the "
                             "recorded state)")


def object_layout(f: h5py.File, info: SourceInfo, env: RobosuiteEnv | None) -> str:
    """The order of ``obs/object`` (see ``tasks/state_layout.py``), checked in every demo."""
    if not info.low_dim or env is None:
        return "canonical"
    first = f["data"][info.demo_keys[0]]
    try:
        layout = detect_object_layout(first, info.env_name, env, strict=True)
    except ValueError as exc:
        raise InputError(f"{info.path}: {info.demo_keys[0]}: {exc}") from None
    for key in info.demo_keys:
        _check_poses(f["data"][key], info, env, layout)
    return layout
