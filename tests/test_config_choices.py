"""utils.config_choices: a config name or group choice the conf folder lacks, found before Hydra runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from utils.config_choices import unknown_choice

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


@pytest.mark.parametrize("argv", [
    [], ["task=can", "preset=gpu_full", "env=demo_lift", "planner=cem"], ["training.epochs=abc"],
    ["--config-name=plan_projected_latent"], ["--config-name", "plan"], ["-cn", "plan"], ["~task"],
    ["hydra/help=train"], ["+predictor=vit"], ["task=null"], ["hydra.run.dir=/x"], ["--help"],
    ["-m", "planner=cem,random"], ["task=choice(lift,can)"], ["task=glob(*)"], ["--config-name=plan.yaml"],
    ["--config-dir=/elsewhere", "task=mine"], ["hydra.searchpath=[file:///x]", "task=mine"],
])
def test_what_the_conf_folder_holds_passes(argv):
    assert unknown_choice(argv, CONF) is None


@pytest.mark.parametrize("argv, says", [
    (["task=foo"], "task=foo: no such task (choose from can, lift, square)"),
    (["env=demo", "preset=gpu"], "preset=gpu: no such preset (choose from cpu_demo, gpu_full)"),
    (["+planner=cme"], "planner=cme: no such planner (choose from cem, cem_cpu, hold, prior,"),
    (["--config-name=nope"], "--config-name=nope: no such config (choose from plan, plan_projected_latent,"),
    (["-cn", "nope"], "--config-name=nope: no such config"),
])
def test_an_unknown_choice_is_one_line_with_the_choices(argv, says):
    assert unknown_choice(argv, CONF).startswith(says)


@pytest.mark.parametrize("script, arg", [("train_robomimic_compress.py", "task=foo"), ("plan.py", "planner=foo")])
def test_the_entry_points_refuse_it_before_hydra_makes_a_run_dir(tmp_path, script, arg):
    proc = subprocess.run([sys.executable, script, arg, f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: {arg}: no such ") and proc.stderr.count("\n") == 1
    assert not (tmp_path / "run").exists()
