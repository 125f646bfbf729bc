"""Which (episode, start frame, goal frame) pairs an evaluation plans, and how shards split them.

Frame indices are env steps; one planning step is ``frameskip`` env steps, so the goal frame is
``goal = start + goal_H * frameskip``. Two ways to place the start:

* ``start_mode="end"`` (default): the goal is the episode's last frame (or, when an episode has to be
  reused because there are fewer episodes than ``n_evals``, a seeded one of the last
  ``goal_window`` frames). The demonstrations end once the task is solved, so the goal frame is a
  task-success frame and the task's own success check at the end of execution measures goal reaching.
  The evaluator verifies this per episode (``goal_is_success`` in logs.json).
* ``start_mode="random"``: a seeded uniform start among the frames that leave room for the goal;
  the goal may then be any intermediate state, so goal reaching is judged by the state distance.

Every choice comes from one ``numpy`` generator seeded with ``seed`` over the *whole* list of
``n_evals`` evaluations, so a shard (``shard_index`` of ``shard_count``) plans exactly the
evaluations that a single job would plan at those positions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class EpisodeSpec:
    """One evaluation: plan from dataset frame ``start`` of ``episode`` to its frame ``goal``."""

    eval_index: int  # position in the full list of n_evals (shard independent)
    episode: int  # dataset episode id
    start: int  # env-step index of the start frame
    goal: int  # env-step index of the goal frame
    seed: int  # seed of this evaluation's planner noise

    def to_dict(self) -> dict:
        return asdict(self)


def select_episodes(seq_lengths: list[int], candidates: list[int], n_evals: int, goal_h: int, frameskip: int,
                    seed: int, start_mode: str = "end", min_start: int = 0,
                    goal_window: int = 5) -> list[EpisodeSpec]:
    """Pick ``n_evals`` evaluations among ``candidates`` (episode ids), different episodes first.

    Args:
        seq_lengths: length of every dataset episode (indexed by episode id).
        candidates: allowed episode ids (the run's validation split).
        goal_h: goal distance in planning steps; ``goal_h * frameskip`` env steps.
        min_start: earliest allowed start frame (room for the model's history frames).
        goal_window: for ``start_mode="end"``, reused episodes take their goal among the last
            ``goal_window`` frames.
    Raises:
        ValueError: no candidate episode is long enough, or bad arguments.
    """
    if n_evals < 1:
        raise ValueError(f"n_evals must be >= 1, got {n_evals}")
    if goal_h < 1 or frameskip < 1:
        raise ValueError(f"goal_H and frameskip must be >= 1, got {goal_h}, {frameskip}")
    if start_mode not in ("end", "random"):
        raise ValueError(f"start_mode must be 'end' or 'random', got {start_mode!r}")
    span = goal_h * frameskip
    eligible = [int(e) for e in candidates if int(seq_lengths[int(e)]) - 1 - span >= min_start]
    if not eligible:
        longest = max((int(seq_lengths[int(e)]) for e in candidates), default=0)
        raise ValueError(f"no episode among {len(list(candidates))} candidates is long enough for goal_H={goal_h} "
                         f"(x frameskip {frameskip} = {span} env steps, start >= {min_start}); the longest has "
                         f"{longest} frames")
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(eligible))
    specs = []
    for i in range(n_evals):
        ep = int(order[i % len(order)])
        last = int(seq_lengths[ep]) - 1
        latest_start = last - span
        if start_mode == "end":
            reuse = i >= len(order)
            back = int(rng.integers(1, max(2, goal_window))) if reuse and goal_window > 1 else 0
            start = max(min_start, latest_start - back)
        else:
            start = int(rng.integers(min_start, latest_start + 1))
        specs.append(EpisodeSpec(eval_index=i, episode=ep, start=start, goal=start + span, seed=seed * 100003 + i))
    return specs


def shard(specs: list[EpisodeSpec], index: int, count: int) -> list[EpisodeSpec]:
    """The evaluations of shard ``index`` of ``count`` (round robin on ``eval_index``)."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"need 0 <= shard.index < shard.count, got index={index}, count={count}")
    return [s for s in specs if s.eval_index % count == index]
