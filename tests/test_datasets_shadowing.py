"""Our top-level ``datasets`` package shadows Hugging Face ``datasets``: transformers and accelerate must
still import and work with the repository root first on sys.path (as when running our CLIs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import sys
sys.path.insert(0, {root!r})
import datasets
assert datasets.__file__.startswith({root!r}), datasets.__file__
import datasets.meta, datasets.normalizer  # ours
import transformers
from transformers import Dinov2Config, Dinov2Model
import torch
m = Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, patch_size=14,
                             image_size=28, intermediate_size=64))
out = m(pixel_values=torch.rand(1, 3, 28, 28)).last_hidden_state
assert out.shape == (1, 5, 32), out.shape
import accelerate
from accelerate import Accelerator
acc = Accelerator(cpu=True)
model, opt = acc.prepare(torch.nn.Linear(2, 1), torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
from accelerate.utils import is_datasets_available
print("ok", transformers.__version__, accelerate.__version__, is_datasets_available())
"""


def test_transformers_and_accelerate_work_beside_our_datasets_package():
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(root=str(ROOT))], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok")


def test_feature_cache_cli_runs_as_a_module_from_the_root():
    proc = subprocess.run([sys.executable, "-m", "training.cache_features", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "feature_cache" in proc.stdout
