"""Evaluator pieces on the tiny generated Lift data: gripper opening, the history before a start, the
recorded actions past an episode's end, the goal observation in the simulator, latent distances."""

import numpy as np
import pytest
import torch

from planning.execution.episodes import EpisodeSpec
from planning.execution.evaluator import (
    _history,
    _reference_actions,
    goal_observation,
    gripper_opening,
    latent_distance,
    seed_simulation,
)
from tests.toy_dynamics import ToyLinearWorldModel


@pytest.fixture(scope="module")
def data(tiny_lift_dataset):
    from datasets.robomimic_dset import RobomimicEpisodes

    return RobomimicEpisodes(tiny_lift_dataset)


def test_gripper_closes_on_the_cube_by_the_end_of_a_demo(data):
    opening = [gripper_opening(data.meta, data.proprios[0, t].numpy()) for t in range(data.seq_len(0))]
    assert max(opening) > opening[-1] + 0.01  # opened to grasp, then closed
    assert opening[-1] > 0.01  # on the cube, which keeps the fingers apart
    meta = type("M", (), {"proprio_slices": []})()
    assert gripper_opening(meta, np.zeros(9)) is None  # no gripper in the proprio: not measured


def test_history_holds_the_frames_before_the_start_oldest_first(data):
    frames = data.frames(0)
    spec = EpisodeSpec(eval_index=0, episode=0, start=6, goal=9, seed=0)
    h = _history(data, spec, frames, k=2, fs=3)
    np.testing.assert_array_equal(h["images"][0], frames[0])
    np.testing.assert_array_equal(h["images"][1], frames[3])
    np.testing.assert_array_equal(h["actions"][1], data.actions[0, 3:6].reshape(-1).numpy())
    np.testing.assert_array_equal(h["last_action"], data.actions[0, 5].numpy())
    at_reset = _history(data, EpisodeSpec(0, 0, 0, 3, 0), frames, k=0, fs=3)["last_action"]
    assert at_reset[-1] == -1.0 and not at_reset[:-1].any()  # gripper open, arm still


def test_reference_actions_repeat_the_last_one_past_the_end(data):
    t = data.seq_len(1)
    ref = _reference_actions(data, EpisodeSpec(0, 1, t - 2, t, 0), 5)
    assert ref.shape == (5, data.actions.shape[-1])
    np.testing.assert_array_equal(ref[:2], data.actions[1, t - 2:t].numpy())
    np.testing.assert_array_equal(ref[2:], np.repeat(data.actions[1, t - 1:t].numpy(), 3, 0))


def test_goal_observation_in_the_simulator(data):
    from envs.robosuite_env import RobosuiteEnv

    seed_simulation(0)
    env = RobosuiteEnv.from_meta(data.meta, render=True)
    try:
        t, frames = data.seq_len(0), data.frames(0)
        obs, ok = goal_observation(env, data, EpisodeSpec(0, 0, 0, 2, 0), frames)
        np.testing.assert_array_equal(obs["image"], frames[2])  # a goal inside the episode: its stored frame
        assert not ok  # two steps in, nothing lifted yet
        obs, ok = goal_observation(env, data, EpisodeSpec(0, 0, 0, t, 0), frames)
        assert ok and obs["image"].shape == frames[0].shape  # the terminal state, rendered: a success
        # ... reached by stepping the last recorded action from frame T - 1, not frame T - 1 itself
        env.reset_to(data.sim_states[0, t - 1].numpy(), data.actions[0, :t - 1].numpy(),
                     data.sim_states[0, 0].numpy())
        stepped, _, _, _ = env.step(data.actions[0, t - 1].numpy())
        np.testing.assert_allclose(obs["state"], stepped["state"], atol=1e-9)
        assert np.abs(obs["state"] - data.states[0, t - 1].numpy()).max() > 1e-6
        with pytest.raises(ValueError, match="past episode"):
            goal_observation(env, data, EpisodeSpec(0, 0, 0, t + 1, 0), frames)
    finally:
        env.close()


def test_latent_distance_is_zero_at_the_goal():
    from datasets.normalizer import Normalizer

    model = ToyLinearWorldModel(patches=2, dim=2)
    ident = Normalizer(*(torch.zeros(4) if i % 2 == 0 else torch.ones(4) for i in range(6)))
    props = np.arange(8, dtype=np.float32).reshape(2, 4)
    obs = [{"image": np.zeros((2, 2, 3), np.uint8), "proprio": p} for p in props]
    z_goal = torch.as_tensor(props).reshape(2, 1, 2, 2)
    np.testing.assert_allclose(latent_distance(model, ident, obs, z_goal, "cpu"), [0.0, 0.0])
    np.testing.assert_allclose(latent_distance(model, ident, obs, z_goal + 1.0, "cpu"), [1.0, 1.0])
    offset = torch.tensor([[0.0, 2.0], [0.0, 0.0]]).reshape(1, 1, 2, 2)  # one of 4 entries off by 2
    np.testing.assert_allclose(latent_distance(model, ident, obs, z_goal + offset, "cpu"), [1.0, 1.0])  # 4 / 4
