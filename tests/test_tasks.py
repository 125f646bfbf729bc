"""Tests for tasks/ (the registry, the built-in entries, the vector layout they define) and the
``conf/task`` / ``conf/preset`` / ``conf/env`` config groups that choose data apart from the model."""

from __future__ import annotations

import ast
import os

import numpy as np
import pytest

from datasets.download_robomimic import HUB_ONLY, hub_filename, hub_tasks
from datasets.state_layout import vector_slices
from tasks import Task, get_task, known_tasks, task_for_env
from tasks.registry import TASKS, all_tasks, index_tasks
from tasks.scripted_policy import ScriptedPolicy
from tasks.state_layout import (
    OBJECT_POSE,
    PROPRIO_DIM,
    canonical_object,
    eef_position,
    extract_vectors,
    object_position,
)
from tests.conftest import ROOT

TOY = Task(name="toy", env_name="ToyEnv", object_parts=(("toy_pos", 3), ("toy_quat", 4), ("toy_rel", 2)),
           robosuite15_order=(7, 8, 0, 1, 2, 3, 4, 5, 6), action_dim=4, download_name="toy_hub",
           success=lambda env: env["done"], alignment_dim=3)


@pytest.fixture()
def toy(monkeypatch):
    """The registry with one more entry, as if TOY were in tasks/builtin.py (restored after the test)."""
    monkeypatch.setattr("tasks.registry.TASKS", index_tasks([*TASKS.values(), TOY]))
    return TOY


def _robot_obs(t: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"robot0_eef_pos": rng.normal(size=(t, 3)), "robot0_eef_quat": rng.normal(size=(t, 4)),
            "robot0_gripper_qpos": rng.normal(size=(t, 2)), "robot0_joint_vel": rng.normal(size=(t, 7)),
            "robot0_gripper_qvel": rng.normal(size=(t, 2))}


def test_builtin_tasks_and_their_entries():
    assert {"lift", "can", "square"} <= set(known_tasks())
    lift, can, square = get_task("lift"), get_task("can"), get_task("square")
    assert (lift.env_name, lift.object_dim, lift.max_steps, lift.hold_steps) == ("Lift", 10, 200, 15)
    assert (can.env_name, can.object_dim, can.max_steps, can.hold_steps) == ("PickPlaceCan", 14, 500, 10)
    assert square.env_name == "NutAssemblySquare" and square.object_dim == 14
    assert lift.has_policy and can.has_policy and not square.has_policy  # Square: converted and planned, not generated
    assert task_for_env("PickPlaceCan") is can and task_for_env("NoSuchEnv") is None
    assert hub_tasks() == (*[t.name for t in all_tasks() if t.download_name], *HUB_ONLY)
    assert hub_filename("can", "mh") == "v1.5/can/mh/demo_v15.hdf5"


def test_python_m_tasks_prints_the_registry(capsys):
    from tasks.__main__ import main

    for flag, wanted in (([], all_tasks()), (["--scripted"], [t for t in all_tasks() if t.has_policy]),
                         (["--on-hub"], [t for t in all_tasks() if t.download_name])):
        assert main(flag) == 0
        assert capsys.readouterr().out.split("\n") == [t.name for t in wanted] + [""], flag


def test_unknown_task_is_one_line_listing_the_known_ones():
    with pytest.raises(ValueError) as exc:
        get_task("stack")
    msg = str(exc.value)
    assert "\n" not in msg and "'stack'" in msg and ", ".join(known_tasks()) in msg


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "Bad Name"}, "lower-case identifier"),
    ({"object_parts": (("p", 3), ("q", 3))}, "pos 3 \\+ quat 4"),
    ({"robosuite15_order": (0, 1, 2)}, "permutation"),
    ({"action_dim": 0}, "action_dim"),
    ({"alignment_dim": 8}, "alignment_dim must be in 1..7"),
])
def test_task_entries_are_checked(kwargs, match):
    base = {"name": "t", "env_name": "T", "object_parts": (("p", 3), ("q", 4))}
    with pytest.raises(ValueError, match=match):
        Task(**{**base, **kwargs})


def test_the_index_is_read_only_and_refuses_two_entries_with_one_name_or_env():
    with pytest.raises(TypeError):
        TASKS["toy"] = TOY  # type: ignore[index]
    for clash in (Task(name="toy", env_name="Other", object_parts=TOY.object_parts),
                  Task(name="toy2", env_name="ToyEnv", object_parts=TOY.object_parts)):
        with pytest.raises(ValueError, match=f"task '{clash.name}' \\({clash.env_name}\\) clashes with 'toy'"):
            index_tasks([TOY, clash])
    assert list(index_tasks([TOY, *TASKS.values()])) == ["toy", "lift", "can", "square"]


def test_a_registered_task_defines_the_vector_layout(toy):
    """One entry is all the layout code needs: named parts, their order, the robosuite 1.5 order."""
    obs = _robot_obs()
    named = {"toy_pos": np.ones((2, 3)), "toy_quat": np.full((2, 4), 2.0), "toy_rel": np.full((2, 2), 3.0)}
    vec = extract_vectors({**obs, **named}, "ToyEnv")
    assert vec["state"].shape == (2, 9 + PROPRIO_DIM)
    np.testing.assert_array_equal(vec["state"][0, :9], [1, 1, 1, 2, 2, 2, 2, 3, 3])
    canonical = vec["state"][:, :9]
    stored15 = canonical[:, list(TOY.robosuite15_order)]  # what robosuite 1.5's object-state holds
    np.testing.assert_array_equal(canonical_object(stored15, "ToyEnv", "robosuite15"), canonical)
    from_state = extract_vectors({**obs, "object-state": stored15}, "ToyEnv")["state"]
    np.testing.assert_array_equal(from_state, vec["state"])
    with pytest.raises(ValueError, match="ToyEnv object vector has 10 dims, expected 9"):
        extract_vectors({**obs, "object": np.zeros((2, 10))}, "ToyEnv")
    state_sl, proprio_sl, _ = vector_slices("ToyEnv")
    assert [s.name for s in state_sl[:3]] == ["toy_pos", "toy_quat", "toy_rel"] and state_sl[-1].stop == 18
    assert proprio_sl[0].name == "robot0_eef_pos"
    assert "toy" in hub_tasks() and hub_filename("toy") == "v1.5/toy_hub/ph/demo_v15.hdf5"  # its download_name
    assert toy.is_success({"done": True}) and not toy.is_success({"done": False})


def test_an_unregistered_env_gets_the_generic_layout():
    obs = {**_robot_obs(1), "object": np.arange(12.0)[None]}
    assert extract_vectors(obs, "Mystery")["state"].shape == (1, 12 + PROPRIO_DIM)
    names = [s.name for s in vector_slices("Mystery", 12)[0][:3]]
    assert names == ["object_pos", "object_quat", "object_rest"]
    with pytest.raises(ValueError, match="object_dim must be given"):
        vector_slices("Mystery")


def test_positions_read_from_the_layout():
    state, proprio = np.arange(23.0), np.arange(9.0) + 100
    np.testing.assert_array_equal(object_position(state), state[:3])
    np.testing.assert_array_equal(eef_position(proprio), proprio[:3])
    assert object_position(np.zeros((4, 5, 23))).shape == (4, 5, 3)
    assert OBJECT_POSE.stop - OBJECT_POSE.start == 7
    pos = object_position(state)
    pos[0] = -1  # a copy: recording it never aliases the observation
    assert state[0] == 0


def test_scripted_policy_uses_the_entrys_phases_and_action_width():
    policy = ScriptedPolicy("lift", rng=np.random.default_rng(0), noise=0.0)
    assert [p.name for p in policy.phases] == [p.name for p in get_task("lift").scripted_phases]
    state = np.zeros(10 + PROPRIO_DIM)
    state[:3] = [0.1, 0.0, 0.8]
    proprio = np.zeros(PROPRIO_DIM)
    proprio[:3] = [0.0, 0.0, 1.0]
    action = policy({"state": state, "proprio": proprio})
    assert action.shape == (get_task("lift").action_dim,) and action[-1] == -1.0 and action[0] > 0
    offsets = [p.offset.copy() for p in get_task("lift").scripted_phases]
    policy.reset("high_grasp")  # a perturbation edits the policy's copy, never the registry's phases
    assert all(np.array_equal(a, p.offset) for a, p in zip(offsets, get_task("lift").scripted_phases))
    with pytest.raises(ValueError, match="has no scripted policy"):
        ScriptedPolicy("square")


def test_generator_refuses_a_task_without_a_policy(tmp_path):
    from envs.generate_demos import generate_demos, scripted_tasks

    assert scripted_tasks() == ["can", "lift"]
    with pytest.raises(ValueError, match="'square' has no scripted policy; choose one of"):
        generate_demos("square", 1, tmp_path / "x.hdf5", camera_names=None, progress=False)
    assert not list(tmp_path.iterdir())


def _string_literals(path) -> set[str]:
    """The string constants in a Python file's code (not its comments)."""
    tree = ast.parse(path.read_text())
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_a_task_is_one_registry_entry_plus_one_config_file():
    """Nothing outside tasks/builtin.py names a task's robosuite env, and every task has its config, which holds
    its name only (the rest is the registry's)."""
    code = [p for p in ROOT.rglob("*.py") if not {".venv", "tests", ".git"} & set(p.relative_to(ROOT).parts)]
    for task in all_tasks():
        naming = sorted(str(p.relative_to(ROOT)) for p in code if task.env_name in _string_literals(p))
        assert naming == ["tasks/builtin.py"], (task.env_name, naming)
    configs = {p.stem for p in (ROOT / "conf" / "task").glob("*.yaml")}
    assert configs == set(known_tasks())
    for name in configs:
        assert _train_config(f"task={name}")["task"] == {"name": name}


def test_alignment_dim_comes_from_the_task_unless_set(toy):
    from omegaconf import OmegaConf

    from training.model_config import apply_task, world_model_spec

    cfg = OmegaConf.create(_train_config())
    assert cfg.alignment_dim is None and world_model_spec(cfg).alignment_dim == get_task("lift").alignment_dim == 7
    apply_task(cfg)
    assert cfg.alignment_dim == 7  # recorded as a number in the run's config
    cfg.task.name, cfg.alignment_dim = "toy", None
    apply_task(cfg)
    assert cfg.alignment_dim == TOY.alignment_dim
    set_here = OmegaConf.create(_train_config("alignment_dim=4", "task=can"))
    apply_task(set_here)
    assert set_here.alignment_dim == 4
    cfg.task.name = "stack"
    with pytest.raises(ValueError, match=r"^unknown task 'stack' \(known: "):
        apply_task(cfg)


def _train_config(*overrides: str) -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train_robomimic_compress", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


MODEL_KEYS = ("img_size", "num_hist", "num_pred", "frameskip", "projected_dim", "alignment_dim", "predictor",
              "encoder", "model", "training")
DATA = os.environ.get("DINO_WM_DATA_ROOT", "data")
CPU = {"img_size": 56, "num_hist": 1, "num_pred": 3, "predictor": "vit_cpu_small", "epochs": 60}
GPU = {"img_size": 196, "num_hist": 3, "num_pred": 1, "predictor": "vit", "epochs": 100}


def _size(cfg: dict) -> dict:
    return {"img_size": cfg["img_size"], "num_hist": cfg["num_hist"], "num_pred": cfg["num_pred"],
            "predictor": cfg["predictor"]["name"], "epochs": cfg["training"]["epochs"]}


@pytest.mark.parametrize("task", ["can", "square"])
def test_choosing_a_task_or_its_data_never_changes_the_model(task):
    base = _train_config()
    for overrides in ((f"task={task}",), (f"task={task}", "env=robomimic")):
        cfg = _train_config(*overrides)
        assert {k: cfg[k] for k in MODEL_KEYS} == {k: base[k] for k in MODEL_KEYS}, overrides
        assert cfg["task"]["name"] == task and f"/{task}/" in cfg["env"]["data_path"]


def test_the_default_is_the_cpu_demo_on_lift_and_presets_pick_the_size():
    cfg = _train_config()
    assert _size(cfg) == CPU and cfg["name"] == "demo_lift" and cfg["env"]["data_path"] == f"{DATA}/demo/lift/dino_wm"
    assert _size(_train_config("preset=gpu_full")) == GPU
    assert _size(_train_config("task=can", "env=robomimic", "preset=gpu_full", "predictor=vit_cpu_small"))["predictor"] == "vit_cpu_small"


@pytest.mark.parametrize("replan_last, goal_H, schedule", [
    (0, 9, 1),                # every step
    (3, 9, (6, 1, 1, 1)),     # the first plan's first 6 steps open loop, then a re-plan before each of the last 3
    (3, 20, (17, 1, 1, 1)),
    (3, 3, (1, 1, 1)),        # no open-loop part left
    (3, 2, (1, 1)),
    (3, 1, 1),
])
def test_an_mpc_recipe_schedules_re_plans_before_the_last_steps(replan_last, goal_H, schedule):
    from tasks.task import MPCRecipe

    got = MPCRecipe(replan_last=replan_last).schedule(goal_H)
    assert got == schedule
    assert (got * goal_H if isinstance(got, int) else sum(got)) == goal_H  # every plan ends at the goal time


def test_lift_plans_by_its_measured_recipe_and_can_every_step():
    from tasks.task import MPCRecipe

    assert get_task("lift").mpc.schedule(9) == (6, 1, 1, 1)
    assert dict(get_task("lift").mpc.later_objective)["state_position"] == "eef"
    assert get_task("can").mpc == MPCRecipe() and get_task("can").mpc.schedule(20) == 1
    with pytest.raises(ValueError, match="replan_last"):
        MPCRecipe(replan_last=-1)
