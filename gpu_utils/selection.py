"""Scoring and ranking of device snapshots: pure functions, no NVML, no environment.

score = memory% x memory_weight + utilisation% x util_weight   (0..100 for weights summing to 1;
lower is better). Devices with less than ``min_free_memory_gb`` GiB free are left out. Ties are
broken by physical index, then MIG index, so the same snapshots always give the same choice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gpu_utils.devices import GpuSnapshot

DEFAULT_MEMORY_WEIGHT = 0.7
DEFAULT_UTIL_WEIGHT = 0.3
GIB_IN_MB = 1024.0


@dataclass(frozen=True)
class RankedDevice:
    """A snapshot with its score and whether it passes the free-memory filter."""

    device: GpuSnapshot
    score: float
    fits: bool


def check_weights(memory_weight: float, util_weight: float) -> None:
    """Raise ValueError for negative/non-finite weights or two zero weights."""
    for name, w in (("memory_weight", memory_weight), ("util_weight", util_weight)):
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {w}")
    if memory_weight == 0 and util_weight == 0:
        raise ValueError("memory_weight and util_weight cannot both be 0")


def score_device(device: GpuSnapshot, memory_weight: float = DEFAULT_MEMORY_WEIGHT,
                 util_weight: float = DEFAULT_UTIL_WEIGHT) -> float:
    """memory% x memory_weight + utilisation% x util_weight; lower is better.

    An unreported utilisation (MIG instances: NVML has no per-instance figure) counts as 0 %.
    """
    util = device.utilization if device.utilization is not None else 0.0
    return device.memory_percent * memory_weight + util * util_weight


def fits_free_memory(device: GpuSnapshot, min_free_memory_gb: float) -> bool:
    """True when the device has at least ``min_free_memory_gb`` GiB of free memory."""
    return device.memory_free_mb >= min_free_memory_gb * GIB_IN_MB


def rank_devices(devices: Sequence[GpuSnapshot], memory_weight: float = DEFAULT_MEMORY_WEIGHT,
                 util_weight: float = DEFAULT_UTIL_WEIGHT, min_free_memory_gb: float = 0.0,
                 ) -> list[RankedDevice]:
    """All devices, best first: those that fit the free-memory filter, then those that do not.

    Within each group: ascending score, then physical index, then MIG index (deterministic ties).
    Scores are rounded to 1e-9 before comparing so float noise cannot reorder equal devices.
    """
    check_weights(memory_weight, util_weight)
    if not math.isfinite(min_free_memory_gb) or min_free_memory_gb < 0:
        raise ValueError(f"min_free_memory_gb must be a finite number >= 0, got {min_free_memory_gb}")
    ranked = [RankedDevice(d, score_device(d, memory_weight, util_weight),
                           fits_free_memory(d, min_free_memory_gb)) for d in devices]
    return sorted(ranked, key=lambda r: (not r.fits, round(r.score, 9), r.device.index,
                                         -1 if r.device.mig_index is None else r.device.mig_index))


def select_devices(devices: Sequence[GpuSnapshot], num_gpus: int = 1,
                   memory_weight: float = DEFAULT_MEMORY_WEIGHT, util_weight: float = DEFAULT_UTIL_WEIGHT,
                   min_free_memory_gb: float = 0.0) -> list[GpuSnapshot]:
    """The best ``num_gpus`` devices that fit (``num_gpus <= 0``: all that fit), best first.

    A process sees one MIG instance at most, and nothing beside it (CUDA's rule): one GPU asked for is the
    best device, MIG instance or not; several are full GPUs only, or the best MIG instance alone when no
    full GPU fits. Returns fewer than ``num_gpus`` (possibly none) when fewer fit; the caller decides what
    that means.
    """
    fitting = [r.device for r in rank_devices(devices, memory_weight, util_weight, min_free_memory_gb)
               if r.fits]
    full = [d for d in fitting if not d.is_mig]
    if fitting and fitting[0].is_mig and (num_gpus == 1 or not full):
        return fitting[:1]
    return full if num_gpus <= 0 else full[:num_gpus]
