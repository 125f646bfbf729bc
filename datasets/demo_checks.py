"""Check one robomimic demo group for what the converter will read from it (file alone, no simulator).

Every numeric array that reaches the dataset is checked: ``actions`` (stored as float32),
``states`` (float64) and the low-dim obs the vectors come from (``object`` / ``object-state`` and
``robot0_eef_pos``, ... ; float32): numbers, 2-D, one row per step, finite after the cast to the
stored dtype. Camera images must be uint8 ``[T, H, W, 3]`` (no conversion: float images have no
single agreed scale, so they are refused rather than guessed). ``model_file`` must be present and
well-formed XML (``env_checks`` compiles it). Problems are raised as one-line ``ValueError``s that
name the key; ``hdf5_checks.validate`` prefixes the file and demo.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import h5py
import numpy as np

from tasks.state_layout import OBJECT_KEYS, REQUIRED_KEYS, extract_vectors
from utils.xml_text import xml_parse_error

IMAGE_SUFFIX = "_image"
VECTOR_KEYS = (*OBJECT_KEYS, *REQUIRED_KEYS)  # the obs keys the dataset vectors are built from


@dataclass
class DemoFacts:
    """What one checked demo holds."""

    length: int
    action_dim: int
    state_dim: int
    image_shapes: dict[str, tuple[int, int]] = field(default_factory=dict)  # camera -> (H, W)
    low_dim: bool = False  # holds every obs key the dataset vectors are read from


def iter_chunks(ds: h5py.Dataset, rows: int = 4096) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, rows)`` blocks of a dataset, so big arrays are never read whole."""
    for start in range(0, ds.shape[0], rows):
        yield start, ds[start:start + rows]


def _dataset(group: h5py.Group, name: str, label: str) -> h5py.Dataset:
    if name not in group:
        raise ValueError(f"missing '{label}'")
    ds = group[name]
    if not isinstance(ds, h5py.Dataset):
        raise ValueError(f"'{label}' is a group, not a dataset")
    return ds


def check_numeric(ds: h5py.Dataset, label: str, steps: int | None, store: type = np.float32) -> int:
    """Check a [T, D] array of numbers, finite once cast to ``store``; return D."""
    if ds.dtype.kind not in "fiu":
        raise ValueError(f"'{label}' has dtype {ds.dtype}, expected numbers (float or int)")
    if ds.ndim != 2 or ds.shape[1] < 1:
        raise ValueError(f"'{label}' has shape {ds.shape}, expected [T, D] with D >= 1")
    if steps is not None and ds.shape[0] != steps:
        raise ValueError(f"'{label}' has {ds.shape[0]} steps but 'actions' has {steps}")
    with np.errstate(over="ignore", invalid="ignore"):
        for start, chunk in iter_chunks(ds):
            bad = ~np.isfinite(chunk.astype(store))
            if bad.any():
                t, d = np.argwhere(bad)[0]
                value = f"{chunk[t, d]!r}" + (" overflows it" if np.isfinite(chunk[t, d]) else "")
                raise ValueError(f"'{label}' has a non-finite {np.dtype(store).name} value "
                                 f"({value}) at step {start + t}, dim {d}")
    return int(ds.shape[1])


def check_image(ds: h5py.Dataset, label: str, steps: int) -> tuple[int, int]:
    """Check uint8 [T, H, W, 3] frames; return (H, W)."""
    if ds.dtype != np.uint8:
        raise ValueError(f"'{label}' has dtype {ds.dtype}; images must be uint8 [T, H, W, 3] "
                         "(convert them to 0..255 uint8 first)")
    if ds.ndim != 4 or ds.shape[0] != steps or ds.shape[-1] != 3 or min(ds.shape[1:3]) < 1:
        raise ValueError(f"'{label}' has shape {ds.shape}, expected [{steps}, H, W, 3]")
    return int(ds.shape[1]), int(ds.shape[2])


def _check_low_dim(obs: h5py.Group, steps: int, env_name: str) -> bool:
    """Check the obs the vectors come from (if all are there); True if they are."""
    if not any(k in obs for k in OBJECT_KEYS) or not all(k in obs for k in REQUIRED_KEYS):
        return False
    first = {}
    for key in (k for k in VECTOR_KEYS if k in obs):
        check_numeric(_dataset(obs, key, f"obs/{key}"), f"obs/{key}", steps)
        first[key] = obs[key][:1]
    try:
        extract_vectors(first, env_name)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"low-dim obs do not fit {env_name}: {exc}") from None
    return True


def check_model_file(demo: h5py.Group) -> None:
    """The ``model_file`` attribute must be a non-empty, well-formed MuJoCo xml string."""
    if "model_file" not in demo.attrs:
        raise ValueError("no 'model_file' attribute (the MuJoCo xml that resets and renders its states)")
    xml = demo.attrs["model_file"]
    if isinstance(xml, bytes):
        xml = xml.decode("utf-8", errors="replace")
    if not isinstance(xml, str) or not xml.strip():
        raise ValueError(f"attribute 'model_file' is {type(xml).__name__} {str(xml)[:40]!r}, not an xml string")
    error = xml_parse_error(xml)
    if error is not None:
        raise ValueError(f"attribute 'model_file' is not valid XML ({error})")


def check_demo(demo: h5py.Group, env_name: str) -> DemoFacts:
    """Check one demo; raise a one-line ValueError naming the key, or return its facts."""
    actions = _dataset(demo, "actions", "actions")
    action_dim = check_numeric(actions, "actions", None)
    steps = actions.shape[0]
    if steps == 0:
        raise ValueError(f"'actions' is empty (shape {actions.shape})")
    state_dim = check_numeric(_dataset(demo, "states", "states"), "states", steps, store=np.float64)
    facts = DemoFacts(length=int(steps), action_dim=action_dim, state_dim=state_dim)
    if "obs" in demo:
        obs = demo["obs"]
        if not isinstance(obs, h5py.Group):
            raise ValueError("'obs' is a dataset, not a group of observations")
        for key in (k for k in obs.keys() if k.endswith(IMAGE_SUFFIX)):
            cam = key[: -len(IMAGE_SUFFIX)]
            facts.image_shapes[cam] = check_image(_dataset(obs, key, f"obs/{key}"), f"obs/{key}", steps)
        facts.low_dim = _check_low_dim(obs, steps, env_name)
    check_model_file(demo)
    return facts
