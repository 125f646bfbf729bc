"""The MPC budget of a planning job, validated in one place.

``goal_H`` planning steps to the goal, ``n_taken_actions`` executed per re-plan, ``max_iter`` re-plans
(None: ``goal_H / n_taken_actions``, which must then divide evenly, so that the last re-plan does not
run past the goal time). A planner's ``horizon`` must cover the steps it executes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MPCBudget:
    """``max_iter * n_taken_actions`` planning steps; raises ValueError (one line) on a budget that
    does not add up."""

    goal_H: int
    n_taken_actions: int = 1
    max_iter: int | None = None
    horizon: int | None = None  # the planner's horizon (None: not checked)

    def __post_init__(self):
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

    @property
    def iterations(self) -> int:
        """Re-plans: ``max_iter``, or ``goal_H / n_taken_actions``."""
        return self.max_iter if self.max_iter is not None else self.goal_H // self.n_taken_actions

    @property
    def steps(self) -> int:
        """Planning steps executed in all."""
        return self.iterations * self.n_taken_actions
