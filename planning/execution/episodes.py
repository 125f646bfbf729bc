"""Which (episode, start frame, goal frame) pairs an evaluation plans, and how shards split them.

Frame indices are env steps; one planning step is ``frameskip`` env steps, so the goal frame is
``goal = start + goal_H * frameskip``. Two ways to place the start:

* ``start_mode="end"`` (default): the goal is the episode's *terminal* state ``goal = T`` (``T`` =
  seq_len), the state after the last recorded action. Demonstrations end at the first step whose
  result passes the task's check, so that terminal state is a task-success state while the last
  stored frame ``T - 1`` (the observation *before* the last action) is not. The evaluator renders the
  terminal state in the simulator (reset to frame ``T - 1`` and step its recorded action) and checks
  it (``goal_is_success`` in logs.json). So the task's own success at the end of execution measures
  reaching the goal. When there are fewer eligible episodes than ``n_evals``, episodes are reused
  with the same start / goal and a different planner seed.
* ``start_mode="random"``: a seeded uniform start among the frames that leave room for the goal
  (``goal <= T``); the goal may be any intermediate state, so goal reaching is judged by the state
  distance (``eval.success_metric=goal``).

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
    goal: int  # env-step index of the goal state (== seq_len: the terminal state after the last action)
    seed: int  # seed of this evaluation's planner noise

    def to_dict(self) -> dict:
        return asdict(self)


def select_episodes(seq_lengths: list[int], candidates: list[int], n_evals: int, goal_h: int, frameskip: int,
                    seed: int, start_mode: str = "end", min_start: int = 0) -> list[EpisodeSpec]:
    """Pick ``n_evals`` evaluations among ``candidates`` (episode ids), different episodes first.

    Args:
        seq_lengths: length of every dataset episode (indexed by episode id).
        candidates: allowed episode ids (the run's validation split).
        goal_h: goal distance in planning steps; ``goal_h * frameskip`` env steps.
        min_start: earliest allowed start frame (room for the model's history frames).
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
    eligible = [int(e) for e in candidates if int(seq_lengths[int(e)]) - span >= min_start]
    if not eligible:
        longest = max((int(seq_lengths[int(e)]) for e in candidates), default=0)
        raise ValueError(f"no episode among {len(list(candidates))} candidates is long enough for goal_H={goal_h} "
                         f"(x frameskip {frameskip} = {span} env steps, start >= {min_start}); the longest has "
                         f"{longest} steps")
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(eligible))
    specs = []
    for i in range(n_evals):
        ep = int(order[i % len(order)])
        latest_start = int(seq_lengths[ep]) - span  # goal <= T (the terminal state)
        start = latest_start if start_mode == "end" else int(rng.integers(min_start, latest_start + 1))
        specs.append(EpisodeSpec(eval_index=i, episode=ep, start=start, goal=start + span, seed=seed * 100003 + i))
    return specs


def shard(specs: list[EpisodeSpec], index: int, count: int) -> list[EpisodeSpec]:
    """The evaluations of shard ``index`` of ``count`` (round robin on ``eval_index``)."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"need 0 <= shard.index < shard.count, got index={index}, count={count}")
    return [s for s in specs if s.eval_index % count == index]
