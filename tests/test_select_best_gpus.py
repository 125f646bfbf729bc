"""select_best_gpus.py: outputs over fake devices in-process (served through the real nvitop by a fake NVML,
tests/_fake_nvml.py), and the real CLI on this machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import _fake_nvml
import pytest

import select_best_gpus
from gpu_utils import DeviceQuery, GpuSnapshot, query_devices, rank_devices
from gpu_utils.report import format_table, status_icon, use_colour

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024.0


def gpu(index, used_gb, util, total_gb=80.0):
    return GpuSnapshot(index=index, uuid=f"GPU-{index}0000000-aaaa-bbbb-cccc-dddddddddddd", name="Fake H100",
                       memory_used_mb=used_gb * GIB, memory_total_mb=total_gb * GIB, utilization=util,
                       n_processes=1)


def mig(parent, mig_index, used_gb, total_gb=10.0):
    return GpuSnapshot(index=parent, uuid=f"MIG-{parent}{mig_index}000000-aaaa-bbbb-cccc-dddddddddddd",
                       name="Fake A100 MIG 1g.10gb", memory_used_mb=used_gb * GIB, memory_total_mb=total_gb * GIB,
                       utilization=None, n_processes=0, mig_index=mig_index,
                       parent_uuid=f"GPU-{parent}0000000-aaaa-bbbb-cccc-dddddddddddd")


# scores: 0: 0.7*50+0.3*80 = 59   1: 0.7*10+0.3*10 = 10   2: 0.7*30+0.3*30 = 30   3: 0.7*5 = 3.5
DEVICES = (gpu(0, 40, 80), gpu(1, 8, 10), gpu(2, 24, 30), gpu(3, 4, 0))


@pytest.fixture
def fake_gpus(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    _fake_nvml.install(monkeypatch, DEVICES)
    assert query_devices() == DeviceQuery(DEVICES, "nvitop")
    return monkeypatch


def run_main(capsys, *argv):
    code = select_best_gpus.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_single_quiet_prints_the_best_physical_id(fake_gpus, capsys):
    assert run_main(capsys, "single", "--quiet") == (0, "3\n", "")


def test_multi_quiet_all_that_fit_and_n(fake_gpus, capsys):
    assert run_main(capsys, "multi", "--quiet")[1] == "3,1,2,0\n"
    assert run_main(capsys, "multi", "-n", "2", "-q")[1] == "3,1\n"
    code, out, _ = run_main(capsys, "multi", "-q", "--min-free-memory", "60")
    assert (code, out) == (0, "3,1\n")   # free: 76, 72, 56, 40 GiB


def test_quiet_respects_a_preset_allocation(fake_gpus, capsys):
    fake_gpus.setenv("CUDA_VISIBLE_DEVICES", "0,2")
    assert run_main(capsys, "single", "-q")[1] == "2\n"
    fake_gpus.setenv("CUDA_VISIBLE_DEVICES", f"{DEVICES[0].uuid},{DEVICES[1].uuid}")
    assert run_main(capsys, "multi", "-q")[1] == "1,0\n"


def test_weights_change_the_choice(fake_gpus, capsys):
    # util only: 3 (0%) < 1 (10%); memory only: 3 (5%) < 1 (10%); pick between 0 and 2 via a preset
    fake_gpus.setenv("CUDA_VISIBLE_DEVICES", "0,2")
    assert run_main(capsys, "single", "-q", "--memory-weight", "1", "--util-weight", "0")[1] == "2\n"
    heavy_mem_idle = (gpu(0, 70, 0), gpu(1, 79, 100), gpu(2, 10, 100))
    _fake_nvml.install(fake_gpus, heavy_mem_idle)
    assert run_main(capsys, "single", "-q", "--memory-weight", "0", "--util-weight", "1")[1] == "0\n"
    assert run_main(capsys, "single", "-q")[1] == "2\n"   # defaults: 49 vs 37


def test_mig_instances_are_chosen_alone(fake_gpus, capsys):
    instances = (mig(0, 0, 6), mig(0, 1, 1), mig(0, 2, 3))
    _fake_nvml.install(fake_gpus, instances)
    assert run_main(capsys, "single", "-q") == (0, f"{instances[1].uuid}\n", "")
    assert run_main(capsys, "multi", "-q") == (0, f"{instances[1].uuid}\n", "")  # all that fit: one instance
    code, out, err = run_main(capsys, "multi", "-n", "2", "-q")
    assert (code, out) == (1, "") and "a process sees one MIG instance at most" in err
    fake_gpus.setenv("CUDA_VISIBLE_DEVICES", f"{instances[2].uuid},{instances[1].uuid}")  # CUDA shows the first
    assert run_main(capsys, "multi", "-q") == (0, f"{instances[2].uuid}\n", "")


def test_json_parses_and_is_complete(fake_gpus, capsys):
    code, out, err = run_main(capsys, "multi", "-n", "2", "--json", "--min-free-memory", "50")
    report = json.loads(out)
    assert code == 0 and err == ""
    assert report["selected"] == ["3", "1"] and report["cuda_visible_devices"] == "3,1"
    assert report["mujoco_egl_device_id"] == "3" and report["backend"] == "nvitop"
    assert [d["index"] for d in report["devices"]] == [3, 1, 2, 0]
    assert [d["fits"] for d in report["devices"]] == [True, True, True, False]
    assert report["devices"][0]["score"] == pytest.approx(3.5)
    assert report["devices"][0]["memory_percent"] == pytest.approx(5.0)
    assert report["error"] is None


def test_table_has_icons_selection_and_no_ansi_off_a_terminal(fake_gpus, capsys):
    code, out, _ = run_main(capsys, "single", "--min-free-memory", "50")
    assert code == 0 and "\033[" not in out
    lines = out.splitlines()
    assert ["GPU", "Mem%", "Util%", "MemMB", "Procs", "Score"] == lines[0].split()[:6]
    assert lines[1].startswith("🟢*GPU 3") and lines[2].startswith("🟢 GPU 1")
    assert lines[3].startswith("🟡 GPU 2") and lines[4].startswith("🔴 GPU 0")
    assert lines[4].endswith("(< 50 GiB free)")
    assert lines[-1].startswith("selected: 3")


def test_status_icons_and_colour_rules():
    assert [status_icon(s) for s in (0, 19.9, 20, 50, 50.1)] == ["🟢", "🟢", "🟡", "🟡", "🔴"]

    class Tty:
        def isatty(self):
            return True

    assert use_colour(Tty(), environ={})
    assert not use_colour(Tty(), environ={"NO_COLOR": ""})
    assert not use_colour(Tty(), environ={"TERM": "dumb"})
    assert not use_colour(object(), environ={})
    coloured = format_table(rank_devices(DEVICES), [DEVICES[3]], colour=True)
    assert "\033[32m   3.5\033[0m" in coloured and "\033[31m  59.0\033[0m" in coloured
    assert "\033[" not in format_table(rank_devices(DEVICES), [DEVICES[3]], colour=False)


def test_nothing_fits_exits_1_with_one_line(fake_gpus, capsys):
    code, out, err = run_main(capsys, "single", "--quiet", "--min-free-memory", "77")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "no GPU has 77 GiB free" in err
    code, out, _ = run_main(capsys, "multi", "--json", "--min-free-memory", "77")
    assert code == 1 and json.loads(out)["selected"] == []


def test_fewer_than_asked_exits_1_and_prints_no_ids_unless_allowed(fake_gpus, capsys):
    # CUDA_VISIBLE_DEVICES=$(... multi -n 3 -q) must not feed a 3-process launch two GPUs
    code, out, err = run_main(capsys, "multi", "-n", "3", "-q", "--min-free-memory", "60")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "asked for 3 GPU(s), only 2 fit" in err and "--allow-fewer" in err
    code, out, _ = run_main(capsys, "multi", "-n", "3", "--json", "--min-free-memory", "60")
    report = json.loads(out)
    assert code == 1 and report["selected"] == [] and "only 2 fit" in report["error"]
    code, out, err = run_main(capsys, "multi", "-n", "3", "-q", "--min-free-memory", "60", "--allow-fewer")
    assert (code, out) == (0, "3,1\n") and "only 2 fit: using 2 (--allow-fewer)" in err


def test_the_old_spellings_still_work(fake_gpus, capsys):
    """No subcommand = multi-GPU selection as a comma list (BEST_GPUS=$(./select_best_gpus.py)); --json alone too."""
    assert run_main(capsys) == (0, "3,1,2,0\n", "")
    assert run_main(capsys, "--min-free-memory", "60") == (0, "3,1\n", "")
    assert run_main(capsys, "-n", "2") == (0, "3,1\n", "")
    code, out, _ = run_main(capsys, "--json")
    assert code == 0 and json.loads(out)["selected"] == ["3", "1", "2", "0"]
    # ./select_best_gpus.py single --memory-weight 0.8 --util-weight 0.2 (memory first: 3 (4 GiB) beats 1 (8 GiB))
    code, out, _ = run_main(capsys, "single", "--memory-weight", "0.8", "--util-weight", "0.2")
    assert code == 0 and out.splitlines()[-1].startswith("selected: 3 ")


@pytest.mark.parametrize("argv", [["single", "--memory-weight", "-1"], ["multi", "-n", "x"], ["bogus"],
                                  ["single", "--util-weight", "nan"], ["multi", "-n", "-2"],
                                  ["single", "--memory-weight", "0", "--util-weight", "0"],
                                  ["single", "-q", "--json"]])
def test_bad_arguments_exit_2_with_one_line(fake_gpus, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        select_best_gpus.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err


def _cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "select_best_gpus.py"), *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


@pytest.mark.skipif(query_devices().has_gpu, reason="this machine has an NVIDIA GPU")
def test_cli_on_this_machine_without_gpu_says_so_in_one_line_and_exits_1():
    for args, stdout_check in ((["single"], lambda o: o == ""),
                               (["single", "--quiet"], lambda o: o == ""),
                               ([], lambda o: o == ""),  # the old spelling: BEST_GPUS=$(./select_best_gpus.py)
                               (["multi", "--json"], lambda o: json.loads(o)["devices"] == [])):
        proc = _cli(*args)
        assert proc.returncode == 1, proc
        assert stdout_check(proc.stdout), proc.stdout
        assert proc.stderr.count("\n") == 1, proc.stderr      # no nvitop/NVML banner
        assert "no NVIDIA driver/GPU found" in proc.stderr


def test_cli_help_and_executable():
    proc = _cli("--help")
    assert proc.returncode == 0 and "single" in proc.stdout and "--quiet" in _cli("multi", "--help").stdout
    assert (ROOT / "select_best_gpus.py").stat().st_mode & 0o111
    assert (ROOT / "select_best_gpus.py").read_text().startswith("#!/usr/bin/env python3\n")
