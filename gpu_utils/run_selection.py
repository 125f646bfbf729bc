"""GPU selection for one run: query devices, respect CUDA_VISIBLE_DEVICES, rank, apply, log one line.

Typical use, first thing in a training/planning entry point, before anything touches CUDA::

    from gpu_utils import select_gpus_for_run
    cuda_ids = select_gpus_for_run(num_gpus=1, min_free_memory_gb=10)
    device = torch.device(f"cuda:{cuda_ids[0]}") if cuda_ids else torch.device("cpu")
"""

from __future__ import annotations

import logging
import os

from gpu_utils.apply import apply_selection, cuda_initialized
from gpu_utils.devices import DeviceQuery, GpuSnapshot, query_devices
from gpu_utils.selection import (
    DEFAULT_MEMORY_WEIGHT,
    DEFAULT_UTIL_WEIGHT,
    check_weights,
    score_device,
    select_devices,
)
from gpu_utils.visible import candidate_devices, parse_visible_devices

logger = logging.getLogger(__name__)

MIG_NOTE = " (a process sees one MIG instance at most, and no other GPU beside it)"


class GpuSelectionError(RuntimeError):
    """GPUs exist but none satisfies the request (e.g. none has ``min_free_memory_gb`` free)."""


def visible_devices(query: DeviceQuery, cuda_visible_devices: str | None) -> list[GpuSnapshot]:
    """The queried devices a selection may choose from: every one with ``CUDA_VISIBLE_DEVICES`` unset, else
    those a process with that value sees, in its ordinal order (see :func:`gpu_utils.visible.candidate_devices`)."""
    return candidate_devices(cuda_visible_devices, query.devices) if query.has_gpu else []


def launched_by_distributed_launcher(environ=None) -> bool:
    """True inside a process started by ``accelerate launch`` / ``torchrun`` (``LOCAL_RANK`` set).

    Each rank must not pick GPUs on its own (they would disagree or collide): choose before
    launching, e.g. ``CUDA_VISIBLE_DEVICES=$(./select_best_gpus.py multi -n 2 -q) accelerate launch ...``.
    """
    env = os.environ if environ is None else environ
    return "LOCAL_RANK" in env


def warn_if_index_order_ambiguous(preset: str | None, view: list[GpuSnapshot], environ=None) -> None:
    """Warn when an index-based preset was given without ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` on mixed GPUs.

    CUDA's default order (FASTEST_FIRST) then differs from nvidia-smi's; we read the indices in
    nvidia-smi (PCI bus) order, which is what Slurm and users mean almost always.
    """
    env = os.environ if environ is None else environ
    if (preset and any(e.strip().isdigit() for e in preset.split(","))
            and env.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID" and len({d.name for d in view}) > 1):
        logger.warning("CUDA_VISIBLE_DEVICES=%r uses indices without CUDA_DEVICE_ORDER=PCI_BUS_ID on "
                       "mixed GPU models: reading them as nvidia-smi (PCI bus) indices", preset)


def describe_device(device: GpuSnapshot, memory_weight: float = DEFAULT_MEMORY_WEIGHT,
                    util_weight: float = DEFAULT_UTIL_WEIGHT) -> str:
    """``GPU 5 (NVIDIA H100, mem 3.1%, util 0%, score 2.2)``."""
    util = "n/a" if device.utilization is None else f"{device.utilization:.0f}%"
    return (f"{device.label} ({device.name}, mem {device.memory_percent:.1f}%, util {util}, "
            f"score {score_device(device, memory_weight, util_weight):.1f})")


def _choose(view: list, num_gpus: int, memory_weight: float, util_weight: float, min_free_memory_gb: float) -> list:
    """The best-scoring ``num_gpus`` of ``view`` with ``min_free_memory_gb`` free (fewer, with a warning, when
    fewer fit); GpuSelectionError when none does."""
    chosen = select_devices(view, num_gpus, memory_weight, util_weight, min_free_memory_gb)
    if not chosen:
        raise GpuSelectionError(
            f"none of the {len(view)} visible GPU(s) has {min_free_memory_gb:g} GiB free: "
            + "; ".join(f"{d.label} {d.memory_free_mb / 1024:.1f} GiB free" for d in view))
    if 0 < num_gpus and len(chosen) < num_gpus:
        logger.warning("asked for %d GPU(s), only %d visible GPU(s) fit%s: using %d", num_gpus, len(chosen),
                       MIG_NOTE if any(d.is_mig for d in view) else "", len(chosen))
    return chosen


def select_gpus_for_run(num_gpus: int = 1, min_free_memory_gb: float = 0.0, auto_select: bool = True,
                        memory_weight: float = DEFAULT_MEMORY_WEIGHT,
                        util_weight: float = DEFAULT_UTIL_WEIGHT) -> list[int]:
    """Choose GPUs for this process and return the in-process CUDA ordinals to use.

    Args:
        num_gpus: how many GPUs to use; ``<= 0`` means every visible GPU that fits.
        min_free_memory_gb: leave out GPUs with less free memory than this (GiB).
        auto_select: False -> change nothing, return the ordinals already visible. The same
            happens under ``accelerate launch``/``torchrun`` (``LOCAL_RANK`` set): ranks must not
            choose on their own, select before launching.
        memory_weight, util_weight: score = memory% x memory_weight + util% x util_weight.

    Returns:
        ``[0..n-1]`` after ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` and ``CUDA_VISIBLE_DEVICES`` have been
        set to the chosen physical ids (MIG UUIDs for MIG) and ``MUJOCO_EGL_DEVICE_ID`` to the first
        chosen GPU; if CUDA was already initialised, the chosen devices' ordinals in the current
        view (with a warning). ``[]`` with no NVIDIA driver/GPU (one log line: running on CPU).

    Raises:
        ValueError: bad weights or a negative ``min_free_memory_gb`` (on every machine).
        GpuSelectionError: GPUs are visible but none has ``min_free_memory_gb`` free.
    """
    check_weights(memory_weight, util_weight)
    if not 0 <= min_free_memory_gb < float("inf"):
        raise ValueError(f"min_free_memory_gb must be a finite number >= 0, got {min_free_memory_gb}")
    query = query_devices()
    if not query.has_gpu:
        logger.info("no NVIDIA driver/GPU found: running on CPU (%s)", query.reason)
        return []
    preset = os.environ.get("CUDA_VISIBLE_DEVICES")
    # what this process's CUDA shows when nothing may change it (selection off, a launcher's rank, CUDA already
    # initialised); otherwise every device the selection may point it at
    fixed = not auto_select or launched_by_distributed_launcher() or cuda_initialized()
    view = parse_visible_devices(preset, query.devices) if fixed else visible_devices(query, preset)
    if not view:
        logger.info("CUDA_VISIBLE_DEVICES=%r leaves no GPU visible: running on CPU", preset)
        return []
    warn_if_index_order_ambiguous(preset, view)
    if not auto_select:
        logger.info("GPU auto-selection off: using the %d visible GPU(s) as cuda:0..%d "
                    "(CUDA_VISIBLE_DEVICES=%r)", len(view), len(view) - 1, preset)
        return list(range(len(view)))
    if launched_by_distributed_launcher():
        logger.info("started by a distributed launcher (LOCAL_RANK=%s): keeping CUDA_VISIBLE_DEVICES=%r "
                    "and its %d GPU(s); choose GPUs before launching", os.environ["LOCAL_RANK"], preset,
                    len(view))
        return list(range(len(view)))
    chosen = _choose(view, num_gpus, memory_weight, util_weight, min_free_memory_gb)
    ordinals = apply_selection(chosen, view)
    logger.info("GPU selection (%s, %d visible): chose %s -> cuda:%s [CUDA_VISIBLE_DEVICES=%s, "
                "MUJOCO_EGL_DEVICE_ID=%s]", query.backend, len(view),
                "; ".join(describe_device(d, memory_weight, util_weight) for d in chosen),
                ",".join(map(str, ordinals)), os.environ.get("CUDA_VISIBLE_DEVICES"),
                os.environ.get("MUJOCO_EGL_DEVICE_ID"))
    return ordinals
