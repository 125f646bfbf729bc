"""Tests for envs/generate_demos.py and tasks/scripted_policy.py (robomimic hdf5 layout)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from envs.generate_demos import generate_demos, main
from tasks.scripted_policy import ScriptedPolicy
from tests.conftest import TINY_IMAGE_SIZE, run_cli

LOW_DIM_KEYS = ("object", "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "robot0_gripper_qvel",
                "robot0_joint_pos", "robot0_joint_vel")


def test_tiny_file_has_robomimic_layout(tiny_lift_hdf5):
    with h5py.File(tiny_lift_hdf5, "r") as f:
        data = f["data"]
        env_args = json.loads(data.attrs["env_args"])
        assert env_args["env_name"] == "Lift" and env_args["type"] == 1
        ctrl = env_args["env_kwargs"]["controller_configs"]
        assert ctrl["body_parts"]["right"]["type"] == "OSC_POSE"
        demos = sorted(data.keys())
        assert demos == ["demo_0", "demo_1", "demo_2"]
        total = 0
        for name in demos:
            g = data[name]
            t = int(g.attrs["num_samples"])
            total += t
            assert "<mujoco" in g.attrs["model_file"]
            assert g["states"].dtype == np.float64 and g["states"].shape == (t, 32)
            assert g["actions"].shape == (t, 7) and np.abs(g["actions"][()]).max() <= 1.0
            assert g["rewards"].shape == (t,) and g["rewards"][-1] == 1.0
            assert g["dones"].shape == (t,) and g["dones"][-1] == 1 and g["dones"][:-1].sum() == 0
            for key in LOW_DIM_KEYS:
                assert g[f"obs/{key}"].shape[0] == t
            assert g["obs/object"].shape == (t, 10)
            for cam in ("agentview", "robot0_eye_in_hand"):
                img = g[f"obs/{cam}_image"]
                assert img.dtype == np.uint8 and img.shape == (t, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3)
            # the cube rests on the table at the start and is being lifted in the last frame
            assert g["obs/object"][-1, 2] > g["obs/object"][0, 2] + 0.002
        assert data.attrs["total"] == total
        train = [x.decode() for x in f["mask/train"][()]]
        valid = [x.decode() for x in f["mask/valid"][()]]
        assert sorted(train + valid) == demos and not set(train) & set(valid) and len(valid) == 1


def test_cameras_differ_and_frames_change_over_time(tiny_lift_hdf5):
    with h5py.File(tiny_lift_hdf5, "r") as f:
        a = f["data/demo_0/obs/agentview_image"][()].astype(int)
        b = f["data/demo_0/obs/robot0_eye_in_hand_image"][()].astype(int)
    assert np.abs(a - b).mean() > 10
    assert np.abs(a[0] - a[-1]).mean() > 0.5


def test_no_cameras_seeded_and_deterministic(tmp_path):
    s1 = generate_demos("lift", 1, tmp_path / "a.hdf5", camera_names=None, seed=3, progress=False)
    s2 = generate_demos("lift", 1, tmp_path / "b.hdf5", camera_names=[], seed=3, progress=False)
    assert s2["successes"] == 1
    s3 = generate_demos("lift", 1, tmp_path / "c.hdf5", camera_names=[], seed=4, progress=False)
    assert s1["successes"] == 1 and s1["attempts"] >= 1 and s1["seconds_per_episode"] > 0
    with h5py.File(tmp_path / "a.hdf5", "r") as fa, h5py.File(tmp_path / "b.hdf5", "r") as fb, \
            h5py.File(tmp_path / "c.hdf5", "r") as fc:
        assert not any(k.endswith("_image") for k in fa["data/demo_0/obs"])
        np.testing.assert_array_equal(fa["data/demo_0/states"][()], fb["data/demo_0/states"][()])
        assert not np.array_equal(fa["data/demo_0/states"][0], fc["data/demo_0/states"][0])
    assert s3["successes"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.hdf5", "b.hdf5", "c.hdf5"]  # no tmp files left


def test_gives_up_after_max_attempts_and_writes_nothing(tmp_path, monkeypatch):
    import envs.generate_demos as gd

    monkeypatch.setattr(gd, "run_episode", lambda *a, **k: None)  # every episode fails
    with pytest.raises(RuntimeError, match="0/2 successful"):
        generate_demos("lift", 2, tmp_path / "x.hdf5", camera_names=None, max_attempts=3, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_can_policy_finishes_one_episode(tmp_path):
    stats = generate_demos("can", 1, tmp_path / "can.hdf5", camera_names=None, seed=0, progress=False)
    assert stats["successes"] == 1
    with h5py.File(tmp_path / "can.hdf5", "r") as f:
        assert json.loads(f["data"].attrs["env_args"])["env_name"] == "PickPlaceCan"
        assert f["data/demo_0/obs/object"].shape[1] == 14


def test_policy_rejects_unknown_task_and_can_needs_goal():
    with pytest.raises(ValueError):
        ScriptedPolicy("stack")
    with pytest.raises(ValueError):
        ScriptedPolicy("can")


def test_cli_bad_input_exit_code_2(capsys, tmp_path):
    assert main(["--task", "lift", "--n-episodes", "0", "--output", str(tmp_path / "x.hdf5")]) == 2
    assert "error" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--task", "stack", "--output", str(tmp_path / "x.hdf5")])
    assert exc.value.code == 2


@pytest.mark.parametrize("extra, says", [
    (["--max-attempts", "0"], "--max-attempts must be >= 1 and --hold-steps >= 0"),
    (["--hold-steps", "-1"], "--max-attempts must be >= 1 and --hold-steps >= 0"),
    (["--output", "{dir}"], "must name a file"),
    (["--output", ""], "must name a file"),
    (["--output", "{file}"], "exists: pass --overwrite to replace it"),
])
def test_cli_refuses_before_any_episode_and_keeps_an_existing_file(capsys, tmp_path, extra, says):
    existing = tmp_path / "old.hdf5"
    existing.write_bytes(b"keep")
    extra = [e.format(dir=tmp_path, file=existing) for e in extra]
    argv = ["--task", "lift", "--n-episodes", "1", "--no-cameras", "--output", str(tmp_path / "x.hdf5"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and err.count("\n") == 1
    assert existing.read_bytes() == b"keep" and sorted(p.name for p in tmp_path.iterdir()) == ["old.hdf5"]


def test_cli_runs(tmp_path):
    out = tmp_path / "cli.hdf5"
    proc = run_cli(["-m", "envs.generate_demos", "--task", "lift", "--n-episodes", "1", "--output", str(out),
                    "--no-cameras", "--seed", "1"], timeout=300)
    assert out.is_file() and "1/" in proc.stdout


def test_demos_hold_success_and_exploration_episodes_stay_in_train(tmp_path):
    """Successful demos keep the task's success for their last ``hold_steps + 1`` steps (a planning goal
    taken there is a state where the task is done); exploration episodes carry their mistake's name and
    are never in mask/valid."""
    out = tmp_path / "ex.hdf5"
    stats = generate_demos("lift", 4, out, camera_names=[], seed=3, hold_steps=6, explore_fraction=0.5,
                           progress=False)
    assert stats["successes"] == 2 and stats["explore"] == 2
    with h5py.File(out, "r") as f:
        kinds = {n: f["data"][n].attrs.get("scripted_perturbation") for n in f["data"]}
        valid = {v.decode() for v in f["mask/valid"][()]}
        train = {v.decode() for v in f["mask/train"][()]}
        assert valid | train == set(kinds) and not valid & train
        for name, kind in kinds.items():
            rewards = f["data"][name]["rewards"][()]
            if kind is None:
                assert np.all(rewards[-7:] == 1.0), rewards[-10:]
            else:
                assert name in train and kind in ("high_grasp", "lateral_miss", "drop")
        assert valid and all(kinds[n] is None for n in valid)
