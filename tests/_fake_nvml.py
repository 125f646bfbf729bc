"""A machine of fake NVIDIA devices under the real nvitop: the NVML functions nvitop calls, answered from a
list of :class:`gpu_utils.GpuSnapshot`, with no CUDA driver to ask (nvitop then applies CUDA's rules itself).

nvitop looks every NVML function up by name on ``nvitop.api.libnvml`` at call time, so replacing those
names (the NVML C API's own names) puts nvitop's whole Device API, its ``CUDA_VISIBLE_DEVICES`` parsing
and its MIG handling over these devices. ``install(monkeypatch, devices)`` does it for one test.
"""

from __future__ import annotations

import functools
import subprocess
import types
from collections.abc import Sequence

from gpu_utils import GpuSnapshot

MB = 2**20


class Handle:
    """An NVML device handle: a full GPU, a GPU in MIG mode (``migs``), or one MIG instance (``parent``)."""

    def __init__(self, index: int, uuid: str, name: str, snap: GpuSnapshot | None, parent: Handle | None = None):
        self.index, self.uuid, self.name, self.snap, self.parent = index, uuid, name, snap, parent
        self.migs: dict[int, Handle] = {}

    def __repr__(self) -> str:
        return f"Handle({self.uuid})"


def build(devices: Sequence[GpuSnapshot]) -> list[Handle]:
    """Physical GPUs 0..n-1 from leaf snapshots: a full GPU's snapshot, or the MIG instances of one GPU."""
    gpus: dict[int, Handle] = {}
    for d in devices:
        if d.is_mig:
            parent = gpus.setdefault(d.index, Handle(d.index, d.parent_uuid, d.name, None))
            parent.migs[d.mig_index] = Handle(d.mig_index, d.uuid, d.name, d, parent)
        else:
            gpus[d.index] = Handle(d.index, d.uuid, d.name, d)
    assert sorted(gpus) == list(range(len(gpus))), "physical indices must be 0..n-1"
    return [gpus[i] for i in range(len(gpus))]


def install(monkeypatch, devices: Sequence[GpuSnapshot]) -> list[Handle]:
    """Answer nvitop's NVML calls from ``devices`` for this test; CUDA itself is absent."""
    from nvitop.api import device as nv_device
    from nvitop.api import libnvml

    gpus = build(devices)

    def not_found(*_args):
        raise libnvml.NVMLError_NotFound

    def by_index(i):
        if not 0 <= i < len(gpus):
            raise libnvml.NVMLError_InvalidArgument
        return gpus[i]

    def by_uuid(uuid):
        uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
        for h in [h for g in gpus for h in (g, *g.migs.values())]:
            if h.uuid == uuid:
                return h
        raise libnvml.NVMLError_NotFound

    def memory(h, *_version):
        snap = h.snap
        if snap is None:  # a GPU in MIG mode: the sum of its instances
            used, total = (sum(getattr(m.snap, f) for m in h.migs.values()) for f in ("memory_used_mb", "memory_total_mb"))
        else:
            used, total = snap.memory_used_mb, snap.memory_total_mb
        return types.SimpleNamespace(used=int(used * MB), total=int(total * MB), free=int((total - used) * MB),
                                     reserved=0)

    def utilization(h):
        if h.snap is None or h.snap.utilization is None:
            raise libnvml.NVMLError_NotSupported
        return types.SimpleNamespace(gpu=int(h.snap.utilization), memory=0)

    def processes(h):
        n = h.snap.n_processes if h.snap is not None else 0
        base = 10000 * (h.index + 1) + (1000 if h.parent is not None else 0)
        return [types.SimpleNamespace(pid=base + k, usedGpuMemory=MB, gpuInstanceId=0xFFFFFFFF,
                                      computeInstanceId=0xFFFFFFFF) for k in range(n)]

    answers = {
        "nvmlInit": lambda: None,
        "nvmlDeviceGetCount": lambda: len(gpus),
        "nvmlDeviceGetHandleByIndex": by_index,
        "nvmlDeviceGetHandleByUUID": by_uuid,
        "nvmlDeviceGetUUID": lambda h: h.uuid,
        "nvmlDeviceGetName": lambda h: h.name,
        "nvmlDeviceGetIndex": lambda h: h.index,
        "nvmlDeviceGetMigMode": lambda h: (1, 1) if h.migs else (0, 0),
        "nvmlDeviceIsMigDeviceHandle": lambda h: h.parent is not None,
        "nvmlDeviceGetMaxMigDeviceCount": lambda h: 7,
        "nvmlDeviceGetMigDeviceHandleByIndex": lambda h, j: h.migs[j] if j in h.migs else not_found(),
        "nvmlDeviceGetDeviceHandleFromMigDeviceHandle": lambda h: h.parent,
        "nvmlDeviceGetMemoryInfo": memory,
        "nvmlDeviceGetUtilizationRates": utilization,
        "nvmlDeviceGetComputeRunningProcesses": processes,
    }

    def unsupported(*_args, **_kwargs):
        raise libnvml.NVMLError_NotSupported

    for name in dir(libnvml):  # every other NVML function: "not supported", as on a device that lacks it
        if name.startswith("nvml") and name not in ("nvmlQuery", "nvmlCheckReturn", "nvmlQueryFieldValues") \
                and callable(getattr(libnvml, name)):
            monkeypatch.setattr(libnvml, name, answers.get(name, unsupported))

    def no_cuda(*_args, **_kwargs):  # nvitop asks the CUDA driver in a subprocess first: there is none
        raise subprocess.CalledProcessError(1, "cuInit")

    monkeypatch.setattr(nv_device, "subprocess", types.SimpleNamespace(
        check_output=no_cuda, DEVNULL=subprocess.DEVNULL, SubprocessError=subprocess.SubprocessError))
    # nvitop caches the physical devices and every parsed value per process: a fresh cache for this test
    monkeypatch.setattr(nv_device, "_PHYSICAL_DEVICE_ATTRS", None)
    monkeypatch.setattr(nv_device, "_parse_cuda_visible_devices",
                        functools.lru_cache(nv_device._parse_cuda_visible_devices.__wrapped__))
    return gpus
