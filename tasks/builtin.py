"""The built-in tasks: Lift, PickPlaceCan (``can``) and NutAssemblySquare (``square``, no scripted policy).

Adding a task is one :class:`~tasks.task.Task` entry here (and in ``BUILTIN_TASKS``) plus ``conf/task/<name>.yaml``
(see the README's "Extending" section).
"""

from __future__ import annotations

import numpy as np

from tasks.task import CLOSE, OPEN, MPCRecipe, Phase, Task

_Z = np.zeros(3)

# robosuite 1.5's object-state lists the relative parts (to the eef) before the object pose
_RELATIVE_FIRST = (7, 8, 9, 10, 11, 12, 13, 0, 1, 2, 3, 4, 5, 6)

LIFT = Task(
    name="lift", env_name="Lift",
    object_parts=(("cube_pos", 3), ("cube_quat", 4), ("gripper_to_cube_pos", 3)),
    max_steps=200, hold_steps=15, download_name="lift",
    scripted_phases=(
        Phase("above", np.array([0, 0, 0.08]), OPEN, 0.01, 60, "object"),
        Phase("descend", np.array([0, 0, -0.005]), OPEN, 0.006, 40, "object"),
        Phase("grasp", _Z, CLOSE, 0.0, 8, "hold"),
        Phase("lift", np.array([0, 0, 0.15]), CLOSE, 0.01, 80, "grasp"),
    ),
    # round 16 (docs/experiments.md): the first plan open loop, re-plans before the last 3 steps with an
    # end-effector cost read by the rollout readout (fresh Lift, whole task: 0.84 / 0.68 against open loop's 0.88 / 0.20)
    mpc=MPCRecipe(replan_last=3, later_objective=(("state_weight", 0.1), ("state_tolerance", 0.01),
                                                  ("state_position", "eef"), ("state_readout", "rollout"))),
)

CAN = Task(
    name="can", env_name="PickPlaceCan",
    object_parts=(("Can_pos", 3), ("Can_quat", 4), ("Can_to_robot0_eef_pos", 3), ("Can_to_robot0_eef_quat", 4)),
    robosuite15_order=_RELATIVE_FIRST, max_steps=500, hold_steps=10, download_name="can",
    scripted_phases=(
        Phase("above", np.array([0, 0, 0.10]), OPEN, 0.01, 80, "object"),
        Phase("descend", np.array([0, 0, 0.0]), OPEN, 0.008, 60, "object"),
        Phase("grasp", _Z, CLOSE, 0.0, 10, "hold"),
        Phase("lift", np.array([0, 0, 0.22]), CLOSE, 0.02, 80, "grasp"),
        Phase("carry", np.array([0, 0, 0.18]), CLOSE, 0.02, 150, "goal"),
        Phase("lower", np.array([0, 0, 0.10]), CLOSE, 0.02, 60, "goal"),
        Phase("release", _Z, OPEN, 0.0, 15, "hold"),
        Phase("retreat", np.array([0, 0, 0.25]), OPEN, 0.02, 60, "goal"),
    ),
    policy_goal=lambda env: env.target_bin_placements[env.object_id],  # the centre of the can's bin
)

SQUARE = Task(
    name="square", env_name="NutAssemblySquare",
    object_parts=(("SquareNut_pos", 3), ("SquareNut_quat", 4), ("SquareNut_to_robot0_eef_pos", 3),
                  ("SquareNut_to_robot0_eef_quat", 4)),
    robosuite15_order=_RELATIVE_FIRST, max_steps=500, hold_steps=10, download_name="square",
)

BUILTIN_TASKS = (LIFT, CAN, SQUARE)  # in this order in all_tasks() (the downloader's task list)
