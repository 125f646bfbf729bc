"""utils.config_choices: a config name or group choice the conf folder lacks, found before Hydra runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from utils.config_choices import hydra_args, unknown_choice

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


@pytest.mark.parametrize("argv", [
    [], ["task=can", "preset=gpu_full", "env=demo", "planner=cem"], ["training.epochs=abc"],
    ["--config-name=plan"], ["--config-name", "plan"], ["-cn", "plan"], ["~task"],
    ["hydra/help=train"], ["+predictor=vit"], ["task=null"], ["hydra.run.dir=/x"], ["--help"],
    ["-m", "planner=cem,random"], ["task=choice(lift,can)"], ["task=glob(*)"], ["--config-name=plan.yaml"],
    ["--config-dir=/elsewhere", "task=mine"], ["hydra.searchpath=[file:///x]", "task=mine"],
    ["-cd", "/elsewhere", "task=mine"], ["--config-dir", "/elsewhere", "--config-name=mine"],
    # another primary config folder: its choices are Hydra's to check, in every spelling Hydra parses
    ["--config-path=/elsewhere", "task=mine"], ["--config-path", "/elsewhere", "--config-name=mine"],
    ["-cp", "/elsewhere", "-cn", "mine", "task=mine"], ["-cp=/elsewhere", "task=mine"],
    ["--config-p", "/elsewhere", "task=mine"], ["task=mine", "--config-path", "/elsewhere"],
    # what Hydra's own parser refuses or answers itself is left to Hydra's message
    ["task=foo", "-cn", "plan", "env=bar"], ["--version"], ["--cfg", "nope", "task=foo"],
])
def test_what_the_conf_folder_holds_passes(argv):
    assert unknown_choice(argv, CONF) is None


@pytest.mark.parametrize("argv, says", [
    (["task=foo"], "task=foo: no such task (choose from can, lift, square)"),
    (["env=demo", "preset=gpu"], "preset=gpu: no such preset (choose from cpu_demo, gpu_full)"),
    (["+planner=cme"], "planner=cme: no such planner (choose from cem, cem_cpu, "),
    (["--config-name=nope"], "--config-name=nope: no such config (choose from plan, plan_robomimic_align_recon,"),
    (["-cn", "nope"], "--config-name=nope: no such config"),
    (["--config-n", "nope"], "--config-name=nope: no such config"),
    (["-cn=nope"], "--config-name=nope: no such config"),
    (["-cn", "plan", "--cfg", "job", "task=foo"], "task=foo: no such task"),
    (["-m", "-cn", "plan", "planner=cem,random", "task=foo"], "task=foo: no such task"),
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


def test_flag_values_are_not_read_as_overrides():
    # the value of --package / -cn is not a group choice even when it holds '='
    assert unknown_choice(["--cfg", "job", "--package", "task=foo"], CONF) is None
    assert hydra_args(["-cp", "c=d", "-cn", "plan", "x=1"]).overrides == ["x=1"]


def test_a_config_path_run_gets_past_the_check_to_hydra(tmp_path):
    # a copy of conf/ with one more task: refused against conf/, composed by Hydra with --config-path
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "task" / "mine.yaml").write_text("name: mine\n")
    assert unknown_choice(["task=mine"], CONF).startswith("task=mine: no such task")
    proc = subprocess.run([sys.executable, "train_robomimic_compress.py", "-cp", str(conf), "task=mine",
                           "--cfg", "job"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "name: mine" in proc.stdout
