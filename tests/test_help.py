"""plan.py --help and train_robomimic_compress.py --help (conf/hydra/help/): what to type, every choice there is."""

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _help(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, script, *args, "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-1000:]
    return proc.stdout


def _options(group: str) -> set[str]:
    return {p.stem for p in (ROOT / "conf" / group).glob("*.yaml")}


@pytest.mark.parametrize("config", ["plan", "plan_robomimic_align_recon"])
def test_plan_help_names_every_planner_and_the_run_it_needs(config):
    text = _help("plan.py", f"--config-name={config}")
    assert text.startswith("plan.py: plan with a trained world model")
    planners = re.search(r"^  planner +(.*)$", text, re.M).group(1)
    assert {w for w in re.findall(r"[a-z_]+", planners)} >= _options("planner")
    assert "ckpt_base_path: null" in text and "== Config" in text  # the resolved config follows
    assert "is powered by Hydra" not in text


def test_train_help_names_every_task_preset_and_env():
    text = _help("train_robomimic_compress.py", "task=can")
    assert text.startswith("train_robomimic_compress.py: train the DINO world model")
    choices = text.split("Choices (group=option):")[1].split("Main settings")[0]
    for group in ("task", "preset", "env", "encoder", "predictor"):
        assert _options(group) <= set(re.findall(r"[a-z_0-9]+", choices)), group
    assert "name: can" in text  # the config shown is the one these overrides give
