"""GPU selection shared by training, planning and ``select_best_gpus.py``.

Devices and ``CUDA_VISIBLE_DEVICES`` are read through nvitop; score = memory% x memory_weight +
utilisation% x util_weight (lower is better); respects an existing ``CUDA_VISIBLE_DEVICES``; no GPU -> CPU.
Importing this package never imports torch.
"""

from gpu_utils.apply import apply_selection, cuda_initialized, egl_device_id
from gpu_utils.devices import DeviceQuery, GpuSnapshot, query_devices
from gpu_utils.run_selection import GpuSelectionError, describe_device, select_gpus_for_run, visible_devices
from gpu_utils.selection import (
    DEFAULT_MEMORY_WEIGHT,
    DEFAULT_UTIL_WEIGHT,
    RankedDevice,
    rank_devices,
    score_device,
    select_devices,
)
from gpu_utils.visible import candidate_devices, ordinal_in_view, parse_visible_devices

__all__ = [
    "DEFAULT_MEMORY_WEIGHT",
    "DEFAULT_UTIL_WEIGHT",
    "DeviceQuery",
    "GpuSelectionError",
    "GpuSnapshot",
    "RankedDevice",
    "apply_selection",
    "candidate_devices",
    "cuda_initialized",
    "describe_device",
    "egl_device_id",
    "ordinal_in_view",
    "parse_visible_devices",
    "query_devices",
    "rank_devices",
    "score_device",
    "select_devices",
    "select_gpus_for_run",
    "visible_devices",
]
