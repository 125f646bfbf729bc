"""gpu_utils.devices: the query layer over fake nvitop / nvidia-ml-py modules, and the real one here."""

from __future__ import annotations

import logging
import subprocess
import sys
import types
from pathlib import Path

import pytest

from gpu_utils import query_devices
from gpu_utils.devices import quiet_nvml

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the query layer (fake NVML)

class FakeNVMLError(Exception):
    pass


class FakeLibraryNotFound(FakeNVMLError):
    pass


def fake_pynvml(gpus, mig_parent=None, fail_init=False):
    """A module with the nvidia-ml-py functions query_devices uses, over (used, total, util, pids)."""
    mod = types.ModuleType("pynvml")
    mod.NVMLError, mod.NVML_DEVICE_MIG_ENABLE = FakeNVMLError, 1
    mod.calls = []

    def init():
        if fail_init:
            raise FakeLibraryNotFound("NVML Shared Library Not Found")
        mod.calls.append("init")

    def mem(h):
        return types.SimpleNamespace(used=h["used"] * 2**20, total=h["total"] * 2**20)

    def util(h):
        if h.get("mig"):
            raise FakeNVMLError("Not Supported")
        return types.SimpleNamespace(gpu=h["util"], memory=0)

    def mig_handle(h, j):
        if j >= len(h["migs"]):
            raise FakeNVMLError("Not Found")
        return h["migs"][j]

    handles = [dict(i=i, used=u, total=t, util=ut, pids=p, uuid=f"GPU-{i}-fake", migs=[]) for i, (u, t, ut, p) in
               enumerate(gpus)]
    if mig_parent is not None:
        handles[mig_parent]["migs"] = [dict(used=100, total=5000, util=0, pids=[], uuid=f"MIG-{j}-fake", mig=True)
                                       for j in range(2)]
    mod.nvmlInit, mod.nvmlShutdown = init, lambda: mod.calls.append("shutdown")
    mod.nvmlDeviceGetCount = lambda: len(handles)
    mod.nvmlDeviceGetHandleByIndex = lambda i: handles[i]
    mod.nvmlDeviceGetName = lambda h: b"Fake GPU"
    mod.nvmlDeviceGetUUID = lambda h: h["uuid"]
    mod.nvmlDeviceGetMemoryInfo, mod.nvmlDeviceGetUtilizationRates = mem, util
    mod.nvmlDeviceGetComputeRunningProcesses = lambda h: [types.SimpleNamespace(pid=p) for p in h["pids"]]
    mod.nvmlDeviceGetGraphicsRunningProcesses = lambda h: [types.SimpleNamespace(pid=p) for p in h["pids"][:1]]
    mod.nvmlDeviceGetMigMode = lambda h: (1, 1) if h["migs"] else (0, 0)
    mod.nvmlDeviceGetMaxMigDeviceCount = lambda h: 7
    mod.nvmlDeviceGetMigDeviceHandleByIndex = mig_handle
    return mod


def test_nvitop_missing_falls_back_to_pynvml(monkeypatch):
    fake = fake_pynvml([(1000, 8000, 12, [11, 12]), (0, 8000, 0, [])], mig_parent=1)
    monkeypatch.setitem(sys.modules, "nvitop", None)  # import nvitop -> ImportError
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    query = query_devices()
    assert query.backend == "pynvml" and query.error is None and query.has_gpu
    full, m0, m1 = query.devices
    assert (full.index, full.uuid, full.name, full.memory_used_mb, full.utilization, full.n_processes) == \
        (0, "GPU-0-fake", "Fake GPU", 1000, 12.0, 2)
    assert full.memory_percent == pytest.approx(12.5) and not full.is_mig
    assert (m0.index, m0.mig_index, m0.uuid, m0.parent_uuid, m0.utilization) == (1, 0, "MIG-0-fake", "GPU-1-fake", None)
    assert m1.cuda_id == "MIG-1-fake" and full.cuda_id == "0"
    assert fake.calls == ["init", "shutdown"]


def test_nvml_missing_gives_a_no_driver_result_and_no_stderr(monkeypatch, capfd):
    monkeypatch.setitem(sys.modules, "nvitop", None)
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([], fail_init=True))
    query = query_devices()
    assert query.devices == () and query.backend is None and not query.has_gpu
    assert query.error == "NVML Shared Library Not Found"
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert "nvidia-ml-py not installed" in query_devices().error
    assert capfd.readouterr().err == ""


def test_real_query_on_this_machine_never_raises_or_prints(capfd):
    """Whatever this machine has, the real nvitop/pynvml path returns a result and stays quiet."""
    query = query_devices()
    assert query.has_gpu or query.reason
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == ""


def test_importing_gpu_utils_does_not_import_torch():
    code = "import sys, gpu_utils; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def fake_nvitop(specs, fail=False):
    """A module with the slice of nvitop's Device API query_devices uses.

    specs: per physical GPU, (used_mb, total_mb, util, n_procs) or a list of such tuples (MIG mode).
    """
    mod = types.ModuleType("nvitop")
    NA = "N/A"  # nvitop's NA is a str subclass

    class FakeDevice:
        def __init__(self, spec, physical_index, mig_index=None, parent=None):
            self.spec, self.physical_index, self.mig_index, self.parent = spec, physical_index, mig_index, parent

        def is_mig_device(self):
            return self.mig_index is not None

        def to_leaf_devices(self):
            if isinstance(self.spec, list):
                return [FakeDevice(s, self.physical_index, j, self) for j, s in enumerate(self.spec)]
            return [self]

        def uuid(self):
            return f"MIG-{self.physical_index}-{self.mig_index}" if self.is_mig_device() else f"GPU-{self.physical_index}"

        def name(self):
            return "Fake A100 MIG 1g.10gb" if self.is_mig_device() else "Fake A100"

        def memory_used(self):
            return NA if self.spec[0] is None else self.spec[0] * 2**20

        def memory_total(self):
            return self.spec[1] * 2**20

        def gpu_utilization(self):
            return NA if self.is_mig_device() else self.spec[2]

        def processes(self):
            return {pid: object() for pid in range(self.spec[3])}

    class Device:
        @classmethod
        def count(cls):
            if fail:
                raise FakeLibraryNotFound("NVML Shared Library Not Found")
            return len(specs)

        @classmethod
        def from_indices(cls, indices):
            return [FakeDevice(specs[i], i) for i in indices]

    mod.Device = Device
    return mod


def test_nvitop_backend_reads_gpus_and_mig_instances(monkeypatch):
    specs = [(2048, 8192, 40, 3), [(1024, 10240, None, 1), (0, 10240, None, 0)], (None, 8192, 0, 0)]
    monkeypatch.setitem(sys.modules, "nvitop", fake_nvitop(specs))
    query = query_devices()
    assert query.backend == "nvitop" and query.has_gpu
    assert len(query.devices) == 3  # GPU 2's memory is unreadable: left out
    full, m0, m1 = query.devices
    assert (full.index, full.uuid, full.memory_percent, full.utilization, full.n_processes, full.is_mig) == \
        (0, "GPU-0", 25.0, 40.0, 3, False)
    assert (m0.index, m0.mig_index, m0.uuid, m0.parent_uuid, m0.utilization, m0.memory_total_mb) == \
        (1, 0, "MIG-1-0", "GPU-1", None, 10240)
    assert m1.cuda_id == "MIG-1-1" and full.cuda_id == "0"


def test_nvitop_without_driver_falls_back_to_pynvml(monkeypatch, capfd):
    monkeypatch.setitem(sys.modules, "nvitop", fake_nvitop([], fail=True))
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([(0, 1000, 0, [])]))
    query = query_devices()
    assert query.backend == "pynvml" and [d.uuid for d in query.devices] == ["GPU-0-fake"]
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([], fail_init=True))
    assert query_devices().error == "NVML Shared Library Not Found"
    assert capfd.readouterr().err == ""


def test_quiet_nvml_silences_nvitop_and_stderr_then_restores(capfd):
    nv_logger = logging.getLogger("nvitop.api.libnvml")
    with quiet_nvml():
        nv_logger.critical("FATAL ERROR: NVML not found")
        print("NVML noise", file=sys.stderr)
    assert capfd.readouterr().err == ""
    assert not nv_logger.disabled and not logging.getLogger("nvitop").disabled
