"""The task registry: everything the code knows about one task, in one frozen dataclass.

A task is named by its short name (``lift``, ``can``): the ``--task`` of the demo generator and the
downloader, ``conf/task/<name>.yaml`` and the data folders ``data/<source>/<name>/``. Its entry says
which robosuite env it is, how that env's object vector is laid out, how wide its actions are,
how the scripted demo policy solves it (optional), how long a demo may run, where the robomimic hub
keeps its files, which camera to render and what counts as success. Nothing else in the code lists
tasks: :func:`get_task` / :func:`task_for_env` are the only ways in, :func:`register_task` adds one.

The built-in tasks are in ``tasks/builtin.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tasks.scripted_policy import Phase

OBJECT_POSE_DIM = 7  # every object vector starts with the object's position 3 and quaternion 4 (xyzw)


@dataclass(frozen=True)
class Task:
    """One task. Only ``name``, ``env_name`` and ``object_parts`` are required.

    Args:
        name: short name (lower case): CLI ``--task``, ``conf/task/<name>.yaml``, data folders.
        env_name: robosuite env name, as in a robomimic file's ``env_args["env_name"]``.
        object_parts: ``(obs key, size)`` of the object vector in canonical (robomimic dataset)
            order: the object position 3 and quaternion 4 first, then the relative parts.
        robosuite15_order: robosuite 1.5's own ``object-state`` order as indices into the canonical
            order, when it differs (None: the same).
        action_dim: width of an env action (7 = OSC_POSE position 3 + rotation 3 + gripper 1).
        max_steps: steps a scripted demo may take before it counts as a failure.
        hold_steps: steps a scripted demo keeps going after its first success (its goal region).
        download_name: folder of the task on the robomimic hub (``v1.5/<download_name>/<type>/``),
            None if the hub has none.
        default_camera: camera the demo generator renders first and the converter reads by default.
        scripted_phases: the scripted demo policy's phases (``tasks/scripted_policy.py``); empty: the
            task has no scripted policy (it can be converted and planned on, not generated).
        policy_goal: ``f(robosuite env) -> [3]`` target point of the phases anchored at ``"goal"``.
        success: ``f(robosuite env) -> bool``; None: robosuite's own ``env._check_success()``.
    """

    name: str
    env_name: str
    object_parts: tuple[tuple[str, int], ...]
    robosuite15_order: tuple[int, ...] | None = None
    action_dim: int = 7
    max_steps: int = 200
    hold_steps: int = 10
    download_name: str | None = None
    default_camera: str = "agentview"
    scripted_phases: tuple[Phase, ...] = ()
    policy_goal: Callable[[Any], np.ndarray] | None = None
    success: Callable[[Any], bool] | None = None

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.lower() or not self.name.isidentifier():
            raise ValueError(f"task name must be a lower-case identifier, got {self.name!r}")
        if self.object_dim < OBJECT_POSE_DIM:
            raise ValueError(f"task {self.name!r}: the object vector must start with pos 3 + quat 4, "
                             f"its parts {self.object_parts} have {self.object_dim} dims")
        if self.robosuite15_order is not None and sorted(self.robosuite15_order) != list(range(self.object_dim)):
            raise ValueError(f"task {self.name!r}: robosuite15_order must be a permutation of 0..{self.object_dim - 1}")
        if self.action_dim < 1 or self.max_steps < 1 or self.hold_steps < 0:
            raise ValueError(f"task {self.name!r}: action_dim and max_steps must be >= 1, hold_steps >= 0")

    @property
    def object_dim(self) -> int:
        """Size of the object vector (Lift 10, PickPlaceCan 14)."""
        return sum(size for _, size in self.object_parts)

    @property
    def has_policy(self) -> bool:
        """True if the demo generator can make demos of this task."""
        return bool(self.scripted_phases)

    def is_success(self, robosuite_env: Any) -> bool:
        """The task's success check on a raw robosuite env."""
        check = self.success or (lambda env: env._check_success())
        return bool(check(robosuite_env))


_TASKS: dict[str, Task] = {}


def register_task(task: Task, replace: bool = False) -> Task:
    """Add ``task`` to the registry (``replace=True`` overwrites an entry of the same name or env)."""
    clash = [t.name for t in _TASKS.values() if t.name == task.name or t.env_name == task.env_name]
    if clash and not replace:
        raise ValueError(f"task {task.name!r} ({task.env_name}) clashes with registered {clash[0]!r}; "
                         "pass replace=True to overwrite it")
    for name in clash:
        del _TASKS[name]
    _TASKS[task.name] = task
    return task


def unregister_task(name: str) -> None:
    """Remove a task (tests that register a task clean up with this)."""
    _TASKS.pop(name, None)


def known_tasks() -> list[str]:
    """Names of the registered tasks, sorted."""
    return sorted(_TASKS)


def all_tasks() -> list[Task]:
    """The registered tasks, in registration order (the built-ins first)."""
    return list(_TASKS.values())


def get_task(name: str) -> Task:
    """The task named ``name``; a one-line ValueError listing the known tasks if there is none."""
    try:
        return _TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(known_tasks())}); "
                         "add one with tasks.register_task") from None


def task_for_env(env_name: str) -> Task | None:
    """The task whose robosuite env is ``env_name``, or None (an unregistered env: generic layout)."""
    return next((t for t in _TASKS.values() if t.env_name == env_name), None)
