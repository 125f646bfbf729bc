"""The dataset's description of its low-dim vectors (``meta.json`` slices); the layout is the task's.

How ``state`` / ``proprio`` / ``velocity`` are built is defined once, with the tasks, in
``tasks/state_layout.py``; this module turns that
layout into the :class:`~datasets.meta.VectorSlice` lists a converted dataset records.
"""

from __future__ import annotations

from datasets.meta import VectorSlice
from tasks.state_layout import PROPRIO_PARTS, VELOCITY_PARTS, object_parts, part_bounds


def _slices(parts) -> list[VectorSlice]:
    return [VectorSlice(name=name, start=start, stop=stop) for name, start, stop in part_bounds(parts)]


def vector_slices(env_name: str, object_dim: int | None = None
                  ) -> tuple[list[VectorSlice], list[VectorSlice], list[VectorSlice]]:
    """``(state_slices, proprio_slices, velocity_slices)`` describing ``extract_vectors``' output.

    ``object_dim`` defaults to the registered task's object size (Lift 10, PickPlaceCan 14).
    """
    state = _slices((*object_parts(env_name, object_dim), *PROPRIO_PARTS))
    return state, _slices(PROPRIO_PARTS), _slices(VELOCITY_PARTS)
