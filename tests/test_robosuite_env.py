"""Tests for envs/ (RobosuiteEnv, controller configs, state restore) and the vector layout (tasks/state_layout.py, datasets/state_layout.py).

The replay tests use the session fixture ``tiny_lift_hdf5`` (3 scripted Lift demos, 64x64 cameras).
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np
import pytest

from datasets.meta import DatasetMeta
from datasets.model_files import episode_model_xml
from datasets.state_layout import vector_slices
from datasets.video_io import psnr, read_video
from envs.controller_config import composite_controller_config, make_kwargs
from envs.model_xml import localize_model_xml
from envs.robosuite_env import RobosuiteEnv
from tasks.state_layout import canonical_object, extract_vectors

OLD_OSC = {  # robosuite <= 1.4 form, as older robomimic files store it
    "type": "OSC_POSE", "input_max": 1, "input_min": -1, "output_max": [0.05, 0.05, 0.05, 0.5, 0.5, 0.5],
    "output_min": [-0.05, -0.05, -0.05, -0.5, -0.5, -0.5], "kp": 150, "damping_ratio": 1,
    "impedance_mode": "fixed", "kp_limits": [0, 300], "damping_ratio_limits": [0, 10],
    "position_limits": None, "orientation_limits": None, "uncouple_pos_ori": True,
    "control_delta": True, "interpolation": None, "ramp_ratio": 0.2,
}


@pytest.fixture(scope="module")
def demo(tiny_lift_hdf5):
    """(env_args, demo_0 arrays) of the tiny Lift file."""
    import json

    with h5py.File(tiny_lift_hdf5, "r") as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        g = f["data/demo_0"]
        arrays = {k: g[k][()] for k in ("states", "actions")}
        arrays["obs"] = {k: g["obs"][k][()] for k in g["obs"]}
        arrays["model_file"] = g.attrs["model_file"]
    return env_args, arrays


@pytest.fixture(scope="module")
def lift_env(demo):
    env_args, _ = demo
    env = RobosuiteEnv(env_args["env_name"], env_args["env_kwargs"], camera_name="agentview",
                       image_size=64, render=True)
    yield env
    env.close()


# ---------------------------------------------------------------- controller configs / kwargs
def test_old_and_new_controller_configs_give_the_same_composite_config():
    new = composite_controller_config(None, "Panda")
    old = composite_controller_config(OLD_OSC, "Panda")
    assert new["type"] == old["type"] == "BASIC"
    assert old["body_parts"]["right"]["type"] == "OSC_POSE"
    assert old["body_parts"]["right"]["gripper"] == {"type": "GRIP"}
    assert composite_controller_config(copy.deepcopy(new), "Panda") == new


def test_make_kwargs_keeps_stored_kwargs_and_does_not_modify_input():
    stored = {"robots": ["Panda"], "control_freq": 20, "controller_configs": OLD_OSC, "reward_shaping": False,
              "render_gpu_device_id": 3, "use_camera_obs": True}
    before = copy.deepcopy(stored)
    kw = make_kwargs(stored, "agentview", 48, render=True)
    assert stored == before
    assert kw["control_freq"] == 20 and kw["hard_reset"] is False and kw["has_offscreen_renderer"] is True
    assert kw["controller_configs"]["body_parts"]["right"]["type"] == "OSC_POSE"
    assert "render_gpu_device_id" not in kw and kw["camera_heights"] == 48
    assert make_kwargs(stored, "agentview", 48, render=False)["has_offscreen_renderer"] is False


def test_env_builds_from_the_old_controller_form_and_steps():
    env = RobosuiteEnv("Lift", {"robots": ["Panda"], "controller_configs": OLD_OSC, "control_freq": 20},
                       render=False)
    try:
        obs = env.reset()
        assert set(obs) == {"state", "proprio", "velocity"}
        assert env.action_low.shape == env.action_high.shape == (7,)
        obs2, reward, done, info = env.step(np.array([0, 0, 1, 0, 0, 0, -1.0]))
        assert obs2["proprio"][2] > obs["proprio"][2]  # moved up
        assert isinstance(reward, float) and "success" in info
        with pytest.raises(RuntimeError):
            env.render()
    finally:
        env.close()


# ---------------------------------------------------------------- state layout
def test_hdf5_and_live_observations_give_identical_vectors(lift_env, demo):
    _, arrays = demo
    stored = extract_vectors(arrays["obs"], "Lift")
    for t in (0, len(arrays["actions"]) // 2):
        live = lift_env.reset_to(arrays["states"][t], model_xml=arrays["model_file"])
        for key in ("state", "proprio", "velocity"):
            np.testing.assert_allclose(live[key], stored[key][t], atol=1e-6)
        # the raw robosuite dict (named keys + object-state) gives the same vectors too
        raw = extract_vectors(lift_env.raw_observation(), "Lift")
        np.testing.assert_allclose(raw["state"], live["state"])


def test_state_layout_shapes_and_slices(demo):
    _, arrays = demo
    v = extract_vectors(arrays["obs"], "Lift")
    t = len(arrays["actions"])
    assert v["state"].shape == (t, 19) and v["proprio"].shape == (t, 9) and v["velocity"].shape == (t, 9)
    assert all(a.dtype == np.float32 for a in v.values())
    np.testing.assert_allclose(v["state"][:, :3], arrays["obs"]["object"][:, :3], rtol=1e-6)  # object pos first
    np.testing.assert_allclose(v["state"][:, 10:13], arrays["obs"]["robot0_eef_pos"], rtol=1e-6)
    single = extract_vectors({k: x[0] for k, x in arrays["obs"].items()}, "Lift")
    np.testing.assert_array_equal(single["state"], v["state"][0])
    state_sl, proprio_sl, vel_sl = vector_slices("Lift")
    assert [s.name for s in state_sl][:2] == ["cube_pos", "cube_quat"]
    assert state_sl[-1].stop == 19 and proprio_sl[-1].stop == 9 and vel_sl[-1].stop == 9
    assert vector_slices("PickPlaceCan")[0][-1].stop == 23
    with pytest.raises(KeyError):
        extract_vectors({"object": np.zeros(10)}, "Lift")


def test_robosuite15_object_state_order_is_canonicalised():
    canonical = np.arange(14.0)
    stored15 = np.concatenate([canonical[7:], canonical[:7]])  # rel pos, rel quat, pos, quat
    np.testing.assert_array_equal(canonical_object(stored15, "PickPlaceCan", "robosuite15"), canonical)
    np.testing.assert_array_equal(canonical_object(canonical, "PickPlaceCan", "canonical"), canonical)


def test_pickplacecan_live_vectors_put_the_can_pose_first():
    env = RobosuiteEnv("PickPlaceCan", {"robots": ["Panda"]}, render=False)
    try:
        obs = env.reset()
        raw = env.raw_observation()
        np.testing.assert_allclose(obs["state"][:3], raw["Can_pos"], atol=1e-6)
        np.testing.assert_allclose(obs["state"][3:7], raw["Can_quat"], atol=1e-6)
        assert obs["state"].shape == (23,)
    finally:
        env.close()


# ---------------------------------------------------------------- rendering
def test_render_is_right_side_up_and_matches_obs(lift_env):
    obs = lift_env.reset()
    frame = lift_env.render()
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, obs["image"])
    raw = lift_env.env.sim.render(camera_name="agentview", width=64, height=64)
    np.testing.assert_array_equal(frame, raw[::-1])  # OpenGL rows are bottom-up


def test_two_cameras_give_different_frames(lift_env):
    lift_env.reset()
    a, b = lift_env.render_camera("agentview"), lift_env.render_camera("robot0_eye_in_hand")
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 10
    with pytest.raises(ValueError, match="unknown camera"):
        lift_env.render_camera("no_such_camera")


def test_unknown_camera_is_rejected():
    with pytest.raises(ValueError, match="camera"):
        RobosuiteEnv("Lift", {"robots": ["Panda"]}, camera_name="no_such_camera", image_size=32)


def test_from_meta_frames_match_the_converted_frames(tiny_lift_dataset, tiny_lift_hdf5):
    meta = DatasetMeta.load(tiny_lift_dataset)
    import torch

    sim_states = torch.load(tiny_lift_dataset / "sim_states.pth", weights_only=True).numpy()
    frames = read_video(tiny_lift_dataset / "obses" / "episode_00001.mp4")
    env = RobosuiteEnv.from_meta(meta)
    try:
        assert env.image_size == meta.image_size and env.camera_name == meta.camera_names[0]
        xml = episode_model_xml(tiny_lift_dataset, meta, 1)
        for t in (0, 10):
            obs = env.reset_to(sim_states[1, t], model_xml=xml)
            assert psnr(obs["image"], frames[t]) >= 35.0
    finally:
        env.close()


def test_localize_model_xml_rewrites_foreign_asset_paths(demo):
    _, arrays = demo
    xml = arrays["model_file"]
    foreign = xml.replace(xml.split("robosuite/models/assets/")[0].split('"')[-1], "/home/someone/old/")
    assert foreign != xml
    local = localize_model_xml(foreign)
    assert "/home/someone/old/" not in local

    def files(text):
        return [e.get("file") for e in ET.fromstring(text).iter() if e.get("file")]

    assert files(local) == files(xml) and any("robosuite/models/assets/" in f for f in files(xml))
    assert all(Path(f).is_file() for f in files(local))  # every rewritten path names this install's asset
    assert localize_model_xml(xml) == xml  # already local: returned unchanged


# ---------------------------------------------------------------- reset_to + replay
def _replay(env, arrays, start, restore=True):
    states, actions = arrays["states"], arrays["actions"]
    obs = env.reset_to(states[start], past_actions=actions[:start] if restore else None,
                       initial_sim_state=states[0] if restore else None, model_xml=arrays["model_file"])
    errs = [np.abs(obs["state"][:3] - arrays["obs"]["object"][start, :3]).max()]
    info = {"success": False}
    for t in range(start, len(actions)):
        obs, _, _, info = env.step(actions[t])
        if t + 1 < len(actions):
            errs.append(np.abs(obs["state"][:3] - arrays["obs"]["object"][t + 1, :3]).max())
    return max(errs), info["success"]


def test_reset_to_reproduces_the_recorded_object_pose(lift_env, demo):
    _, arrays = demo
    for t in (0, 7, len(arrays["actions"]) - 1):
        obs = lift_env.reset_to(arrays["states"][t], model_xml=arrays["model_file"])
        np.testing.assert_allclose(lift_env.get_sim_state(), arrays["states"][t], atol=1e-12)
        assert np.abs(obs["state"][:3] - arrays["obs"]["object"][t, :3]).max() <= 1e-6


def test_replay_from_first_state_succeeds(lift_env, demo):
    _, arrays = demo
    err, success = _replay(lift_env, arrays, 0)
    assert success and err < 1e-5


def test_replay_from_mid_episode_with_past_actions_succeeds(lift_env, demo):
    _, arrays = demo
    err, success = _replay(lift_env, arrays, len(arrays["actions"]) // 2)
    assert success and err < 1e-5


def test_replay_without_controller_restore_drifts(lift_env, demo):
    """The gripper ramp and nullspace target matter: without them the mid-episode replay drifts."""
    _, arrays = demo
    err, _ = _replay(lift_env, arrays, len(arrays["actions"]) // 2, restore=False)
    assert err > 1e-4


def test_reset_to_rejects_a_wrong_state_size(lift_env):
    with pytest.raises(ValueError, match="sim_state"):
        lift_env.reset_to(np.zeros(5))


def test_observe_state_equals_reset_to_observation(lift_env, demo):
    _, arrays = demo
    a = lift_env.reset_to(arrays["states"][9], model_xml=arrays["model_file"])
    lift_env.reset_to(arrays["states"][2])
    b = lift_env.observe_state(arrays["states"][9])
    for key in ("state", "proprio", "velocity"):
        np.testing.assert_array_equal(a[key], b[key])
    # Mesa's software rasteriser is not bit-reproducible under load: a handful of edge pixels may differ
    # (seen once in CI: 16 of 12288 values); a wrong state would change far more of the frame
    assert np.mean(a["image"] != b["image"]) < 0.01


def test_frames_stay_right_while_other_envs_are_built_loaded_and_dropped(lift_env, demo):
    """Each env draws in its own GL context, and an env that goes away frees only its own buffers.

    Without that, a second env's context is current when the first renders (the whole frame is wrong),
    and an env dropped without close() deletes the live env's GL buffers at garbage collection.
    """
    import gc

    env_args, arrays = demo
    want = lift_env.reset_to(arrays["states"][9], model_xml=arrays["model_file"])["image"]
    other = RobosuiteEnv(env_args["env_name"], env_args["env_kwargs"], camera_name="agentview",
                         image_size=64, render=True)
    other.reset_to(arrays["states"][3], model_xml=arrays["model_file"])
    assert np.mean(lift_env.observe_state(arrays["states"][9])["image"] != want) < 0.01
    del other  # dropped without close()
    gc.collect()
    assert np.mean(lift_env.observe_state(arrays["states"][9])["image"] != want) < 0.01
    with RobosuiteEnv(env_args["env_name"], env_args["env_kwargs"], image_size=64) as third:
        third.render()
    gc.collect()
    assert np.mean(lift_env.observe_state(arrays["states"][9])["image"] != want) < 0.01


def test_bad_model_xml_leaves_the_env_usable(lift_env, demo):
    _, arrays = demo
    lift_env.load_model_xml(arrays["model_file"])
    bad = arrays["model_file"].replace("<worldbody>", "<worldbody><geom type='nonsense'/>", 1)
    with pytest.raises(ValueError):  # MuJoCo's compile error
        lift_env.load_model_xml(bad)
    obs = lift_env.reset_to(arrays["states"][3], model_xml=arrays["model_file"])
    np.testing.assert_allclose(obs["state"][:3], arrays["obs"]["object"][3, :3], atol=1e-6)


def test_frame_cameras_are_rendered_side_by_side_and_from_meta_takes_the_views(demo):
    import dataclasses

    env_args, arrays = demo
    env = RobosuiteEnv(env_args["env_name"], env_args["env_kwargs"], camera_name="agentview", image_size=32,
                       frame_cameras=["agentview", "robot0_eye_in_hand"])
    try:
        obs = env.observe_state(arrays["states"][5])
        assert obs["image"].shape == (32, 64, 3)
        np.testing.assert_array_equal(obs["image"][:, :32], env.render_camera("agentview"))
        np.testing.assert_array_equal(obs["image"][:, 32:], env.render_camera("robot0_eye_in_hand"))
    finally:
        env.close()
    meta = DatasetMeta(env_name=env_args["env_name"], env_kwargs=env_args["env_kwargs"],
                       camera_names=["agentview", "robot0_eye_in_hand"], image_size=16, action_dim=7,
                       state_slices=[], proprio_slices=[], velocity_slices=[], sim_state_dim=32, n_episodes=0,
                       n_frames=0, demo_keys=[])
    one = RobosuiteEnv.from_meta(meta)  # views 1 (a dataset before the key): the main camera alone
    two = RobosuiteEnv.from_meta(dataclasses.replace(meta, views=2))
    try:
        assert one.frame_cameras == ["agentview"] and one.render().shape == (16, 16, 3)
        assert two.frame_cameras == ["agentview", "robot0_eye_in_hand"] and two.render().shape == (16, 32, 3)
    finally:
        one.close()
        two.close()
    with pytest.raises(ValueError, match="unknown camera 'no_such_camera'"):
        RobosuiteEnv("Lift", {"robots": ["Panda"]}, camera_name="agentview", image_size=16,
                     frame_cameras=["agentview", "no_such_camera"])
    with pytest.raises(ValueError, match="must start with the main camera"):
        RobosuiteEnv("Lift", {"robots": ["Panda"]}, camera_name="agentview", image_size=16,
                     frame_cameras=["robot0_eye_in_hand", "agentview"])
    with pytest.raises(ValueError, match="views=3"):
        dataclasses.replace(meta, views=3)
