"""Snapshots of the NVIDIA devices on this machine, read through nvitop (which calls NVML).

Every device is described by an immutable :class:`GpuSnapshot`; a query returns a
:class:`DeviceQuery` that is either a tuple of snapshots or a one-line reason why no NVIDIA
driver/GPU could be reached. Nothing here imports torch or initialises CUDA (NVML never creates a
CUDA context), and nothing from nvitop's own logger or NVML reaches our stderr.

Devices are *leaf* devices, as CUDA sees them: a full GPU, or, for a GPU in MIG mode, each of its
MIG instances (the parent GPU itself cannot run CUDA work then).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass

logger = logging.getLogger(__name__)

MB = 1024 * 1024  # bytes per MiB; every "MB" figure in this package is a MiB


@dataclass(frozen=True)
class GpuSnapshot:
    """One leaf device at one moment.

    Attributes:
        index: physical NVML index (PCI bus order) of the GPU; for a MIG instance, its parent's.
        uuid: ``GPU-...`` for a full GPU, ``MIG-...`` for a MIG instance.
        name: product name, e.g. ``NVIDIA H100 80GB HBM3``.
        memory_used_mb / memory_total_mb: device memory in MiB.
        utilization: GPU (SM) utilisation in percent, or None where NVML does not report it (MIG).
        n_processes: number of processes holding a context on the device.
        mig_index: index of the MIG instance within its parent, None for a full GPU.
        parent_uuid: the parent GPU's UUID for a MIG instance, None for a full GPU.
    """

    index: int
    uuid: str
    name: str
    memory_used_mb: float
    memory_total_mb: float
    utilization: float | None
    n_processes: int
    mig_index: int | None = None
    parent_uuid: str | None = None

    @property
    def is_mig(self) -> bool:
        return self.mig_index is not None

    @property
    def memory_percent(self) -> float:
        """Used memory in percent of the total (100 when the total is unknown/zero)."""
        if self.memory_total_mb <= 0:
            return 100.0
        return 100.0 * self.memory_used_mb / self.memory_total_mb

    @property
    def memory_free_mb(self) -> float:
        return max(self.memory_total_mb - self.memory_used_mb, 0.0)

    @property
    def cuda_id(self) -> str:
        """What to write into ``CUDA_VISIBLE_DEVICES`` (with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``).

        The physical index for a full GPU (robosuite's EGL code parses the variable as integers and
        breaks on UUIDs), the MIG UUID for a MIG instance (CUDA accepts nothing else for MIG).
        """
        return self.uuid if self.is_mig else str(self.index)

    @property
    def label(self) -> str:
        """Human-readable id: ``GPU 3`` or ``GPU 0 MIG 1``."""
        return f"GPU {self.index} MIG {self.mig_index}" if self.is_mig else f"GPU {self.index}"

    def to_dict(self) -> dict:
        """JSON-ready dict of the fields plus the derived ones (memory %, free MiB, cuda_id)."""
        return {
            **asdict(self),
            "memory_percent": round(self.memory_percent, 2),
            "memory_free_mb": round(self.memory_free_mb, 1),
            "cuda_id": self.cuda_id,
            "is_mig": self.is_mig,
        }


@dataclass(frozen=True)
class DeviceQuery:
    """Result of :func:`query_devices`.

    ``error`` is None when NVML answered (``devices`` may still be empty: a driver with zero GPUs);
    otherwise it is the one-line reason why no NVIDIA driver could be reached (e.g.
    ``NVML Shared Library Not Found``).
    """

    devices: tuple[GpuSnapshot, ...]
    backend: str | None
    error: str | None = None

    @property
    def has_gpu(self) -> bool:
        return self.error is None and len(self.devices) > 0

    @property
    def reason(self) -> str:
        """One-line explanation when there is no usable GPU."""
        if self.error is not None:
            return self.error
        if not self.devices:
            return "the NVIDIA driver reports zero GPUs"
        return ""


_NVITOP_LOGGERS = ("nvitop", "nvitop.api", "nvitop.api.libnvml", "nvitop.api.libcuda",
                   "nvitop.api.libcudart", "nvitop.api.device")


@contextlib.contextmanager
def quiet_nvml() -> Iterator[None]:
    """Silence nvitop's loggers (they print a multi-line 'FATAL ERROR' banner) and Python-level stderr.

    The loggers are disabled by name before nvitop is imported (``getLogger`` returns the same object
    nvitop then uses) and restored afterwards, so the application's own logging is untouched.
    """
    names = set(_NVITOP_LOGGERS) | {n for n in logging.root.manager.loggerDict if n.startswith("nvitop.")}
    loggers = [logging.getLogger(n) for n in sorted(names)]
    states = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = True
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for lg, state in zip(loggers, states):
            lg.disabled = state


def _num(value) -> float | None:
    """nvitop returns ``NA`` (a str subclass) for unavailable fields: map it to None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _snapshots_from_nvitop(nvitop_module) -> list[GpuSnapshot]:
    """Snapshots through nvitop's object API (raises ``NVMLError`` when there is no driver)."""
    Device = nvitop_module.Device
    count = Device.count()  # raises NVMLError_LibraryNotFound / DriverNotLoaded without a driver
    snapshots: list[GpuSnapshot] = []
    for physical in Device.from_indices(range(count)):
        for dev in physical.to_leaf_devices():  # the GPU itself, or its MIG instances in MIG mode
            used, total = _num(dev.memory_used()), _num(dev.memory_total())
            if used is None or total is None:
                logger.debug("skipping %s: memory not readable", dev)
                continue
            is_mig = bool(dev.is_mig_device())
            snapshots.append(GpuSnapshot(
                index=int(dev.physical_index),
                uuid=str(dev.uuid()),
                name=str(dev.name()),
                memory_used_mb=used / MB,
                memory_total_mb=total / MB,
                utilization=_num(dev.gpu_utilization()),
                n_processes=len(dev.processes()),
                mig_index=int(dev.mig_index) if is_mig else None,
                parent_uuid=str(physical.uuid()) if is_mig else None,
            ))
    return snapshots


def _describe(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def query_devices() -> DeviceQuery:
    """Snapshot every leaf device through nvitop, or a 'no driver' result.

    Never raises: a missing driver (nvitop's ``NVMLError_LibraryNotFound``) or any NVML failure ends in
    ``DeviceQuery(devices=(), backend=None, error="<why>")``. There is no second backend: nvidia-ml-py would
    call the same NVML library and fail the same way.
    """
    with quiet_nvml():
        try:
            import nvitop
        except ImportError as exc:  # a broken install: nvitop is a dependency
            return DeviceQuery((), backend=None, error=f"nvitop not installed: {exc}")
        try:
            return DeviceQuery(tuple(_snapshots_from_nvitop(nvitop)), backend="nvitop")
        except Exception as exc:  # noqa: BLE001 - NVMLError and friends; never raise here
            logger.debug("nvitop query failed: %r", exc)
            return DeviceQuery((), backend=None, error=_describe(exc))
