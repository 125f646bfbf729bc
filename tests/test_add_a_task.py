"""A fourth task added by the README's "Add a task" recipe alone: in a copy of the tree, one entry in
``tasks/builtin.py`` (Lift under another name, ``lift_copy``) and ``conf/task/lift_copy.yaml``; then the set-up
script, the demo generator, the converter, a debug training step and a one-evaluation plan all take it.

A real new task has its robosuite env already (Stack, Door, ...); Lift's copy needs one under its own name, so the
subprocesses get ``LiftCopy`` (Lift, renamed) from a ``sitecustomize`` outside the tree: the simulator's side, not
the project's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._tree_copy import append, changed_files, copy_tree, run_in

pytestmark = pytest.mark.slow

ENTRY = '''

from dataclasses import replace  # noqa: E402

LIFT_COPY = replace(LIFT, name="lift_copy", env_name="LiftCopy")  # Lift under another name (its hub files too)
BUILTIN_TASKS = (*BUILTIN_TASKS, LIFT_COPY)
'''
# Importing robosuite imports glfw, whose library probe runs `python -c` children; they read this sitecustomize too,
# so the import is guarded by a variable those children inherit (else each child imports robosuite again: a fork bomb).
SIMULATOR = """import os

if not os.environ.get("LIFT_COPY_IMPORTING"):
    os.environ["LIFT_COPY_IMPORTING"] = "1"
    from robosuite.environments.manipulation.lift import Lift

    class LiftCopy(Lift):
        pass

    del os.environ["LIFT_COPY_IMPORTING"]
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The copy with the new task (and its env), and the environment its commands run in."""
    root = tmp_path_factory.mktemp("add_a_task")
    copy = copy_tree(root / "tree")
    append(copy / "tasks" / "builtin.py", ENTRY)
    (copy / "conf" / "task" / "lift_copy.yaml").write_text("name: lift_copy\n")
    (root / "site").mkdir()
    (root / "site" / "sitecustomize.py").write_text(SIMULATOR)
    return copy, {"PYTHONPATH": str(root / "site"), "DINO_WM_DATA_ROOT": str(copy / "data")}


def test_the_task_is_one_entry_and_one_config_file(tree):
    copy, env = tree
    assert changed_files(copy) == ["conf/task/lift_copy.yaml", "tasks/builtin.py"]
    assert run_in(copy, ["-m", "tasks", "--scripted"], env).stdout.split() == ["lift", "can", "lift_copy"]
    plan = run_in(copy, ["bash", "setup_and_prepare.sh", "--dry-run", "--tasks", "lift_copy", "--demo", "--demo-task",
                         "lift_copy"], env).stdout
    assert f"robomimic: download lift_copy/ph -> {copy}/data/robomimic/lift_copy/ph/dino_wm" in plan
    assert f"demo: 24 scripted lift_copy episodes -> {copy}/data/demo/lift_copy/dino_wm" in plan


def test_generate_convert_train_and_plan(tree):
    copy, env = tree
    data = copy / "data" / "demo" / "lift_copy"
    run_in(copy, ["-m", "envs.generate_demos", "--task", "lift_copy", "--n-episodes", "3", "--output",
                  str(data / "demo.hdf5"), "--cameras", "agentview", "--image-size", "56", "--seed", "0"], env)
    run_in(copy, ["convert_robomimic_to_dino_wm.py", "--input", str(data / "demo.hdf5"), "--output",
                  str(data / "dino_wm"), "--camera", "agentview", "--explore-branches", "0"], env)
    assert json.loads((data / "dino_wm" / "meta.json").read_text())["env_name"] == "LiftCopy"
    run = copy / "outputs" / "run"
    run_in(copy, ["train_robomimic_compress.py", "task=lift_copy", "debug=true", "encoder.pretrained=false",
                  "encoder.num_layers=1", "img_size=28", "training.epochs=1", "training.batch_size=4",
                  "action_prior.train=false", "cost_to_go.train=false", "wandb.mode=disabled",
                  f"hydra.run.dir={run}"], env)  # env=demo: the task's own data folder
    saved = json.loads((run / "run_info.json").read_text())
    assert saved["config"]["task"] == {"name": "lift_copy"} and saved["config"]["alignment_dim"] == 7
    assert saved["dataset_path"] == str(data / "dino_wm")
    out = copy / "plan_outputs" / "one"
    run_in(copy, ["plan.py", f"ckpt_base_path={run}", "n_evals=1", "goal_H=2", "planner=cem", "planner.num_samples=8",
                  "planner.topk=2", "planner.opt_steps=1", "episodes.success_goals_only=false", "progress=false",
                  "outputs.videos=false", "outputs.plots=false", "device=cpu", "wandb.mode=disabled",
                  f"hydra.run.dir={out}"], env)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_evals"] == 1 and summary["planner"] == "cem"
