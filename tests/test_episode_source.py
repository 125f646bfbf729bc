"""Tests for conversion/episode_source.py: one robomimic episode as frames + vectors, from the file
or re-simulated (the tiny scripted Lift file; a Lift env without a renderer where frames are not needed)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from conversion.episode_source import (
    detect_object_layout,
    episode_from_hdf5,
    episode_from_sim,
    has_low_dim,
    model_xml_of,
    resize_frames,
    vectors_from_sim,
)
from envs.robosuite_env import RobosuiteEnv
from tasks.state_layout import extract_vectors
from tests.conftest import TINY_IMAGE_SIZE


@pytest.fixture(scope="module")
def lift_file(tiny_lift_hdf5):
    with h5py.File(tiny_lift_hdf5, "r") as f:
        yield f


@pytest.fixture(scope="module")
def sim_env(lift_file):
    args = json.loads(lift_file["data"].attrs["env_args"])
    env = RobosuiteEnv(args["env_name"], args["env_kwargs"], render=False)
    yield env
    env.close()


def test_resize_frames_keeps_shape_dtype_and_flat_colours():
    frames = np.full((2, 10, 10, 3), 77, np.uint8)
    frames[1] = 200
    out = resize_frames(frames, 6)
    assert out.shape == (2, 6, 6, 3) and out.dtype == np.uint8
    assert (out[0] == 77).all() and (out[1] == 200).all()
    assert resize_frames(frames, 10) is frames  # same size: no copy, no resampling


def test_model_xml_and_low_dim_presence(tmp_path, lift_file):
    demo = lift_file["data/demo_0"]
    assert model_xml_of(demo).startswith("<mujoco") and has_low_dim(demo)
    with h5py.File(tmp_path / "x.hdf5", "w") as f:
        g = f.create_group("d")
        assert model_xml_of(g) is None and not has_low_dim(g)
        g.attrs["model_file"] = np.bytes_(b"<mujoco/>")
        g.create_dataset("obs/object", data=np.zeros((2, 10)))
        assert model_xml_of(g) == "<mujoco/>"
        assert not has_low_dim(g)  # object alone: the robot keys are missing


def test_episode_from_the_file_is_its_frames_and_obs_vectors(lift_file):
    demo = lift_file["data/demo_1"]
    ep = episode_from_hdf5(demo, "agentview", 32, "Lift", "canonical")
    t = demo["actions"].shape[0]
    assert ep["frames"].shape == (t, 32, 32, 3) and ep["frames"].dtype == np.uint8
    obs = {k: demo["obs"][k][()] for k in demo["obs"] if not k.endswith("_image")}
    want = extract_vectors(obs, "Lift")
    for key in ("state", "proprio", "velocity"):
        np.testing.assert_array_equal(ep[key], want[key])
    same = episode_from_hdf5(demo, "agentview", TINY_IMAGE_SIZE, "Lift", "canonical")
    np.testing.assert_array_equal(same["frames"], demo["obs/agentview_image"][()])


def test_a_file_without_low_dim_obs_needs_the_simulator(tmp_path, lift_file, sim_env):
    src = lift_file["data/demo_0"]
    with h5py.File(tmp_path / "img_only.hdf5", "w") as f:
        g = f.create_group("demo_0")
        g.attrs["model_file"] = src.attrs["model_file"]
        g.create_dataset("states", data=src["states"][()])
        g.create_dataset("obs/agentview_image", data=src["obs/agentview_image"][()])
        with pytest.raises(ValueError, match="no low-dim obs and no simulator"):
            episode_from_hdf5(g, "agentview", TINY_IMAGE_SIZE, "Lift", "canonical")
        ep = episode_from_hdf5(g, "agentview", TINY_IMAGE_SIZE, "Lift", "canonical", env=sim_env)
    stored = extract_vectors({k: src["obs"][k][()] for k in src["obs"] if not k.endswith("_image")}, "Lift")
    np.testing.assert_allclose(ep["state"], stored["state"], atol=1e-5)  # re-simulated = recorded
    np.testing.assert_allclose(ep["proprio"], stored["proprio"], atol=1e-5)


def test_vectors_from_sim_match_the_recorded_obs(lift_file, sim_env):
    demo = lift_file["data/demo_2"]
    out = vectors_from_sim(demo, sim_env, with_frames=False)
    assert set(out) == {"state", "proprio", "velocity"}
    stored = extract_vectors({k: demo["obs"][k][()] for k in demo["obs"] if not k.endswith("_image")}, "Lift")
    np.testing.assert_allclose(out["state"], stored["state"], atol=1e-5)


def test_detect_object_layout(lift_file, sim_env, tmp_path):
    demo = lift_file["data/demo_0"]
    assert detect_object_layout(demo, "Lift", None) == "canonical"  # no simulator: the canonical order
    assert detect_object_layout(demo, "Lift", sim_env, strict=True) == "canonical"
    with h5py.File(tmp_path / "bad.hdf5", "w") as f:
        g = f.create_group("demo_0")
        g.attrs["model_file"] = demo.attrs["model_file"]
        g.create_dataset("states", data=demo["states"][()])
        for key in demo["obs"]:
            if not key.endswith("_image"):
                value = demo["obs"][key][()]
                g.create_dataset(f"obs/{key}", data=value + 0.5 if key == "object" else value)
        with pytest.raises(ValueError, match="matches the simulator at its first state in no known layout"):
            detect_object_layout(g, "Lift", sim_env, strict=True)
        assert detect_object_layout(g, "Lift", sim_env) == "canonical"  # not strict: a warning


def test_episode_from_sim_renders_frames_and_can_keep_the_file_vectors(lift_file):
    demo = lift_file["data/demo_0"]
    args = json.loads(lift_file["data"].attrs["env_args"])
    with RobosuiteEnv(args["env_name"], args["env_kwargs"], "agentview", TINY_IMAGE_SIZE, render=True) as env:
        ep = episode_from_sim(demo, env, use_file_vectors=True, env_name="Lift", object_layout="canonical")
    recorded = demo["obs/agentview_image"][()].astype(np.float32)
    assert ep["frames"].shape == recorded.shape and ep["frames"].dtype == np.uint8
    assert np.abs(ep["frames"].astype(np.float32) - recorded).mean() < 2.0  # re-rendered = recorded
    stored = extract_vectors({k: demo["obs"][k][()] for k in demo["obs"] if not k.endswith("_image")}, "Lift")
    np.testing.assert_array_equal(ep["state"], stored["state"])  # the file's own vectors, exactly
