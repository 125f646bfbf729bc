"""Test-wide settings (CPU only, offline wandb, headless MuJoCo) and the shared data fixtures.

The session fixtures build a real, tiny pipeline once per test session:
``tiny_lift_hdf5`` (robosuite scripted demos) -> ``tiny_lift_dataset`` (converted dir)
-> ``tiny_trained_run`` (a debug training run with a random frozen encoder).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_IMAGE_SIZE = 64  # rendered frame size of the tiny demo data
TINY_TRAIN_OVERRIDES = [
    "img_size=56",
    "training.epochs=2",
    "action_prior.steps=50",
    "training.batch_size=8",
]


@pytest.fixture(scope="session")
def tiny_lift_hdf5(tmp_path_factory) -> Path:
    """3 successful scripted Lift episodes with an agentview + eye-in-hand camera, robomimic layout."""
    from envs.generate_demos import generate_demos

    out = tmp_path_factory.mktemp("tiny_demo") / "lift_demo.hdf5"
    generate_demos(
        task="lift",
        n_episodes=3,
        output_path=out,
        camera_names=["agentview", "robot0_eye_in_hand"],
        image_size=TINY_IMAGE_SIZE,
        seed=0,
    )
    return out


@pytest.fixture(scope="session")
def tiny_lift_dataset(tiny_lift_hdf5, tmp_path_factory) -> Path:
    """``tiny_lift_hdf5`` converted to the dino-wm dataset directory format."""
    from convert_robomimic_to_dino_wm import convert

    out = tmp_path_factory.mktemp("tiny_converted") / "lift"
    convert(input_path=tiny_lift_hdf5, output_dir=out, camera="agentview", explore_branches=0)
    return out


def run_cli(args: list[str], cwd: Path = ROOT, timeout: float = 600, env: dict | None = None):
    """Run one of the project's CLIs in a subprocess; fail the test with its output if it fails."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
                             f"\n--- stderr\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_trained_run(tiny_lift_dataset, tmp_path_factory) -> Path:
    """A short training run (random frozen encoder, tiny images) on ``tiny_lift_dataset``."""
    run_dir = tmp_path_factory.mktemp("tiny_run") / "run"
    run_cli([
        "train_robomimic_compress.py", "env=demo", f"env.data_path={tiny_lift_dataset}",
        "debug=true", "encoder.pretrained=false", "wandb.mode=disabled", f"hydra.run.dir={run_dir}",
        *TINY_TRAIN_OVERRIDES,
    ])
    return run_dir
