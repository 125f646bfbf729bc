"""The low-dim vectors of a dataset frame, built the same way from hdf5 obs and from live robosuite obs.

Both the converter (on ``obs/<key>`` arrays of a robomimic hdf5 file, shape [T, D]) and the live
environment wrapper (on a robosuite observation dict, shape [D]) call :func:`extract_vectors`, so a
planner's live vectors match the training vectors exactly.

Layout (``k`` = object dim, 10 for Lift, 14 for PickPlaceCan):

- ``state``    [k + 9]: the task's ``object`` vector (object pos 3, object quat 4 first, then the
  rest: e.g. gripper-to-object pos), then eef pos 3, eef quat 4 (xyzw), gripper qpos 2.
  So ``state[..., :7]`` is the object pose (``alignment_dim: 7``).
- ``proprio``  [9]: eef pos 3, eef quat 4, gripper qpos 2.
- ``velocity`` [9]: arm joint velocities 7 (``robot0_joint_vel``), gripper joint velocities 2
  (``robot0_gripper_qvel``). Both keys are in robomimic's image / low-dim files and in the live obs.

The object vector is put in the canonical order of robomimic's datasets (robosuite <= 1.4):
object pos, object quat, then the relative parts (Lift: ``cube_pos, cube_quat, gripper_to_cube_pos``;
PickPlaceCan: ``Can_pos, Can_quat, Can_to_robot0_eef_pos, Can_to_robot0_eef_quat``). Sources:

- live robosuite obs: the named per-task keys (``cube_pos``, ``Can_pos``, ...) when present. Note
  robosuite 1.5's own ``object-state`` puts PickPlaceCan's relative parts FIRST, so it is only a
  fallback, read with ``object_layout="robosuite15"``.
- hdf5 ``obs/object``: canonical order (``object_layout="canonical"``, what robomimic's files and
  ``datasets/generate_demos.py`` hold); a file written from robosuite 1.5's ``object-state`` needs
  ``object_layout="robosuite15"`` (the converter detects which one matches the simulator).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from datasets.meta import VectorSlice

OBJECT_KEYS = ("object", "object-state")
EEF_POS, EEF_QUAT, GRIPPER_QPOS = "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"
JOINT_VEL, GRIPPER_QVEL = "robot0_joint_vel", "robot0_gripper_qvel"
PROPRIO_PARTS = ((EEF_POS, 3), (EEF_QUAT, 4), (GRIPPER_QPOS, 2))
VELOCITY_PARTS = ((JOINT_VEL, 7), (GRIPPER_QVEL, 2))

# names of the parts of the object vector, per env, in canonical (robomimic dataset) order
OBJECT_PARTS: dict[str, tuple[tuple[str, int], ...]] = {
    "Lift": (("cube_pos", 3), ("cube_quat", 4), ("gripper_to_cube_pos", 3)),
    "PickPlaceCan": (("Can_pos", 3), ("Can_quat", 4), ("Can_to_robot0_eef_pos", 3),
                     ("Can_to_robot0_eef_quat", 4)),
}

# keys an hdf5 file / obs dict must hold for extract_vectors
REQUIRED_KEYS = (EEF_POS, EEF_QUAT, GRIPPER_QPOS, JOINT_VEL, GRIPPER_QVEL)


# robosuite 1.5 ``object-state`` order, as indices into the canonical order
ROBOSUITE15_ORDER: dict[str, tuple[int, ...]] = {
    "PickPlaceCan": (7, 8, 9, 10, 11, 12, 13, 0, 1, 2, 3, 4, 5, 6),
}
OBJECT_LAYOUTS = ("canonical", "robosuite15")


def canonical_object(obj: np.ndarray, env_name: str, object_layout: str = "canonical") -> np.ndarray:
    """Reorder an object vector [..., k] stored in ``object_layout`` into the canonical order."""
    if object_layout not in OBJECT_LAYOUTS:
        raise ValueError(f"object_layout must be one of {OBJECT_LAYOUTS}, got {object_layout!r}")
    order = ROBOSUITE15_ORDER.get(env_name)
    if object_layout == "canonical" or order is None or obj.shape[-1] != len(order):
        return obj
    inverse = np.argsort(order)  # canonical[j] = stored[inverse[j]]
    return obj[..., inverse]


def object_vector(obs: Mapping[str, np.ndarray], env_name: str,
                  object_layout: str = "canonical") -> np.ndarray:
    """The task object vector [..., k] in canonical order (named keys, else object / object-state)."""
    parts = OBJECT_PARTS.get(env_name)
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
    if env_name in OBJECT_PARTS:
        want = sum(n for _, n in OBJECT_PARTS[env_name])
        if obj.shape[-1] != want:
            raise ValueError(f"{env_name} object vector has {obj.shape[-1]} dims, expected {want}")
    if obj.shape[-1] < 7:
        raise ValueError(f"object vector has {obj.shape[-1]} dims, needs at least pos 3 + quat 4")
    proprio = np.concatenate([_part(obs, k, n) for k, n in PROPRIO_PARTS], axis=-1)
    velocity = np.concatenate([_part(obs, k, n) for k, n in VELOCITY_PARTS], axis=-1)
    state = np.concatenate([obj, proprio], axis=-1)
    return {"state": state.astype(np.float32), "proprio": proprio.astype(np.float32),
            "velocity": velocity.astype(np.float32)}


def _slices(parts) -> list[VectorSlice]:
    out, start = [], 0
    for name, size in parts:
        out.append(VectorSlice(name=name, start=start, stop=start + size))
        start += size
    return out


def object_parts(env_name: str, object_dim: int) -> tuple[tuple[str, int], ...]:
    """Named parts of the object vector: robosuite's names when known, else pos/quat/rest."""
    parts = OBJECT_PARTS.get(env_name)
    if parts is not None and sum(n for _, n in parts) == object_dim:
        return parts
    rest = (("object_rest", object_dim - 7),) if object_dim > 7 else ()
    return (("object_pos", 3), ("object_quat", 4), *rest)


def vector_slices(env_name: str, object_dim: int | None = None
                  ) -> tuple[list[VectorSlice], list[VectorSlice], list[VectorSlice]]:
    """``(state_slices, proprio_slices, velocity_slices)`` describing :func:`extract_vectors`' output.

    ``object_dim`` defaults to the known size for ``env_name`` (Lift 10, PickPlaceCan 14).
    """
    if object_dim is None:
        if env_name not in OBJECT_PARTS:
            raise ValueError(f"object_dim must be given for env {env_name!r}")
        object_dim = sum(n for _, n in OBJECT_PARTS[env_name])
    state = _slices((*object_parts(env_name, object_dim), *PROPRIO_PARTS))
    return state, _slices(PROPRIO_PARTS), _slices(VELOCITY_PARTS)
