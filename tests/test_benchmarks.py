"""The benchmark tools: synthetic dataset, the GPU-check report, and gpu_check.sh end to end (tiny, CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from benchmarks.gpu_check_report import main as report_main
from benchmarks.synthetic_dataset import main as synthetic_main
from datasets.robomimic_dset import RobomimicEpisodes
from tests.conftest import ROOT


def test_synthetic_dataset_is_a_converted_dataset_without_videos(tmp_path, capsys):
    out = tmp_path / "syn"
    assert synthetic_main(["--out", str(out), "--episodes", "3", "--frames", "24", "--size", "20"]) == 0
    ep = RobomimicEpisodes(out)
    assert len(ep) == 3 and ep.seq_lengths.tolist() == [24, 23, 22]
    frames = ep.frames(1)
    assert frames.shape == (23, 20, 20, 3) and frames.dtype == np.uint8 and frames.std() > 0
    assert not list(out.rglob("*.mp4"))  # lossless .npy frames: no codec needed
    assert ep.actions[2, 22:].abs().sum() == 0 and ep.actions[2, :22].abs().sum() > 0  # padded past the end
    mtime = (out / "states.pth").stat().st_mtime_ns
    assert synthetic_main(["--out", str(out), "--episodes", "3", "--frames", "24", "--size", "20"]) == 0
    assert (out / "states.pth").stat().st_mtime_ns == mtime  # same parameters: reused
    assert synthetic_main(["--out", str(out), "--episodes", "1"]) == 2
    assert "need --episodes >= 2" in capsys.readouterr().err
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    assert synthetic_main(["--out", str(other), "--episodes", "3", "--frames", "24", "--size", "20"]) == 2
    assert "is not a dataset directory" in capsys.readouterr().err
    assert [f.name for f in other.iterdir()] == ["notes.txt"]


def test_report_marks_targets_and_failed_steps(tmp_path, capsys):
    res = tmp_path / "res"
    res.mkdir()
    for name in ("env", "train_throughput", "train_bs32", "plan_demo", "plan_full"):
        (res / f"{name}.status").write_text("0\n")
    (res / "plan_long.status").write_text("124\n")
    (res / "env.log").write_text("torch 2.11\ndevice NVIDIA H100\n")
    (res / "train_throughput.json").write_text(json.dumps({"speedup": 21.0, "rows": [
        {"samples_per_s": 2100.0, "placement": "device"}, {"samples_per_s": 100.0}]}))
    (res / "train_bs32.log").write_text(  # the trainer's own log lines
        "[x][training.loop.trainer][INFO] model: 624478 trainable parameters, 196 patches\n"
        "[x][training.loop.trainer][INFO] epoch 1/2: step 10, last loss 1.0 (pred 0.5, copy-last 0.6), 800.0 samples/s\n"
        "[x][training.loop.trainer][INFO] epoch 2/2: step 20, last loss 1.0 (pred 0.5, copy-last 0.6), 12000.5 samples/s\n")
    plan = {"num_samples": 300, "horizon": 5, "opt_steps": 30}
    (res / "plan_demo.json").write_text(json.dumps({**plan, "rows": [
        {"n_evals": 10, "batched_s": 0.5, "loop_s": 3.0, "peak_mib": 100}]}))
    (res / "plan_full.json").write_text(json.dumps({**plan, "rows": [
        {"n_evals": 1, "batched_s": 0.25, "loop_s": 0.3, "peak_mib": 1000},
        {"n_evals": 10, "batched_s": 2.0, "loop_s": 3.0, "peak_mib": 4000}]}))
    assert report_main([str(res), "--batches", "32", "256"]) == 0
    rows = {line.split(" | ")[0].lstrip("| "): line for line in capsys.readouterr().out.splitlines()}
    table = "\n".join(rows.values())
    assert "device NVIDIA H100" in table
    assert "**21.0x** | cache >= 20x re-encode | yes" in table
    assert "12,000 samples/s (last of 2 epochs, 20 steps in all; first epoch 800), 624,478 parameters" in table
    assert "batch 256 | not run" in table
    assert "**6.0x** | loop / batched >= 5x | yes" in table
    assert "10 episodes <= 1.5 s | **no**" in table  # 2.0 s for 10 episodes
    assert "timed out" in rows["same, `--horizon 25 --n-evals 10 --no-loop`"]
    assert report_main([str(tmp_path / "nowhere")]) == 2


@pytest.mark.slow
def test_gpu_check_runs_every_step_on_a_cpu(tmp_path):
    """The script the lead runs once on a lent GPU: every step must work the first time."""
    # the script's time budget is the GPU run's (8 minutes); here every step must run, on a CPU that may be shared
    env = {**os.environ, "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work"), "PYTHON": sys.executable,
           "BUDGET_S": "3000"}
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--device", "cpu", "--quick"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=3300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = tmp_path / "out" / "gpu_check"
    for name in ("env", "data", "gpu_tests", "train_profile_big", "train_throughput", "train_throughput_eager", "train_bs4", "train_bs4_default",
                 "plan_demo", "plan_full", "plan_full_nograph", "plan_full_nocudnn", "plan_full_ro", "plan_full_mac", "plan_full_eager",
                 "plan_long", "plan_hist3", "train_throughput_host"):
        assert (res / f"{name}.status").read_text().strip() == "0", (res / f"{name}.log").read_text()[-3000:]
    table = (res / "gpu_check.md").read_text()
    assert table.count("\n|") == 18 and "not run" not in table and "failed" not in table and "no result" not in table
    assert "batch 4, torch.compile default" in table and "torch.compile max-autotune-no-cudagraphs" in table
    assert "skipped" in table  # the CUDA tests, on a CPU
    tt = json.loads((res / "train_throughput.json").read_text())
    assert [r["mode"] for r in tt["rows"]] == ["cache", "frames"] and tt["rows"][0]["placement"] == "host"
    assert tt["rows"][0]["profile"]["host_s"] > 0 and tt["rows"][0]["profile"]["kernels"] == 0  # no CUDA here
    assert tt["compile"] is None  # auto: eager on a CPU
    assert json.loads((res / "train_throughput_host.json").read_text())["rows"][0]["placement"] == "host"
    assert torch.isfinite(torch.tensor(tt["speedup"]))
