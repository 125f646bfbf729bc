"""A task added as one registry entry plus one config file (Square: ``tasks/builtin.py`` SQUARE,
``conf/task/square.yaml``, no scripted policy) goes through the converter, training and planning.

The robomimic-layout file is recorded here from the real NutAssemblySquare env with seeded random
actions, its ``obs/object`` stored in robosuite 1.5's ``object-state`` order (the relative parts
first), so the converter must also find that order from the simulator.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow

N_EPISODES, STEPS, IMAGE_SIZE = 3, 16, 56
ROBOT_KEYS = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "robot0_gripper_qvel", "robot0_joint_vel")


def _record(env, rng) -> dict:
    """One episode of small random arm motions with the gripper open, robomimic arrays."""
    env.reset()
    rec = {"states": [], "actions": [], "obs": []}
    for _ in range(STEPS):
        rec["states"].append(env.get_sim_state())
        raw = env.last_raw_obs
        rec["obs"].append({"object": np.asarray(raw["object-state"]), **{k: np.asarray(raw[k]) for k in ROBOT_KEYS}})
        action = np.r_[rng.uniform(-0.4, 0.4, 3), np.zeros(3), -1.0]
        env.step(action)
        rec["actions"].append(action)
    return rec


def write_square_file(path: Path, seed: int = 0) -> None:
    """A states-only robomimic hdf5 of ``N_EPISODES`` NutAssemblySquare episodes (no images)."""
    from envs.generate_demos import demo_env_kwargs
    from envs.robosuite_env import RobosuiteEnv
    from tasks import get_task

    task = get_task("square")
    kwargs = demo_env_kwargs([], IMAGE_SIZE)
    rng = np.random.default_rng(seed)
    with RobosuiteEnv(task.env_name, {**kwargs, "seed": seed}, render=False) as env, h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": task.env_name, "type": 1, "env_kwargs": kwargs})
        for i in range(N_EPISODES):
            rec = _record(env, rng)
            grp = data.create_group(f"demo_{i}")
            grp.attrs["num_samples"], grp.attrs["model_file"] = STEPS, env.model_xml()
            grp.create_dataset("states", data=np.stack(rec["states"]))
            grp.create_dataset("actions", data=np.stack(rec["actions"]))
            grp.create_dataset("rewards", data=np.zeros(STEPS))
            grp.create_dataset("dones", data=np.eye(1, STEPS, STEPS - 1, dtype=np.int64)[0])
            for key in rec["obs"][0]:
                grp.create_dataset(f"obs/{key}", data=np.stack([o[key] for o in rec["obs"]]))
        data.attrs["total"] = N_EPISODES * STEPS


@pytest.fixture(scope="module")
def square_dataset(tmp_path_factory) -> Path:
    from convert_robomimic_to_dino_wm import convert

    root = tmp_path_factory.mktemp("square")
    write_square_file(root / "square.hdf5")
    convert(root / "square.hdf5", root / "dino_wm", camera="agentview", image_size=IMAGE_SIZE, progress=False,
            explore_branches=0)
    return root / "dino_wm"


def test_the_converter_uses_the_square_entry(square_dataset):
    import torch

    from datasets.meta import DatasetMeta

    meta = DatasetMeta.load(square_dataset)
    assert meta.env_name == "NutAssemblySquare" and meta.extra["frames_source"] == "rendered"
    assert meta.extra["object_layout"] == "robosuite15"  # found by matching the simulator
    assert [s.name for s in meta.state_slices[:4]] == ["SquareNut_pos", "SquareNut_quat",
                                                       "SquareNut_to_robot0_eef_pos", "SquareNut_to_robot0_eef_quat"]
    assert meta.state_dim == 23 and meta.action_dim == 7 and meta.n_episodes == N_EPISODES
    with h5py.File(square_dataset.parent / "square.hdf5", "r") as f:
        stored = f["data/demo_1/obs/object"][()]
    states = torch.load(square_dataset / "states.pth", weights_only=True)
    np.testing.assert_allclose(states[1, :STEPS, :3].numpy(), stored[:, 7:10], atol=1e-6)  # nut pos first


def test_train_and_plan_on_square(square_dataset, tmp_path):
    from hydra import compose, initialize_config_dir

    import plan

    run_dir = tmp_path / "run"
    run_cli(["train_robomimic_compress.py", "task=square", f"env.data_path={square_dataset}", "debug=true",
             "encoder.pretrained=false", "encoder.num_layers=1", "img_size=28", "training.epochs=1",
             "training.batch_size=4", "wandb.mode=disabled", f"hydra.run.dir={run_dir}"])
    saved = json.loads((run_dir / "run_info.json").read_text())["config"]
    assert saved["task"]["name"] == "square" and saved["img_size"] == 28
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="plan", overrides=[
            f"ckpt_base_path={run_dir}", "n_evals=1", "goal_H=2", "planner=cem", "planner.num_samples=8",
            "planner.topk=2", "planner.opt_steps=1", "episodes.success_goals_only=false", "progress=false",
            "outputs.videos=false", "outputs.plots=false", "device=cpu"])
    out = tmp_path / "plan"
    summary = plan.run_plan(cfg, out)
    assert summary["n_evals"] == 1
    rec = json.loads((out / "logs.json").read_text())["episodes"][0]
    assert rec["n_env_steps"] == 10 and np.isfinite(rec["final_object_dist"])
    np.testing.assert_allclose(rec["goal_object_pos"], _nut_position(square_dataset, rec["episode"], rec["goal"]),
                               atol=1e-4)  # the planner's "object" is the square nut
    final = np.asarray(rec["final_object_pos"]) - np.asarray(rec["goal_object_pos"])
    assert np.linalg.norm(final) == pytest.approx(rec["final_object_dist"], abs=1e-6)  # where it ended, not only how far
    assert len(rec["final_eef_pos"]) == 3


def _nut_position(dataset: Path, ep: int, t: int) -> np.ndarray:
    """robosuite's own ``SquareNut_pos`` at env step ``t`` of episode ``ep`` (t == T: after the last action)."""
    from datasets.robomimic_dset import RobomimicEpisodes
    from envs.robosuite_env import RobosuiteEnv

    data = RobomimicEpisodes(dataset)
    last = data.seq_len(ep)
    with RobosuiteEnv.from_meta(data.meta, render=False) as env:
        k = min(t, last - 1)
        env.reset_to(data.sim_states[ep, k].numpy(), data.actions[ep, :k].numpy(), data.sim_states[ep, 0].numpy())
        if t == last:
            env.step(data.actions[ep, last - 1].numpy())
        return np.asarray(env.raw_observation()["SquareNut_pos"])
