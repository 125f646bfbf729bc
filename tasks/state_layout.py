"""The low-dim vectors of a dataset frame, built the same way from hdf5 obs and from live robosuite obs.

Both the converter (on ``obs/<key>`` arrays of a robomimic hdf5 file, shape [T, D]) and the live
environment wrapper (on a robosuite observation dict, shape [D]) call :func:`extract_vectors`, so a
planner's live vectors match the training vectors exactly.

Layout (``k`` = object dim, the registry's ``Task.object_dim``: 10 for Lift, 14 for PickPlaceCan):

- ``state``    [k + 9]: the task's ``object`` vector (object pos 3, object quat 4 first, then the
  rest: e.g. gripper-to-object pos), then eef pos 3, eef quat 4 (xyzw), gripper qpos 2.
  So ``state[..., OBJECT_POSE]`` is the object pose (``alignment_dim: 7``) and
  ``state[..., OBJECT_POS]`` its position; ``proprio[..., EEF_POS_SLICE]`` is the eef position.
- ``proprio``  [9]: eef pos 3, eef quat 4, gripper qpos 2.
- ``velocity`` [9]: arm joint velocities 7 (``robot0_joint_vel``), gripper joint velocities 2
  (``robot0_gripper_qvel``). Both keys are in robomimic's image / low-dim files and in the live obs.

The object vector is put in the canonical order of robomimic's datasets (robosuite <= 1.4):
object pos, object quat, then the relative parts (each task's ``object_parts`` in ``tasks/builtin.py``;
Lift: ``cube_pos, cube_quat, gripper_to_cube_pos``). An env with no registered task gets the generic
parts ``object_pos, object_quat, object_rest``. Sources:

- live robosuite obs: the named per-task keys (``cube_pos``, ``Can_pos``, ...) when present. Note
  robosuite 1.5's own ``object-state`` puts PickPlaceCan's relative parts FIRST, so it is only a
  fallback, read with ``object_layout="robosuite15"``.
- hdf5 ``obs/object``: canonical order (``object_layout="canonical"``, what robomimic's files and
  ``envs/generate_demos.py`` hold); a file written from robosuite 1.5's ``object-state`` needs
  ``object_layout="robosuite15"`` (the converter detects which one matches the simulator).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tasks.registry import task_for_env
from tasks.task import OBJECT_POSE_DIM

OBJECT_KEYS = ("object", "object-state")
EEF_POS, EEF_QUAT, GRIPPER_QPOS = "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"
JOINT_VEL, GRIPPER_QVEL = "robot0_joint_vel", "robot0_gripper_qvel"
PROPRIO_PARTS = ((EEF_POS, 3), (EEF_QUAT, 4), (GRIPPER_QPOS, 2))
VELOCITY_PARTS = ((JOINT_VEL, 7), (GRIPPER_QVEL, 2))
PROPRIO_DIM = sum(n for _, n in PROPRIO_PARTS)
OBJECT_POSE = slice(0, OBJECT_POSE_DIM)  # object pos 3 + quat 4 at the start of ``state``
OBJECT_POS = slice(0, 3)  # object position in ``state``
EEF_POS_SLICE = slice(0, 3)  # end-effector position in ``proprio``
POSITION_ACTION = slice(0, 3)  # the OSC position deltas dx, dy, dz of an env action (its last dim: gripper)

# keys an hdf5 file / obs dict must hold for extract_vectors
REQUIRED_KEYS = (EEF_POS, EEF_QUAT, GRIPPER_QPOS, JOINT_VEL, GRIPPER_QVEL)
OBJECT_LAYOUTS = ("canonical", "robosuite15")


def canonical_object(obj: np.ndarray, env_name: str, object_layout: str = "canonical") -> np.ndarray:
    """Reorder an object vector [..., k] stored in ``object_layout`` into the canonical order."""
    if object_layout not in OBJECT_LAYOUTS:
        raise ValueError(f"object_layout must be one of {OBJECT_LAYOUTS}, got {object_layout!r}")
    task = task_for_env(env_name)
    order = None if task is None else task.robosuite15_order
    if object_layout == "canonical" or order is None or obj.shape[-1] != len(order):
        return obj
    inverse = np.argsort(order)  # canonical[j] = stored[inverse[j]]
    return obj[..., inverse]


def object_vector(obs: Mapping[str, np.ndarray], env_name: str,
                  object_layout: str = "canonical") -> np.ndarray:
    """The task object vector [..., k] in canonical order (named keys, else object / object-state)."""
    task = task_for_env(env_name)
    parts = None if task is None else task.object_parts
    if parts is not None and all(name in obs for name, _ in parts):
        return np.concatenate([np.asarray(obs[name], dtype=np.float64) for name, _ in parts], axis=-1)
    if "object" in obs:
        return canonical_object(np.asarray(obs["object"]), env_name, object_layout)
    if "object-state" in obs:
        return canonical_object(np.asarray(obs["object-state"]), env_name, "robosuite15")
    raise KeyError(f"observation has no object vector: none of {OBJECT_KEYS} in {sorted(obs)}")


def _part(obs: Mapping[str, np.ndarray], key: str, size: int) -> np.ndarray:
    if key not in obs:
        raise KeyError(f"observation has no '{key}' (keys: {sorted(obs)})")
    arr = np.asarray(obs[key])
    if arr.shape[-1] != size:
        raise ValueError(f"'{key}' has last dim {arr.shape[-1]}, expected {size}")
    return arr


def extract_vectors(obs: Mapping[str, np.ndarray], env_name: str,
                    object_layout: str = "canonical") -> dict[str, np.ndarray]:
    """Build the ``state``, ``proprio`` and ``velocity`` float32 vectors from an observation.

    Args:
        obs: low-dim observations, every entry [D] (one frame) or [T, D] (a sequence).
        env_name: robosuite env name (picks the object part names and checks their size).
        object_layout: order of ``obs["object"]`` when the named object keys are absent.
    Returns:
        ``{"state": [..., k+9], "proprio": [..., 9], "velocity": [..., 9]}``, float32.
    """
    obj = object_vector(obs, env_name, object_layout)
    task = task_for_env(env_name)
    if task is not None and obj.shape[-1] != task.object_dim:
        raise ValueError(f"{env_name} object vector has {obj.shape[-1]} dims, expected {task.object_dim}")
    if obj.shape[-1] < OBJECT_POSE_DIM:
        raise ValueError(f"object vector has {obj.shape[-1]} dims, needs at least pos 3 + quat 4")
    proprio = np.concatenate([_part(obs, k, n) for k, n in PROPRIO_PARTS], axis=-1)
    velocity = np.concatenate([_part(obs, k, n) for k, n in VELOCITY_PARTS], axis=-1)
    state = np.concatenate([obj, proprio], axis=-1)
    return {"state": state.astype(np.float32), "proprio": proprio.astype(np.float32),
            "velocity": velocity.astype(np.float32)}


def object_position(state: np.ndarray) -> np.ndarray:
    """The object position [..., 3] of ``state`` vectors [..., k + 9] (a copy)."""
    return np.array(np.asarray(state)[..., OBJECT_POS])


def eef_position(proprio: np.ndarray) -> np.ndarray:
    """The end-effector position [..., 3] of ``proprio`` vectors [..., 9] (a copy)."""
    return np.array(np.asarray(proprio)[..., EEF_POS_SLICE])


def position_slices(state_dim: int) -> dict[str, slice]:
    """The object's and the end effector's position in a [state_dim] state vector (object first, proprio last)."""
    eef0 = state_dim - PROPRIO_DIM
    return {"object": OBJECT_POS, "eef": slice(eef0 + EEF_POS_SLICE.start, eef0 + EEF_POS_SLICE.stop)}


def object_parts(env_name: str, object_dim: int | None = None) -> tuple[tuple[str, int], ...]:
    """Named parts of the object vector: the registered task's names when they fit, else pos/quat/rest.

    ``object_dim`` defaults to the registered task's (a ValueError for an unregistered env).
    """
    task = task_for_env(env_name)
    if object_dim is None:
        if task is None:
            raise ValueError(f"object_dim must be given for env {env_name!r} (no registered task)")
        object_dim = task.object_dim
    if task is not None and task.object_dim == object_dim:
        return task.object_parts
    rest = (("object_rest", object_dim - OBJECT_POSE_DIM),) if object_dim > OBJECT_POSE_DIM else ()
    return (("object_pos", 3), ("object_quat", 4), *rest)


def part_bounds(parts) -> list[tuple[str, int, int]]:
    """``(name, start, stop)`` of consecutive ``(name, size)`` parts."""
    out, start = [], 0
    for name, size in parts:
        out.append((name, start, start + size))
        start += size
    return out
