"""Scoring, CUDA_VISIBLE_DEVICES mapping and select_gpus_for_run over fake devices (no GPU): the device
snapshots are served through the real nvitop by a fake NVML (tests/fake_nvml.py), so nvitop's own parsing of
CUDA_VISIBLE_DEVICES and its MIG rules run as they do on a GPU machine without a CUDA driver to ask."""

from __future__ import annotations

import logging
import os
import sys
import types

import _fake_nvml as fake_nvml
import pytest

import gpu_utils
from gpu_utils import (
    DeviceQuery,
    GpuSelectionError,
    GpuSnapshot,
    apply_selection,
    candidate_devices,
    ordinal_in_view,
    parse_visible_devices,
    query_devices,
    rank_devices,
    select_devices,
    select_gpus_for_run,
)

GIB = 1024.0


def gpu_uuid(index):
    return f"GPU-{index:08x}-aaaa-0000-0000-{index:012x}"


def gpu(index, used_gb=0.0, util=0.0, total_gb=80.0, uuid=None, procs=0):
    return GpuSnapshot(index=index, uuid=uuid or gpu_uuid(index), name="Fake H100", memory_used_mb=used_gb * GIB,
                       memory_total_mb=total_gb * GIB, utilization=util, n_processes=procs)


def mig(parent, mig_index, used_gb=0.0, total_gb=10.0):
    return GpuSnapshot(index=parent, uuid=f"MIG-{parent:04x}{mig_index:04x}-bbbb-2222-3333-444444444444",
                       name="Fake A100 MIG 1g.10gb", memory_used_mb=used_gb * GIB, memory_total_mb=total_gb * GIB,
                       utilization=None, n_processes=0, mig_index=mig_index, parent_uuid=gpu_uuid(parent))


EIGHT = [gpu(0, 70, 90), gpu(1, 40, 10), gpu(2, 8, 0), gpu(3, 60, 100),
         gpu(4, 30, 20), gpu(5, 4, 5), gpu(6, 79, 100), gpu(7, 16, 50)]


@pytest.fixture
def env(monkeypatch):
    """A clean GPU-related environment for each test (monkeypatch restores os.environ)."""
    for key in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "MUJOCO_EGL_DEVICE_ID"):
        # setenv first: delenv of an absent key records nothing, so values the code under test
        # writes into os.environ would leak into later tests (and their subprocesses).
        monkeypatch.setenv(key, "unset-by-fixture")
        monkeypatch.delenv(key)
    return monkeypatch


def fake_machine(monkeypatch, devices):
    """These devices behind the real nvitop (a fake NVML, no CUDA driver); the query reads them back as given."""
    fake_nvml.install(monkeypatch, devices)
    assert query_devices().devices == tuple(devices)


# ---------------------------------------------------------------- scoring and ranking

def test_ranking_best_first_with_default_weights():
    order = [r.device.index for r in rank_devices(EIGHT)]
    # scores (0.7 mem% + 0.3 util%): 5: 5, 2: 7, 7: 29, 4: 32.25, 1: 38, 3: 82.5, 0: 88.25, 6: 99.1
    assert order == [5, 2, 7, 4, 1, 3, 0, 6]
    assert select_devices(EIGHT, 2) == [EIGHT[5], EIGHT[2]]


def test_weights_change_the_choice():
    busy_empty, idle_full = gpu(0, used_gb=0, util=100), gpu(1, used_gb=72, util=0)
    assert select_devices([busy_empty, idle_full], 1, memory_weight=1.0, util_weight=0.0) == [busy_empty]
    assert select_devices([busy_empty, idle_full], 1, memory_weight=0.0, util_weight=1.0) == [idle_full]
    # defaults: 0.7*0 + 0.3*100 = 30 vs 0.7*90 + 0 = 63
    assert select_devices([busy_empty, idle_full], 1) == [busy_empty]


def test_min_free_memory_filters_and_all_that_fit():
    chosen = select_devices(EIGHT, num_gpus=0, min_free_memory_gb=50)
    assert [d.index for d in chosen] == [5, 2, 7, 4]   # free: 76, 72, 64, 50 GiB
    assert select_devices(EIGHT, num_gpus=-1) == [r.device for r in rank_devices(EIGHT)]
    assert select_devices(EIGHT, 3, min_free_memory_gb=79) == []
    ranked = rank_devices(EIGHT, min_free_memory_gb=50)
    assert [r.fits for r in ranked] == [True] * 4 + [False] * 4


def test_ties_are_broken_by_physical_index_whatever_the_input_order():
    same = [gpu(i, used_gb=8, util=10) for i in (3, 1, 2)]
    assert [d.index for d in select_devices(same, 0)] == [1, 2, 3]
    assert [d.index for d in select_devices(list(reversed(same)), 0)] == [1, 2, 3]


@pytest.mark.parametrize("kwargs", [{"memory_weight": -0.1}, {"util_weight": float("nan")},
                                    {"memory_weight": 0.0, "util_weight": 0.0},
                                    {"min_free_memory_gb": -1.0}])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        rank_devices(EIGHT, **kwargs)


# ---------------------------------------------------------------- CUDA_VISIBLE_DEVICES mapping (nvitop's parser)

def test_index_lists_order_and_cuda_semantics(monkeypatch, caplog):
    fake_machine(monkeypatch, EIGHT)
    assert parse_visible_devices(None, EIGHT) == EIGHT and parse_visible_devices("", EIGHT) == []
    assert parse_visible_devices("5,4", EIGHT) == [EIGHT[5], EIGHT[4]]
    with caplog.at_level(logging.WARNING):
        assert parse_visible_devices("1,9,2", EIGHT) == [EIGHT[1]]  # CUDA stops at an entry naming no device
    assert "a process sees 1 device(s) for its 3 entries (GPU 1)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert parse_visible_devices("1,2,1,3", EIGHT) == []  # a duplicate: CUDA shows nothing
    assert "a process sees 0 device(s) for its 4 entries (none)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # the usual ways to hide GPUs: no warning
        assert parse_visible_devices("-1", EIGHT) == [] and parse_visible_devices("3,-1,4", EIGHT) == [EIGHT[3]]
        assert parse_visible_devices("NoDevFiles", EIGHT) == []
    assert caplog.text == ""


def test_uuid_lists(monkeypatch):
    fake_machine(monkeypatch, EIGHT)
    assert parse_visible_devices(f"{EIGHT[6].uuid},{EIGHT[3].uuid}", EIGHT) == [EIGHT[6], EIGHT[3]]
    assert parse_visible_devices(f" {EIGHT[2].uuid} ", EIGHT) == [EIGHT[2]]
    # indices and UUIDs in one list: CUDA reads the first kind and stops at the other
    assert parse_visible_devices(f"4,{EIGHT[5].uuid}", EIGHT) == [EIGHT[4]]
    # an abbreviated UUID is the CUDA driver's to resolve (nvitop asks it); with no driver it names nothing
    assert parse_visible_devices(EIGHT[3].uuid[:12], EIGHT) == []


MIXED = [gpu(0, 70, 90), mig(1, 0, used_gb=9), mig(1, 1, used_gb=1), mig(1, 2, used_gb=5), gpu(2, 40, 10)]


def test_mig_uuids_and_a_gpu_in_mig_mode_show_one_instance(monkeypatch):
    fake_machine(monkeypatch, MIXED)
    assert parse_visible_devices(MIXED[2].uuid, MIXED) == [MIXED[2]]
    # two MIG instances listed: a process sees the first only (the hand parser gave it cuda:0 and cuda:1)
    assert parse_visible_devices(f"{MIXED[3].uuid},{MIXED[1].uuid}", MIXED) == [MIXED[3]]
    assert parse_visible_devices(f"{MIXED[3].uuid},{MIXED[0].uuid}", MIXED) == [MIXED[3]]
    # a GPU in MIG mode by index (alone or among others): its first instance, and nothing beside it
    assert parse_visible_devices("1", MIXED) == [MIXED[1]]
    assert parse_visible_devices("0,1,2", MIXED) == [MIXED[1]]
    assert parse_visible_devices("2,0", MIXED) == [MIXED[4], MIXED[0]]
    # unset: what CUDA shows a process on this machine; the selection may still choose any leaf device
    assert parse_visible_devices(None, MIXED) == [MIXED[1]]
    assert candidate_devices(None, MIXED) == MIXED
    assert candidate_devices("2,0", MIXED) == [MIXED[4], MIXED[0]]


def test_a_selection_holds_one_mig_instance_at_most_and_nothing_beside_it():
    assert select_devices(MIXED, 1) == [MIXED[2]]  # the best device, a MIG instance
    assert select_devices(MIXED, 2) == [MIXED[4], MIXED[0]]  # several: full GPUs only
    assert select_devices(MIXED, 0) == [MIXED[4], MIXED[0]]
    only_mig = MIXED[1:4]
    assert select_devices(only_mig, 0) == [MIXED[2]] and select_devices(only_mig, 3) == [MIXED[2]]
    full_gpu_full = [gpu(0, used_gb=79), mig(1, 0, used_gb=1)]
    assert select_devices(full_gpu_full, 0, min_free_memory_gb=5) == [full_gpu_full[1]]  # no full GPU fits


def test_ordinal_in_view(monkeypatch):
    fake_machine(monkeypatch, EIGHT)
    view = parse_visible_devices("4,5", EIGHT)
    assert ordinal_in_view(EIGHT[5], view) == 1 and ordinal_in_view(EIGHT[4], view) == 0
    with pytest.raises(ValueError, match="GPU 0 .* is not visible"):
        ordinal_in_view(EIGHT[0], view)


# ---------------------------------------------------------------- select_gpus_for_run end to end

def test_preset_4_5_chooses_physical_5_and_maps_it(env, caplog):
    env.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    fake_machine(env, EIGHT)
    with caplog.at_level(logging.INFO, logger="gpu_utils"):
        assert select_gpus_for_run(num_gpus=1) == [0]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert os.environ["MUJOCO_EGL_DEVICE_ID"] == "5"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "chose GPU 5" in lines[0] and "cuda:0" in lines[0]
    # a process that kept the original view would use cuda:1 for the same GPU
    assert ordinal_in_view(EIGHT[5], parse_visible_devices("4,5", EIGHT)) == 1


def test_preset_with_cuda_already_initialised_keeps_view_and_returns_its_ordinal(env, caplog):
    env.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    fake_machine(env, EIGHT)
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(is_initialized=lambda: True))
    env.setitem(sys.modules, "torch", fake_torch)
    with caplog.at_level(logging.WARNING):
        assert select_gpus_for_run(num_gpus=1) == [1]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5"
    assert os.environ["MUJOCO_EGL_DEVICE_ID"] == "5"
    assert "already initialised" in caplog.text


def test_uuid_preset_is_respected_and_written_back_as_physical_index(env):
    env.setenv("CUDA_VISIBLE_DEVICES", f"{EIGHT[0].uuid},{EIGHT[7].uuid},{EIGHT[1].uuid}")
    fake_machine(env, EIGHT)
    assert select_gpus_for_run(num_gpus=2) == [0, 1]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "7,1"
    assert os.environ["MUJOCO_EGL_DEVICE_ID"] == "7"


def test_mig_devices_are_chosen_by_uuid_with_parent_egl_device(env, caplog):
    devices = [gpu(0, 70, 90), mig(1, 0, used_gb=9), mig(1, 1, used_gb=1), mig(1, 2, used_gb=5)]
    fake_machine(env, devices)
    assert select_gpus_for_run(num_gpus=1) == [0]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == devices[2].uuid
    assert os.environ["MUJOCO_EGL_DEVICE_ID"] == "1"
    # a MIG UUID preset restricts the choice to that instance
    env.setenv("CUDA_VISIBLE_DEVICES", devices[1].uuid)
    assert select_gpus_for_run(num_gpus=0) == [0]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == devices[1].uuid
    # two GPUs asked for on a machine of MIG instances: one instance, never two UUIDs in the variable
    only_mig = [mig(0, 0, used_gb=9), mig(0, 1, used_gb=1), mig(0, 2, used_gb=5)]
    fake_machine(env, only_mig)
    env.delenv("CUDA_VISIBLE_DEVICES")
    with caplog.at_level(logging.WARNING):
        assert select_gpus_for_run(num_gpus=2) == [0]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == only_mig[1].uuid
    assert "only 1 visible GPU(s) fit (a process sees one MIG instance at most" in caplog.text


def test_selection_off_on_a_mig_machine_reports_what_cuda_shows(env, caplog):
    fake_machine(env, MIXED)
    with caplog.at_level(logging.INFO, logger="gpu_utils"):
        assert select_gpus_for_run(auto_select=False) == [0]  # one MIG instance, not the five leaf devices
    assert "using the 1 visible GPU(s)" in caplog.text and "CUDA_VISIBLE_DEVICES" not in os.environ


def test_auto_select_off_changes_nothing(env):
    env.setenv("CUDA_VISIBLE_DEVICES", "6,3,2")
    fake_machine(env, EIGHT)
    assert select_gpus_for_run(auto_select=False) == [0, 1, 2]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "6,3,2"
    assert "MUJOCO_EGL_DEVICE_ID" not in os.environ and "CUDA_DEVICE_ORDER" not in os.environ


def test_fewer_fitting_than_asked_and_none_fitting(env, caplog):
    fake_machine(env, EIGHT)
    with caplog.at_level(logging.WARNING):
        assert select_gpus_for_run(num_gpus=6, min_free_memory_gb=50) == [0, 1, 2, 3]
    assert "only 4" in caplog.text
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5,2,7,4"
    env.delenv("CUDA_VISIBLE_DEVICES")
    with pytest.raises(GpuSelectionError, match="79 GiB free"):
        select_gpus_for_run(min_free_memory_gb=79)


@pytest.mark.parametrize("query", [DeviceQuery((), None, "NVML Shared Library Not Found"),
                                   DeviceQuery((), "nvitop")])
def test_no_driver_or_zero_devices_means_cpu_in_one_line(env, caplog, query):
    env.setattr(gpu_utils.run_selection, "query_devices", lambda: query)
    with caplog.at_level(logging.DEBUG, logger="gpu_utils"):
        assert select_gpus_for_run(num_gpus=2) == []
        assert select_gpus_for_run(auto_select=False) == []
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == \
        ["no NVIDIA driver/GPU found: running on CPU"] * 2
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


@pytest.mark.parametrize("kwargs", [{"min_free_memory_gb": float("nan")}, {"min_free_memory_gb": -1},
                                    {"util_weight": -1.0}])
def test_bad_arguments_raise_even_without_a_gpu(env, kwargs):
    env.setattr(gpu_utils.run_selection, "query_devices", lambda: DeviceQuery((), None, "no driver"))
    with pytest.raises(ValueError):
        select_gpus_for_run(**kwargs)


def test_empty_preset_hides_all_gpus(env):
    env.setenv("CUDA_VISIBLE_DEVICES", "")
    fake_machine(env, EIGHT)
    assert select_gpus_for_run() == []


def test_apply_selection_edits_only_the_given_environ():
    environ = {"CUDA_VISIBLE_DEVICES": "4,5", "MUJOCO_EGL_DEVICE_ID": "4"}
    view = [EIGHT[4], EIGHT[5]]
    assert apply_selection([EIGHT[5], EIGHT[4]], view, environ, cuda_already_initialized=False) == [0, 1]
    assert environ == {"CUDA_VISIBLE_DEVICES": "5,4", "MUJOCO_EGL_DEVICE_ID": "5",
                       "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert apply_selection([], view, environ) == []


def test_egl_device_is_matched_as_an_entry_not_a_substring(caplog):
    """GPU 1 chosen while CUDA was already initialised with a view "10,GPU-..": "1" is in the text, not the list."""
    ten, one = gpu(10), gpu(1)
    environ = {"CUDA_VISIBLE_DEVICES": f"10,{one.uuid}"}
    with caplog.at_level(logging.WARNING, logger="gpu_utils"):
        assert apply_selection([one], [ten, one], environ, cuda_already_initialized=True) == [1]
    assert environ["MUJOCO_EGL_DEVICE_ID"] == "1"
    assert "MUJOCO_EGL_DEVICE_ID=1 is not one of the entries" in caplog.text
    caplog.clear()
    environ = {"CUDA_VISIBLE_DEVICES": "10,1"}
    with caplog.at_level(logging.WARNING, logger="gpu_utils"):
        apply_selection([one], [ten, one], environ, cuda_already_initialized=True)
    assert "not one of the entries" not in caplog.text
    assert not gpu_utils.apply.egl_device_listed("1", "10,11") and gpu_utils.apply.egl_device_listed("1", "10, 1")



def test_ranks_of_a_distributed_launch_do_not_choose(env, caplog):
    env.setenv("LOCAL_RANK", "1")
    env.setenv("CUDA_VISIBLE_DEVICES", "6,2")
    fake_machine(env, EIGHT)
    with caplog.at_level(logging.INFO, logger="gpu_utils"):
        assert select_gpus_for_run(num_gpus=1) == [0, 1]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "6,2" and "MUJOCO_EGL_DEVICE_ID" not in os.environ
    assert "distributed launcher" in caplog.text


def test_index_preset_on_mixed_gpus_without_pci_order_warns(env, caplog):
    mixed = [gpu(0), GpuSnapshot(1, gpu_uuid(1), "Other GPU", 0.0, 1000.0, 0.0, 0)]
    env.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    fake_machine(env, mixed)
    with caplog.at_level(logging.WARNING):
        assert select_gpus_for_run() == [0]
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in caplog.text
    caplog.clear()
    env.setenv("CUDA_VISIBLE_DEVICES", "1,0")  # now set by the first call; no warning any more
    with caplog.at_level(logging.WARNING):
        select_gpus_for_run()
    assert caplog.text == ""


def test_verify_compares_torch_uuids_with_the_chosen_devices(env, capsys):
    from gpu_utils import verify

    assert verify.same_uuid("05aaaa-0000", "GPU-05aaaa-0000") and verify.same_uuid("MIG-ab", "mig-AB")
    assert not verify.same_uuid("05aaaa-0000", "GPU-04aaaa-0000")
    fake_machine(env, EIGHT)
    env.setattr(verify, "torch_view", lambda: [("Fake H100", EIGHT[5].uuid[4:])])
    assert verify.main(["-n", "1"]) == 0
    assert "cuda:0  torch: Fake H100" in capsys.readouterr().out
    env.delenv("CUDA_VISIBLE_DEVICES")
    env.setattr(verify, "torch_view", lambda: [("Fake H100", EIGHT[2].uuid[4:])])  # the wrong GPU
    assert verify.main(["-n", "1"]) == 1
    assert "MISMATCH" in capsys.readouterr().out
