"""Waypoint policy under the OSC_POSE delta controller; each task's phases are in its registry entry.

The policy reads the object and end-effector positions from the dataset-format observation
(``tasks.state_layout.object_position`` / ``eef_position``) and moves through the task's phases
(``tasks/builtin.py``): e.g. above the object, down to it, close the gripper, lift (Can: carry over
the target bin, lower, open).
Orientation actions are zero (the gripper keeps pointing down). A little seeded action noise
makes episodes differ beyond robosuite's own placement randomisation.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tasks.registry import get_task, known_tasks
from tasks.state_layout import POSITION_ACTION, eef_position, object_position
from tasks.task import OPEN, Phase

POS_SCALE = 0.05  # metres per unit of OSC position action (controller output_max)


def _phases(task: str) -> list[Phase]:
    """Fresh copies of the task's phases (a perturbation edits them)."""
    spec = get_task(task)
    if not spec.has_policy:
        raise ValueError(f"task {task!r} has no scripted policy (tasks with one: "
                         f"{', '.join(n for n in known_tasks() if get_task(n).has_policy)})")
    return [replace(p, offset=np.array(p.offset, dtype=np.float64)) for p in spec.scripted_phases]


# Deliberate mistakes for exploration episodes: a world model trained only on perfect demonstrations
# never sees a grasp fail, so a planner can exploit it (close the gripper in the air and "lift").
PERTURBATIONS = ("high_grasp", "lateral_miss", "drop")


def perturbed_phases(task: str, kind: str, rng: np.random.Generator) -> list[Phase]:
    """The task's phases with one mistake: ``high_grasp`` closes 3-7 cm above the object,
    ``lateral_miss`` descends 2.5-5 cm beside it, ``drop`` opens the gripper right after lifting."""
    phases = _phases(task)
    names = [p.name for p in phases]
    if kind == "high_grasp":
        phases[names.index("descend")].offset = phases[names.index("descend")].offset + [0, 0, rng.uniform(0.03, 0.07)]
    elif kind == "lateral_miss":
        angle = rng.uniform(0, 2 * np.pi)
        shift = rng.uniform(0.025, 0.05) * np.array([np.cos(angle), np.sin(angle), 0.0])
        for name in ("above", "descend"):
            phases[names.index(name)].offset = phases[names.index(name)].offset + shift
    elif kind == "drop":
        i = names.index("lift")
        phases = phases[: i + 1] + [Phase("drop", np.zeros(3), OPEN, 0.0, 15, "hold")]
    else:
        raise ValueError(f"unknown perturbation {kind!r} (known: {', '.join(PERTURBATIONS)})")
    return phases


class ScriptedPolicy:
    """Phase-machine policy; call :meth:`reset` at each episode start, then ``policy(obs)``.

    Args:
        task: registered task name with a scripted policy ("lift", "can").
        goal_pos: [3] target point of the phases anchored at "goal" (Can: the centre of the can's
            bin; the demo generator sets it per episode from the task's ``policy_goal``).
        noise: std of Gaussian noise added to the position actions.
        rng: numpy Generator for the noise.
    """

    def __init__(self, task: str, goal_pos: np.ndarray | None = None, noise: float = 0.05,
                 rng: np.random.Generator | None = None, gain: float = 1.5):
        self.task = task
        self.phases = _phases(task)
        if goal_pos is None and any(p.anchor == "goal" for p in self.phases):
            raise ValueError(f"the {task} policy needs goal_pos (its phases move relative to a goal point)")
        self.goal_pos = None if goal_pos is None else np.asarray(goal_pos, dtype=np.float64)
        self.noise = noise
        self.gain = gain
        self.rng = rng or np.random.default_rng(0)
        self.reset()

    def reset(self, perturbation: str | None = None) -> None:
        """Start an episode; ``perturbation`` (one of ``PERTURBATIONS``) makes it an exploration episode."""
        self.perturbation = perturbation
        self.phases = _phases(self.task) if perturbation is None else perturbed_phases(self.task, perturbation, self.rng)
        self.index = 0
        self.count = 0
        self.grasp_pos: np.ndarray | None = None
        self.hold_pos: np.ndarray | None = None

    @property
    def done(self) -> bool:
        """True once the last phase has finished."""
        return self.index >= len(self.phases)

    def _target(self, phase: Phase, obj: np.ndarray, eef: np.ndarray) -> np.ndarray:
        if phase.anchor == "object":
            return obj + phase.offset
        if phase.anchor == "grasp":
            return self.grasp_pos + phase.offset
        if phase.anchor == "goal":
            return self.goal_pos + phase.offset
        if self.hold_pos is None:
            self.hold_pos = eef.copy()
        return self.hold_pos

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """OSC_POSE action [dx, dy, dz, dax, day, daz, gripper] in [-1, 1] for observation ``obs``."""
        obj = object_position(obs["state"]).astype(np.float64)
        eef = eef_position(obs["proprio"]).astype(np.float64)
        phase = self.phases[min(self.index, len(self.phases) - 1)]
        target = self._target(phase, obj, eef)
        err = target - eef
        self.count += 1
        reached = phase.tol > 0 and np.linalg.norm(err) < phase.tol
        if not self.done and (reached or self.count >= phase.steps):
            if phase.name == "grasp":
                self.grasp_pos = obj.copy()
            self.index += 1
            self.count = 0
            self.hold_pos = None
        action = np.zeros(get_task(self.task).action_dim)
        action[POSITION_ACTION] = np.clip(self.gain * err / POS_SCALE + self.rng.normal(0, self.noise, 3), -1, 1)
        action[-1] = phase.gripper
        return action
