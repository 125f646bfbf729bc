"""``CUDA_VISIBLE_DEVICES`` <-> physical devices <-> in-process CUDA ordinals.

The two numberings that the original utility mixed up:

* physical (NVML) index: the GPU's place in PCI bus order, what ``nvidia-smi`` shows;
* CUDA ordinal: ``cuda:k`` inside a process = the k-th entry of that process's
  ``CUDA_VISIBLE_DEVICES`` (with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``).

Example: ``CUDA_VISIBLE_DEVICES=4,5``: physical GPU 5 is ``cuda:1`` in this process
(``ordinal_in_view``). After :func:`gpu_utils.apply.apply_selection` has narrowed the variable to
the chosen ``5``, a process started from then on sees it as ``cuda:0``.

Entries may be physical indices (``4``), full or abbreviated GPU UUIDs (``GPU-18ef14e9``), or MIG
UUIDs (``MIG-...``). As CUDA does, parsing stops at the first entry that names no device (or a
duplicate; a warning says so) or at ``-1`` (the usual way to hide GPUs); the entries before it stay
visible.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from gpu_utils.devices import GpuSnapshot

logger = logging.getLogger(__name__)

_HIDE_ALL = ("-1", "NoDevFiles")  # the usual "hide every GPU" value, and Slurm's for GPU-less jobs


def _match_entry(entry: str, devices: Sequence[GpuSnapshot]) -> list[GpuSnapshot]:
    """Leaf devices named by one ``CUDA_VISIBLE_DEVICES`` entry ([] when it names none)."""
    if entry.isdigit():
        return [d for d in devices if d.index == int(entry)]
    if entry.startswith("MIG-"):
        hits = [d for d in devices if d.is_mig and d.uuid.startswith(entry)]
    elif entry.startswith("GPU-"):
        hits = [d for d in devices if (d.parent_uuid or d.uuid).startswith(entry)]
        parents = {d.parent_uuid or d.uuid for d in hits}
        if len(parents) > 1:  # abbreviated UUID matching two GPUs: ambiguous, CUDA rejects it too
            return []
        return hits
    else:
        return []
    return hits if len(hits) == 1 else []


def parse_visible_devices(value: str | None, devices: Sequence[GpuSnapshot]) -> list[GpuSnapshot]:
    """The devices a process sees, in its CUDA ordinal order, for a ``CUDA_VISIBLE_DEVICES`` value.

    Args:
        value: the variable's value; None (unset) means every device, ``""`` means none.
        devices: leaf devices from :func:`gpu_utils.devices.query_devices`, in NVML order.

    Returns:
        list of snapshots; element k is ``cuda:k`` of a process started with this value.
    """
    if value is None:
        return list(devices)
    visible: list[GpuSnapshot] = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        if entry in _HIDE_ALL:  # deliberate "no GPU" spellings: stop quietly
            break
        hits = _match_entry(entry, devices)
        if not hits or any(h in visible for h in hits):
            logger.warning("CUDA_VISIBLE_DEVICES=%r: entry %r names no device (or a duplicate); "
                           "like CUDA, ignoring it and everything after it", value, entry)
            break
        visible.extend(hits)
    return visible


def ordinal_in_view(device: GpuSnapshot, view: Sequence[GpuSnapshot]) -> int:
    """CUDA ordinal of ``device`` inside a process whose visible devices are ``view``.

    Raises:
        ValueError: the device is not visible in that view.
    """
    for k, d in enumerate(view):
        if d.uuid == device.uuid:
            return k
    raise ValueError(f"{device.label} ({device.uuid}) is not visible in {[d.label for d in view]}")


def physical_to_ordinal(physical_index: int, cuda_visible_devices: str | None) -> int:
    """CUDA ordinal of physical GPU ``physical_index`` under an index-only ``CUDA_VISIBLE_DEVICES``.

    A pure helper (no NVML) for index lists: ``physical_to_ordinal(5, "4,5") == 1``; with the
    variable unset, ordinal == physical index (``CUDA_DEVICE_ORDER=PCI_BUS_ID``). For UUID lists
    use :func:`parse_visible_devices` + :func:`ordinal_in_view`.

    Raises:
        ValueError: the GPU is not in the list, or the list holds UUIDs.
    """
    if cuda_visible_devices is None:
        return physical_index
    entries = [e.strip() for e in cuda_visible_devices.split(",") if e.strip()]
    if not all(e.isdigit() for e in entries):
        raise ValueError(f"CUDA_VISIBLE_DEVICES={cuda_visible_devices!r} holds UUIDs: "
                         "map them with parse_visible_devices + ordinal_in_view")
    ids = [int(e) for e in entries]
    if physical_index not in ids:
        raise ValueError(f"GPU {physical_index} is not in CUDA_VISIBLE_DEVICES={cuda_visible_devices!r}")
    return ids.index(physical_index)
