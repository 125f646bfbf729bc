"""The commands users of the project this one replaces already type (its README) work, or stop in one line.

Each is checked as in tests/_command_check.py (composed, launched with a recording interpreter, run over
fake GPUs or with --dry-run); the tests below pin what the old spellings now mean.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from _command_check import ROOT, check_command, parse

LEGACY = [
    "./setup_and_prepare.sh",
    './setup_and_prepare.sh "ph,mh" "can,lift,square"',
    "./select_best_gpus.py single",
    "./select_best_gpus.py",
    "./select_best_gpus.py single --quiet",
    "./select_best_gpus.py single --memory-weight 0.8 --util-weight 0.2",
    "BEST_GPUS=$(./select_best_gpus.py)",
    "python train_robomimic_compress.py --config-name=train_robomimic_compress",
    "python train_robomimic_compress.py --config-name=train_robomimic_compress training.epochs=1 debug=true",
    "CUDA_VISIBLE_DEVICES=5 python train_robomimic_compress.py --config-name=train_robomimic_compress",
    "CUDA_VISIBLE_DEVICES=$BEST_GPUS accelerate launch --num_processes=2 --gpu_ids=0,1 train_robomimic_compress.py "
    "--config-name=train_robomimic_compress training.batch_size=8",
    "CUDA_VISIBLE_DEVICES=$BEST_GPUS accelerate launch --mixed_precision=fp16 --num_processes=2 --gpu_ids=0,1 "
    "train_robomimic_compress.py --config-name=train_robomimic_compress",
    "./plan.sh",
    "GOAL_H=10 N_EVALS=5 ./plan.sh",
    "N_EVALS=2 timeout 180 ./plan.sh",
    "python convert_robomimic_to_dino_wm.py --input /path/to/hdf5 --output /path/to/ph_converted_final",
]


@pytest.mark.parametrize("text", LEGACY)
def test_old_command_still_works(text, tmp_path, monkeypatch):
    check_command(parse(text, "old README"), tmp_path, monkeypatch)


def test_the_old_gradient_checkpointing_key_stops_in_one_line_naming_todays():
    """``model.gradient_checkpointing=true`` (the old project's name) is ``training.grad_checkpointing`` here."""
    cmd = [sys.executable, "train_robomimic_compress.py", "--config-name=train_robomimic_compress",
           "model.gradient_checkpointing=true"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "model.gradient_checkpointing" in proc.stderr and "training.grad_checkpointing" in proc.stderr


def test_launcher_precision_is_honoured_or_a_conflict_stops_in_one_line():
    from training.run_dir.launch_settings import ConfigConflict, explicit_keys, resolve_mixed_precision

    env = {"ACCELERATE_MIXED_PRECISION": "fp16"}
    assert resolve_mixed_precision("no", explicit=False, environ=env) == "fp16"
    assert resolve_mixed_precision("fp16", explicit=True, environ=env) == "fp16"
    assert resolve_mixed_precision("bf16", explicit=True, environ={"ACCELERATE_MIXED_PRECISION": "no"}) == "bf16"
    assert resolve_mixed_precision("bf16", explicit=False, environ={}) == "bf16"
    for hydra_value, explicit in (("bf16", True), ("bf16", False), ("no", True)):
        with pytest.raises(ConfigConflict, match=r"^accelerate launch --mixed_precision=fp16 conflicts with "
                                                 rf"training.mixed_precision={hydra_value}: "):
            resolve_mixed_precision(hydra_value, explicit, env)
    assert explicit_keys(["training.mixed_precision=no", "+a.b=1", "env=x"]) == {"training.mixed_precision", "a.b", "env"}


def test_setup_positional_form_means_dataset_types_then_tasks_and_knows_square():
    def dry(*args):
        return subprocess.run(["bash", str(ROOT / "setup_and_prepare.sh"), "--dry-run", *args], capture_output=True,
                              text=True, timeout=60, cwd=ROOT)

    out = dry("ph,mh", "can,lift,Square").stdout
    wanted = [f"robomimic: download {t}/{d} " for t in ("can", "lift", "square") for d in ("ph", "mh")]
    assert [line.split("->")[0] for line in out.splitlines() if line.startswith("robomimic:")] == wanted
    assert "download can/mh " in dry("mh").stdout  # the old default task
    assert dry("--tasks", "square", "--dataset-types", "mh").stdout.count("robomimic: download square/mh ") == 1
    for args, msg in ((("ph", "can,squre"), "unknown robomimic task 'squre'"),
                      (("xx", "can"), "unknown robomimic dataset type 'xx'"),
                      (("ph", "can", "lift"), "at most two positional arguments"),
                      (("--tasks", "can", "ph"), "either positionally or with --dataset-types/--tasks")):
        proc = dry(*args)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and msg in proc.stderr, proc.stderr
    from datasets.download_robomimic import DATASET_TYPES

    text = (ROOT / "setup_and_prepare.sh").read_text()
    assert f'KNOWN_DTYPES="{" ".join(DATASET_TYPES)}"' in text and "KNOWN_TASKS" not in text  # tasks: the registry
