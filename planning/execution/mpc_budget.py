"""The MPC budget of a planning job, validated in one place.

``goal_H`` planning steps to the goal, ``n_taken_actions`` executed per re-plan, ``max_iter`` re-plans
(None: ``goal_H / n_taken_actions``, which must then divide evenly, so that the last re-plan does not
run past the goal time). ``n_taken_actions`` may also be a schedule, the steps executed at each re-plan in
turn (e.g. ``(6, 1, 1, 1)``: the first plan's first 6 steps open loop, then a re-plan from the real frame
before each of the last 3); it must then add up to ``goal_H``. A planner's ``horizon`` must cover the steps
it executes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def taken_schedule(n_taken_actions: int | Sequence[int], max_iter: int) -> tuple[int, ...]:
    """The planning steps executed at each of ``max_iter`` re-plans: ``n_taken_actions`` every time (an int), or
    the schedule itself (a sequence, whose length must be ``max_iter``); ValueError (one line) otherwise."""
    if isinstance(n_taken_actions, Sequence):
        schedule = tuple(int(n) for n in n_taken_actions)
        if len(schedule) != max_iter:
            raise ValueError(f"mpc.n_taken_actions={list(schedule)} has {len(schedule)} re-plans, mpc.max_iter={max_iter}")
    else:
        schedule = (int(n_taken_actions),) * int(max_iter)
    if not schedule or min(schedule) < 1:
        raise ValueError(f"mpc.n_taken_actions and mpc.max_iter must be >= 1, got {n_taken_actions}, {max_iter}")
    return schedule


@dataclass(frozen=True)
class MPCBudget:
    """``max_iter * n_taken_actions`` planning steps (or the sum of a schedule); raises ValueError (one line)
    on a budget that does not add up."""

    goal_H: int
    n_taken_actions: int | tuple[int, ...] = 1
    max_iter: int | None = None
    horizon: int | None = None  # the planner's horizon (None: not checked)

    def __post_init__(self):
        if isinstance(self.n_taken_actions, Sequence):
            self._check_schedule(tuple(int(n) for n in self.n_taken_actions))
            return
        n = self.n_taken_actions
        if n < 1 or self.goal_H < 1:
            raise ValueError(f"goal_H and mpc.n_taken_actions must be >= 1, got {self.goal_H} and {n}")
        if self.max_iter is not None and self.max_iter < 1:
            raise ValueError(f"mpc.max_iter must be >= 1 (or null), got {self.max_iter}")
        if self.max_iter is None and self.goal_H % n:
            raise ValueError(f"goal_H={self.goal_H} is not a multiple of mpc.n_taken_actions={n}: the last "
                             "re-plan would run past the goal time (set mpc.max_iter explicitly to allow that)")
        if self.horizon is not None and self.horizon < n:
            raise ValueError(f"planner.horizon={self.horizon} is shorter than mpc.n_taken_actions={n}")

    def _check_schedule(self, schedule: tuple[int, ...]) -> None:
        shown = list(schedule)
        if not schedule or min(schedule) < 1 or self.goal_H < 1:
            raise ValueError(f"goal_H and every step of mpc.n_taken_actions must be >= 1, got {self.goal_H} and {shown}")
        if self.max_iter is not None and self.max_iter != len(schedule):
            raise ValueError(f"mpc.n_taken_actions={shown} is {len(schedule)} re-plans, mpc.max_iter={self.max_iter} "
                             "(leave max_iter null with a schedule)")
        if sum(schedule) != self.goal_H:
            raise ValueError(f"mpc.n_taken_actions={shown} adds up to {sum(schedule)} planning steps, not goal_H="
                             f"{self.goal_H}: a schedule must end at the goal time")
        if self.horizon is not None and self.horizon < max(schedule):
            raise ValueError(f"planner.horizon={self.horizon} is shorter than mpc.n_taken_actions={shown}")

    @property
    def iterations(self) -> int:
        """Re-plans: ``max_iter``, the schedule's length, or ``goal_H / n_taken_actions``."""
        if isinstance(self.n_taken_actions, Sequence):
            return len(self.n_taken_actions)
        return self.max_iter if self.max_iter is not None else self.goal_H // self.n_taken_actions

    @property
    def schedule(self) -> tuple[int, ...]:
        """Planning steps executed at each re-plan."""
        return taken_schedule(self.n_taken_actions, self.iterations)

    @property
    def steps(self) -> int:
        """Planning steps executed in all."""
        return sum(self.schedule)
