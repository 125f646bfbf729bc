"""The gripper as a discrete choice: open / close schedules with at most a few switches, searched by CEM as a
categorical distribution beside the Gaussian over the arm's motion.

Demonstrations open and close the gripper once or twice per task (Lift: close once; Can: close, then open over
the bin). A Gaussian over the gripper command, snapped to open / close per step, spends most samples on
schedules that flicker or close at a time no elite agrees on, and the elite mean of several grasp times grasps at
none. Here each candidate's gripper follows one schedule: the current command until step ``k1``, the other one
from ``k1`` until ``k2``, the current one again from ``k2`` (``0 <= k1 <= k2 <= h``; ``k1 = h``: no switch). CEM
keeps a categorical distribution over the schedules, refitted to the elites' like the Gaussian.

Shapes: B episodes, N samples, h planning steps, C schedules.
"""

from __future__ import annotations

import torch


def schedule_table(h: int, switches: int, device=None) -> torch.Tensor:
    """bool [C, h]: True where schedule c has the gripper flipped from its current command. ``switches`` 1: the
    h + 1 schedules with one switch at k (k = h: none); 2: every (k1, k2) pair, (h + 1)(h + 2) / 2 of them."""
    if switches not in (1, 2):
        raise ValueError(f"planner.gripper_switches must be 0, 1 or 2, got {switches}")
    t = torch.arange(h, device=device)
    pairs = [(k1, h) for k1 in range(h + 1)] if switches == 1 else \
        [(k1, k2) for k1 in range(h + 1) for k2 in range(k1, h + 1) if k2 > k1 or k1 == h]
    k = torch.tensor(pairs, device=device)  # [C, 2]
    return (t >= k[:, :1]) & (t < k[:, 1:])


def sample(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Schedule indices [B, N] drawn from ``probs`` [B, C] by inverting the CDF at uniforms ``u`` [B, N] (no random
    numbers drawn here: the caller draws ``u`` from each episode's generator)."""
    cdf = probs.cumsum(-1)
    return torch.searchsorted(cdf / cdf[:, -1:], u.contiguous(), right=True).clamp_max(probs.shape[-1] - 1)


def refit(probs: torch.Tensor, elite_idx: torch.Tensor, smoothing: float, floor: float) -> torch.Tensor:
    """``probs`` [B, C] moved to the elites' schedule frequencies (``elite_idx`` [B, k]): (1 - smoothing) x the
    frequencies + smoothing x the old, every schedule kept above ``floor`` / C so none is ruled out."""
    counts = torch.zeros_like(probs).scatter_add_(1, elite_idx, torch.ones_like(elite_idx, dtype=probs.dtype))
    new = (1 - smoothing) * counts / elite_idx.shape[1] + smoothing * probs
    new = new + floor / probs.shape[1]
    return new / new.sum(-1, keepdim=True)


def index_of(flipped: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """The schedule index [B] of each row of ``flipped`` [B, h] in ``table`` [C, h], -1 where none matches."""
    match = (flipped[:, None, :] == table[None]).all(-1)  # [B, C]
    return torch.where(match.any(-1), match.float().argmax(-1), torch.full_like(match[:, 0], -1, dtype=torch.long))


def initial_probs(table: torch.Tensor, warm: torch.Tensor | None, weight: float = 0.5) -> torch.Tensor:
    """[B, C] starting distribution: uniform, with ``weight`` of the mass on the warm-start schedule ``warm`` [B]
    (the previous plan's, shifted; -1: none)."""
    b = 1 if warm is None else warm.shape[0]
    probs = torch.full((b, table.shape[0]), 1.0 / table.shape[0], device=table.device)
    if warm is not None:
        hit = warm >= 0
        onehot = torch.zeros_like(probs).scatter_(1, warm.clamp_min(0)[:, None], 1.0)
        probs = torch.where(hit[:, None], (1 - weight) * probs + weight * onehot, probs)
    return probs
