"""How many evaluations a planning job runs together (``batch_size``), so memory does not grow with n_evals.

A job's peak resident memory is about

    resident before the envs (torch, the model, the dataset tensors)
    + RENDER_SETUP_BYTES                       the first renderer's one-off cost (GL / MuJoCo libraries)
    + batch x (ENV_BYTES + one episode's frames)
    + rollout workspace                        min(batch x num_samples, chunk_size) latent rollouts in flight

``ENV_BYTES`` dominates: one rendering robosuite env holds about 380 MiB resident (measured for Lift at
84 px on CPU with MuJoCo EGL; 12 envs: 5.4 GB), so 20 evaluations planned in one batch needed 8.5 GB.
``batch_size: auto`` plans at most ``AUTO_MAX_BATCH`` (8) evaluations together, fewer when the estimate
does not fit in ``HEADROOM`` of the available memory (the smaller of the system's available memory and
the cgroup's limit, e.g. a Slurm allocation). An explicit ``batch_size`` whose estimate does not fit is
refused (``ValueError``, one line naming the largest batch that fits).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

MiB, GiB = 2 ** 20, 2 ** 30
ENV_BYTES = 400 * MiB  # one rendering robosuite env (measured 370-390 MiB resident, Lift, 84 px camera)
RENDER_SETUP_BYTES = 1 * GiB  # the first env's one-off cost (measured ~960 MiB)
AUTO_MAX_BATCH = 8  # batch_size: auto never plans more evaluations together (3.2 GB of envs)
HEADROOM = 0.8  # plan within this share of the available memory
ACTIVATION_FACTOR = 32  # float32 values per predictor token x channel live in a no-grad forward (see rollout_bytes)


def _cgroup_free() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2 or v1), or None without a limit."""
    for limit_f, usage_f in (("memory.max", "memory.current"), ("memory/memory.limit_in_bytes",
                                                                 "memory/memory.usage_in_bytes")):
        try:
            limit = Path("/sys/fs/cgroup", limit_f).read_text().strip()
            usage = int(Path("/sys/fs/cgroup", usage_f).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2 ** 60:
            return max(0, int(limit) - usage)
    return None


def available_bytes() -> int:
    """Memory this job may still use: the system's available memory, capped by the cgroup's limit."""
    import psutil

    free = int(psutil.virtual_memory().available)
    cg = _cgroup_free()
    return free if cg is None else min(free, cg)


def resident_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def rollout_bytes(model, horizon: int) -> int:
    """Estimated bytes of one latent rollout in flight (``planning.planners.rollout.evaluate_candidates``).

    The predicted frames [T0 + horizon + 1, P, projected_dim] are kept until the rollout ends; a
    predictor forward over ``num_hist`` frames holds at most ``ACTIVATION_FACTOR`` float32 values per
    token and channel (residual stream, q/k/v, attention output, MLP hidden). Measured on CPU at
    horizon 8 (peak RSS growth / rollouts): 0.15 MiB (56 px, 16 patches), 1.6 MiB (196 px, 196
    patches, num_hist 1), 4.9 MiB (196 px, num_hist 3); this estimate gives 0.2, 2.4 and 6.3 MiB.
    0 for models without these attributes.
    """
    try:
        p, d = int(model.encoder.num_patches), int(model.projected_dim)
        hist, width = int(model.num_hist), int(model.predictor.in_dim)
    except (AttributeError, TypeError, ValueError):
        return 0
    return 4 * ((hist + horizon + 1) * p * d + ACTIVATION_FACTOR * hist * p * width)


def estimator(resident: int, episode_bytes: int, rollout: int, num_samples: int, chunk_size: int,
              ) -> Callable[[int], int]:
    """``estimate(batch)`` -> peak bytes of a job planning ``batch`` evaluations together.

    Args:
        resident: bytes resident now (model loaded, no env built yet).
        episode_bytes: bytes of one episode's recorded frames (and video panels).
        rollout: ``rollout_bytes(model, horizon)``; 0 for planners that do not use the model.
        num_samples / chunk_size: candidate sequences per episode, rollouts per forward.
    """
    def estimate(batch: int) -> int:
        in_flight = min(batch * max(1, num_samples), max(1, chunk_size)) if rollout else 0
        return resident + RENDER_SETUP_BYTES + batch * (ENV_BYTES + episode_bytes) + in_flight * rollout

    return estimate


def _gb(x: float) -> str:
    return f"{x / GiB:.1f} GB"


def choose_batch_size(requested, n_evals: int, estimate: Callable[[int], int], available: int) -> int:
    """Evaluations to plan together.

    Args:
        requested: ``"auto"`` / None, or a positive int (from ``cfg.batch_size``).
        n_evals: evaluations of this job (shard).
        estimate: ``estimator(...)``.
        available: ``available_bytes()``.
    Raises:
        ValueError: a bad ``requested``, or an explicit batch whose estimate exceeds ``HEADROOM`` of
            ``available`` (one line that says what fits).
    """
    n = max(1, int(n_evals))
    budget = HEADROOM * available
    fits = max((b for b in range(1, n + 1) if estimate(b) <= budget), default=0)
    if requested is None or str(requested) == "auto":
        if fits == 0:
            log.warning("one evaluation needs about %s but only %s is available: planning one at a time anyway",
                        _gb(estimate(1)), _gb(available))
        return min(n, AUTO_MAX_BATCH, max(1, fits))
    try:
        want = int(requested)
    except (TypeError, ValueError):
        want = 0
    if want < 1 or str(requested) != str(want):
        raise ValueError(f"batch_size must be 'auto' or a positive integer, got {requested!r}")
    want = min(want, n)
    if estimate(want) > budget:
        what = f"batch_size={fits} fits" if fits else "not even batch_size=1 fits"
        raise ValueError(f"batch_size={requested} needs about {_gb(estimate(want))} ({_gb(ENV_BYTES)} per env) but "
                         f"{_gb(available)} is available: {what} (or leave batch_size=auto)")
    return want
