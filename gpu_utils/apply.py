"""Make a selection take effect in this process: CUDA_DEVICE_ORDER, CUDA_VISIBLE_DEVICES, EGL device.

Must run before CUDA is initialised (torch reads ``CUDA_VISIBLE_DEVICES`` once, at CUDA init).
If torch already initialised CUDA, the variable is left alone (changing it would only mislead
child processes about what this one uses), a warning says so, and the returned ordinals are the
chosen devices' places in the current view (e.g. view ``4,5``, chosen 5 -> ``[1]``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping, Sequence

from gpu_utils.devices import GpuSnapshot
from gpu_utils.visible import ordinal_in_view

logger = logging.getLogger(__name__)


def cuda_initialized() -> bool:
    """True when torch is imported and has initialised CUDA (never imports torch itself)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    try:
        return bool(torch.cuda.is_initialized())
    except Exception:  # noqa: BLE001 - a half-imported or CPU-only torch: treat as not initialised
        return False


def egl_device_id(chosen: Sequence[GpuSnapshot]) -> str | None:
    """``MUJOCO_EGL_DEVICE_ID`` for a selection: the physical index of the first chosen GPU.

    EGL enumerates every NVIDIA GPU regardless of ``CUDA_VISIBLE_DEVICES``, in the same PCI order
    as NVML, so the physical index (a MIG instance's parent's) is the EGL device of that GPU.
    """
    return str(chosen[0].index) if chosen else None


def apply_selection(chosen: Sequence[GpuSnapshot], view: Sequence[GpuSnapshot],
                    environ: MutableMapping[str, str] | None = None,
                    cuda_already_initialized: bool | None = None) -> list[int]:
    """Point this process at ``chosen`` and return the CUDA ordinals to use.

    Args:
        chosen: selected devices, best first (all must be in ``view``).
        view: the devices currently visible (the parsed ``CUDA_VISIBLE_DEVICES``), in ordinal order.
        environ: the environment to edit (default ``os.environ``).
        cuda_already_initialized: override of :func:`cuda_initialized` (tests).

    Returns:
        ``[0..len(chosen)-1]`` after narrowing ``CUDA_VISIBLE_DEVICES`` to ``chosen`` (in that
        order); or, if CUDA is already initialised, each chosen device's ordinal in ``view``.
    """
    env = os.environ if environ is None else environ
    if not chosen:
        return []
    initialized = cuda_initialized() if cuda_already_initialized is None else cuda_already_initialized
    if initialized:
        ordinals = [ordinal_in_view(d, view) for d in chosen]
        logger.warning(
            "CUDA was already initialised by torch before GPU selection: CUDA_VISIBLE_DEVICES=%r is "
            "left as is; use cuda:%s (the chosen %s in this process's view). Call "
            "select_gpus_for_run() before anything touches CUDA.",
            env.get("CUDA_VISIBLE_DEVICES"), ",".join(map(str, ordinals)),
            ", ".join(d.label for d in chosen))
    else:
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env["CUDA_VISIBLE_DEVICES"] = ",".join(d.cuda_id for d in chosen)
        ordinals = list(range(len(chosen)))
    egl = egl_device_id(chosen)
    previous = env.get("MUJOCO_EGL_DEVICE_ID")
    if previous is not None and previous != egl:
        logger.warning("MUJOCO_EGL_DEVICE_ID=%s did not match the chosen GPU: set to %s", previous, egl)
    env["MUJOCO_EGL_DEVICE_ID"] = egl
    cvd = env.get("CUDA_VISIBLE_DEVICES", "")
    if cvd and not egl_device_listed(egl, cvd):
        logger.warning("MUJOCO_EGL_DEVICE_ID=%s is not one of the entries of CUDA_VISIBLE_DEVICES=%r (UUIDs or "
                       "MIG UUIDs): robosuite's EGL renderer asserts it is; render with MUJOCO_GL=osmesa", egl, cvd)
    return ordinals


def egl_device_listed(egl: str, cuda_visible_devices: str) -> bool:
    """True when ``egl`` is one of the comma-separated entries (``"1"`` is not listed in ``"10,11"``)."""
    return egl in [e.strip() for e in cuda_visible_devices.split(",")]
