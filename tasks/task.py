"""One task's entry: everything the code knows about a task, in one frozen dataclass (and its policy's phases).

A task is named by its short name (``lift``, ``can``): the ``--task`` of the demo generator and the
downloader, ``conf/task/<name>.yaml`` and the data folders ``data/<source>/<name>/``. Its entry says
which robosuite env it is, how that env's object vector is laid out, how wide its actions are,
how the scripted demo policy solves it (optional), how long a demo may run, where the robomimic hub
keeps its files, which camera to render, what counts as success and how MPC plans it by default
(``mpc.n_taken_actions: auto``, the settings measured best for the world model alone). The entries are in
``tasks/builtin.py``; ``tasks/registry.py`` looks them up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

OPEN, CLOSE = -1.0, 1.0  # gripper commands of the scripted policy's phases


@dataclass
class Phase:
    name: str
    offset: np.ndarray  # target relative to the anchor point [3]
    gripper: float
    tol: float  # position tolerance to move on (m); <= 0: hold for `steps`
    steps: int  # max steps (or hold steps)
    anchor: str  # "object" (live), "grasp" (object pos when the grasp closed), "goal"


OBJECT_POSE_DIM = 7  # every object vector starts with the object's position 3 and quaternion 4 (xyzw)


@dataclass(frozen=True)
class MPCRecipe:
    """How plan.py's MPC plans a task by default (``mpc.n_taken_actions: auto``): the setting measured best for the
    world model's own search on that task (``docs/experiments.md`` names the round that chose it).

    Args:
        replan_last: re-plan from the real frame before each of the last N planning steps only; the first plan's
            earlier steps run open loop (goal_H 9, N 3: the schedule ``[6, 1, 1, 1]``). 0: re-plan before every step.
        later_objective: ``mpc.later_objective`` settings (``(key, value)`` pairs) for every re-plan after the
            first, e.g. a state cost that acts only once the first plan has run; empty: the objective throughout.
    """

    replan_last: int = 0
    later_objective: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.replan_last < 0:
            raise ValueError(f"MPCRecipe.replan_last must be >= 0, got {self.replan_last}")

    def schedule(self, goal_H: int) -> int | tuple[int, ...]:
        """``mpc.n_taken_actions`` for a goal ``goal_H`` planning steps away: 1 (every step) or a schedule adding up
        to ``goal_H``."""
        if self.replan_last == 0 or goal_H <= 1:
            return 1
        last = min(self.replan_last, goal_H)
        return (goal_H - last,) * (goal_H > last) + (1,) * last


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
        alignment_dim: the leading ``state`` dims training aligns with the latent by default (InfoNCE; the
            training config's ``alignment_dim: null``): the object pose, pos 3 + quat 4.
        mpc: how plan.py's MPC plans the task when ``mpc.n_taken_actions`` is ``auto`` (its default).
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
    alignment_dim: int = OBJECT_POSE_DIM
    mpc: MPCRecipe = MPCRecipe()

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
        if not 1 <= self.alignment_dim <= self.object_dim:
            raise ValueError(f"task {self.name!r}: alignment_dim must be in 1..{self.object_dim} (its object vector)")

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
