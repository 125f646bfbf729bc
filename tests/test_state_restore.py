"""Tests for envs/state_restore.py: the controller state a flattened MuJoCo state lacks.

A real Lift env (no renderer) is built once; the tiny scripted Lift file gives a recorded episode.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from envs.robosuite_env import RobosuiteEnv
from envs.state_restore import RAMP_STEPS, reset_gripper_ramp, restore_gripper_ramp, restore_nullspace_target


@pytest.fixture(scope="module")
def episode(tiny_lift_hdf5):
    with h5py.File(tiny_lift_hdf5, "r") as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        g = f["data/demo_0"]
        return env_args, g["states"][()], g["actions"][()]


@pytest.fixture(scope="module")
def env(episode):
    env_args, _, _ = episode
    env = RobosuiteEnv(env_args["env_name"], env_args["env_kwargs"], render=False)
    yield env
    env.close()


def _ramp(env: RobosuiteEnv) -> np.ndarray:
    return np.array(env.env.robots[0].gripper["right"].current_action, dtype=np.float64)


def _arm_target(env: RobosuiteEnv) -> np.ndarray:
    return np.array(env.env.robots[0].part_controllers["right"].initial_joint, dtype=np.float64)


def test_the_ramp_follows_the_actions_stepped_and_restores_from_them(env, episode):
    """Stepping the recorded actions builds the gripper ramp; rebuilding it from those same actions
    gives the same values (the ramp is a function of the past gripper commands only)."""
    _, states, actions = episode
    env.reset_to(states[0], initial_sim_state=states[0])
    k = 12
    for a in actions[:k]:
        env.step(a)
    stepped = _ramp(env)
    assert np.abs(stepped).max() > 0  # the commands moved it away from zero
    reset_gripper_ramp(env.env)  # the restore must rebuild the ramp, not find it already there
    restore_gripper_ramp(env.env, actions[:k])
    np.testing.assert_allclose(_ramp(env), stepped, atol=1e-12)
    reset_gripper_ramp(env.env)
    restore_gripper_ramp(env.env, actions[k - RAMP_STEPS:k])  # the last RAMP_STEPS saturate the ramp ...
    if np.all(np.sign(actions[k - RAMP_STEPS:k, -1]) == np.sign(actions[k - 1, -1])):
        np.testing.assert_allclose(_ramp(env), stepped, atol=1e-12)  # ... when the command kept its sign


def test_reset_and_empty_history_zero_the_ramp(env, episode):
    _, _, actions = episode
    restore_gripper_ramp(env.env, actions[:8])
    assert _ramp(env).any()
    reset_gripper_ramp(env.env)
    assert not _ramp(env).any()
    restore_gripper_ramp(env.env, actions[:8])
    assert _ramp(env).any()
    restore_gripper_ramp(env.env, None)
    assert not _ramp(env).any()
    restore_gripper_ramp(env.env, np.zeros((0, 7)))
    assert not _ramp(env).any()


def test_past_actions_must_be_a_matrix(env):
    with pytest.raises(ValueError, match=r"\[K, action_dim\]"):
        restore_gripper_ramp(env.env, np.zeros(7))


def test_nullspace_target_comes_from_the_initial_state(env, episode):
    _, states, _ = episode
    env.reset_to(states[5])
    robot = env.env.robots[0]
    restore_nullspace_target(env.env, states[0])
    expected = states[0][1 + np.asarray(robot._ref_joint_pos_indexes)]
    np.testing.assert_allclose(_arm_target(env), expected)
    moved = states[0].copy()
    moved[1 + np.asarray(robot._ref_joint_pos_indexes)] += 0.1
    restore_nullspace_target(env.env, moved)
    np.testing.assert_allclose(_arm_target(env), expected + 0.1)
    restore_nullspace_target(env.env, None)  # None: left as it is
    np.testing.assert_allclose(_arm_target(env), expected + 0.1)
