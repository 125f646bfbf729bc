"""gpu_utils.devices: the query layer over a fake nvitop module, over the real nvitop on a fake NVML, and the
real one here."""

from __future__ import annotations

import logging
import subprocess
import sys
import types
from pathlib import Path

import _fake_nvml

from gpu_utils import GpuSnapshot, query_devices
from gpu_utils.devices import quiet_nvml

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the query layer (fake NVML)

class FakeLibraryNotFound(Exception):
    pass


def test_real_nvitop_over_a_fake_nvml_reads_gpus_and_mig_instances(monkeypatch):
    gib = 1024.0
    devices = [
        GpuSnapshot(0, "GPU-0000aaaa-1111-2222-3333-444444444444", "Fake H100", 8 * gib, 80 * gib, 35.0, 2),
        GpuSnapshot(1, "MIG-0001bbbb-1111-2222-3333-444444444444", "Fake A100 MIG 1g.10gb", 1 * gib, 10 * gib, None,
                    1, mig_index=0, parent_uuid="GPU-0001aaaa-1111-2222-3333-444444444444"),
        GpuSnapshot(1, "MIG-0001cccc-1111-2222-3333-444444444444", "Fake A100 MIG 1g.10gb", 0.0, 10 * gib, None,
                    0, mig_index=1, parent_uuid="GPU-0001aaaa-1111-2222-3333-444444444444"),
    ]
    _fake_nvml.install(monkeypatch, devices)
    query = query_devices()
    assert query.backend == "nvitop" and query.error is None and query.devices == tuple(devices)
    assert [d.cuda_id for d in query.devices] == ["0", devices[1].uuid, devices[2].uuid]


def test_no_nvitop_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "nvitop", None)  # import nvitop -> ImportError
    query = query_devices()
    assert query.devices == () and query.backend is None and query.error.startswith("nvitop not installed")


def test_real_query_on_this_machine_never_raises_or_prints(capfd):
    """Whatever this machine has, the real nvitop path returns a result and stays quiet."""
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


def test_nvitop_without_driver_is_a_no_gpu_result_and_no_stderr(monkeypatch, capfd):
    monkeypatch.setitem(sys.modules, "nvitop", fake_nvitop([], fail=True))
    query = query_devices()
    assert query.devices == () and query.backend is None and not query.has_gpu
    assert query.error == "NVML Shared Library Not Found" == query.reason
    assert capfd.readouterr().err == ""


def test_quiet_nvml_silences_nvitop_and_stderr_then_restores(capfd):
    nv_logger = logging.getLogger("nvitop.api.libnvml")
    with quiet_nvml():
        nv_logger.critical("FATAL ERROR: NVML not found")
        print("NVML noise", file=sys.stderr)
    assert capfd.readouterr().err == ""
    assert not nv_logger.disabled and not logging.getLogger("nvitop").disabled
