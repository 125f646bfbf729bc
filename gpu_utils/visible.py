"""``CUDA_VISIBLE_DEVICES`` -> the devices a process sees, in its CUDA ordinal order, as nvitop reads it.

The two numberings:

* physical (NVML) index: the GPU's place in PCI bus order, what ``nvidia-smi`` shows;
* CUDA ordinal: ``cuda:k`` inside a process = the k-th device CUDA enumerates for that process's
  ``CUDA_VISIBLE_DEVICES`` (with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``).

Example: ``CUDA_VISIBLE_DEVICES=4,5``: physical GPU 5 is ``cuda:1`` in this process
(``ordinal_in_view``). After :func:`gpu_utils.apply.apply_selection` has narrowed the variable to
the chosen ``5``, a process started from then on sees it as ``cuda:0``.

The value is parsed by nvitop (``Device.parse_cuda_visible_devices``), which asks the CUDA driver itself
in a short subprocess and, where CUDA cannot answer, applies CUDA's rules: indices, full or abbreviated
GPU UUIDs, MIG UUIDs; enumeration stops at the first entry naming no device; a duplicate entry hides
every device; and a process sees at most one MIG instance (with a MIG instance listed or a GPU in MIG
mode among the entries, that one instance is all CUDA shows).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

from gpu_utils.devices import GpuSnapshot, quiet_nvml

logger = logging.getLogger(__name__)

_HIDE_ALL = ("-1", "NoDevFiles")  # the usual "hide every GPU" value, and Slurm's for GPU-less jobs: no warning


def _nvml_key(index) -> tuple[int, int | None]:
    """nvitop's NVML index (``5`` for a GPU, ``(1, 0)`` for MIG instance 0 of GPU 1) -> (physical, mig)."""
    return (int(index[0]), int(index[1])) if isinstance(index, tuple) else (int(index), None)


def parse_visible_devices(value: str | None, devices: Sequence[GpuSnapshot]) -> list[GpuSnapshot]:
    """The devices a process sees, in its CUDA ordinal order, for a ``CUDA_VISIBLE_DEVICES`` value.

    Args:
        value: the variable's value; None (unset) means what CUDA shows a process without it, ``""`` none.
        devices: leaf devices from :func:`gpu_utils.devices.query_devices`.

    Returns:
        list of snapshots; element k is ``cuda:k`` of a process started with this value. A device CUDA
        shows but whose snapshot is missing (its memory was unreadable) is left out, with a warning.
    """
    from nvitop import Device

    with quiet_nvml():
        indices = Device.parse_cuda_visible_devices(value)
    by_key = {(d.index, d.mig_index): d for d in devices}
    view: list[GpuSnapshot] = []
    for key in map(_nvml_key, indices):
        if key in by_key:
            view.append(by_key[key])
        else:
            logger.warning("CUDA_VISIBLE_DEVICES=%r: NVML device %s could not be read; leaving it out", value, key)
    entries = [e.strip() for e in (value or "").split(",") if e.strip()]
    named = list(itertools.takewhile(lambda e: e not in _HIDE_ALL, entries))
    if len(view) < len(named):
        logger.warning("CUDA_VISIBLE_DEVICES=%r: a process sees %d device(s) for its %d entries (%s): CUDA stops "
                       "at an entry that names no device, refuses duplicates and shows one MIG instance at most",
                       value, len(view), len(named), ", ".join(d.label for d in view) or "none")
    return view


def candidate_devices(value: str | None, devices: Sequence[GpuSnapshot]) -> list[GpuSnapshot]:
    """The devices a selection may choose from: every leaf device when ``CUDA_VISIBLE_DEVICES`` is unset (the
    selection then sets it), else the ones a process with that value sees (a Slurm allocation is kept)."""
    return list(devices) if value is None else parse_visible_devices(value, devices)


def ordinal_in_view(device: GpuSnapshot, view: Sequence[GpuSnapshot]) -> int:
    """CUDA ordinal of ``device`` inside a process whose visible devices are ``view``.

    Raises:
        ValueError: the device is not visible in that view.
    """
    for k, d in enumerate(view):
        if d.uuid == device.uuid:
            return k
    raise ValueError(f"{device.label} ({device.uuid}) is not visible in {[d.label for d in view]}")
