"""Two "nodes" on this machine (two ``accelerate launch --num_machines 2`` commands, one CPU process each).

Node 1 reads its own copy of the dataset (as on a cluster without a shared filesystem): its local main
process builds the feature cache there. Run dirs that the nodes do not share stop both in one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _launch import free_port, run_together
from _synthetic_data import make_dataset

from training.run_dir.checkpoint import latest_checkpoint

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TINY = ["encoder.pretrained=false", "encoder.num_layers=1", "img_size=28", "wandb.mode=disabled",
        "training.batch_size=4", "training.warmup_steps=2", "training.val_ratio=0.25", "gpu.auto_select=false",
        "debug=true"]


def two_nodes(data: list[Path], runs: list[Path]) -> list[subprocess.CompletedProcess]:
    acc, port = str(Path(sys.executable).parent / "accelerate"), free_port()
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    cmds = [[acc, "launch", "--multi_gpu", "--num_machines", "2", "--machine_rank", str(rank),
             "--num_processes", "2", "--main_process_ip", "127.0.0.1", "--main_process_port", str(port),
             "--dynamo_backend", "no", "train_robomimic_compress.py", "env=demo",
             f"env.data_path={data[rank]}", f"hydra.run.dir={runs[rank]}", *TINY] for rank in (0, 1)]
    return run_together(cmds, ROOT, env, timeout=500)


def test_each_node_builds_its_own_cache_and_a_run_dir_must_be_shared(tmp_path):
    node0 = make_dataset(tmp_path / "node0" / "data", n_episodes=4, t_max=24, size=28)
    node1 = tmp_path / "node1" / "data"
    shutil.copytree(node0, node1)  # node 1's local copy: no feature cache there
    run = tmp_path / "run"
    for proc in two_nodes([node0, node1], [run, run]):
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert "training finished" in proc.stdout
    assert list((node1 / "feature_cache").iterdir()) and list((node0 / "feature_cache").iterdir())
    assert latest_checkpoint(run) is not None
    procs = two_nodes([node0, node1], [tmp_path / "node0" / "run", tmp_path / "node1" / "run"])
    for proc in procs:
        assert proc.returncode != 0
        assert "TypeError" not in proc.stdout
        errors = [line for line in proc.stdout.splitlines() if "[ERROR]" in line]
        assert len(errors) == 1 and "is not on a filesystem shared by every node (rank(s) 1 cannot see it)" in errors[0]
    assert latest_checkpoint(tmp_path / "node0" / "run") is None
