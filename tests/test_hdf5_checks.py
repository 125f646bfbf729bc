"""Tests for datasets/hdf5_checks.py: opening, env_args, masks, cross-demo consistency (no simulator)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from datasets.hdf5_checks import InputError, open_input, validate
from tests._synthetic_data import make_robomimic_hdf5


def _file(tmp_path, edit=None, **kw):
    path = make_robomimic_hdf5(tmp_path / "in.hdf5", **kw)
    if edit is not None:
        with h5py.File(path, "r+") as f:
            edit(f)
    return path


def _validate(path, filter_key=None):
    with open_input(path) as f:
        return validate(f, path, filter_key)


def _env_args(**changes):
    def edit(f):
        args = json.loads(f["data"].attrs["env_args"])
        for key, value in changes.items():
            in_kwargs = key in ("robots", "camera_names", "control_freq", "controller_configs")
            (args["env_kwargs"] if in_kwargs else args)[key] = value
        f["data"].attrs["env_args"] = json.dumps(args)
    return edit


def test_a_valid_file_gives_its_facts_in_episode_order(tmp_path):
    def rename(f):
        f.move("data/demo_1", "data/demo_10")
        f.move("data/demo_2", "data/demo_9")

    info = _validate(_file(tmp_path, rename, n_demos=3, steps=4, cameras=("agentview", "eye")))
    assert info.env_name == "Lift" and info.env_type == 1 and info.control_freq == 20.0
    assert info.demo_keys == ["demo_0", "demo_9", "demo_10"] and info.lengths == [4, 4, 4]
    assert (info.action_dim, info.sim_state_dim) == (7, 32) and info.low_dim
    assert info.image_shapes == {"agentview": (8, 8), "eye": (8, 8)} and info.image_cameras == ["agentview", "eye"]


def test_truncated_or_unreadable_files_are_one_input_error(tmp_path):
    good = _file(tmp_path)
    cut = tmp_path / "cut.hdf5"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert h5py.is_hdf5(cut)  # the header is fine: only opening finds the damage
    with pytest.raises(InputError, match="truncated"):
        open_input(cut)
    with pytest.raises(InputError, match="directory"):
        open_input(tmp_path)
    with pytest.raises(InputError, match="not an hdf5 file"):
        (tmp_path / "t.hdf5").write_text("text")
        open_input(tmp_path / "t.hdf5")


def test_a_dataset_whose_data_cannot_be_read_names_the_demo(tmp_path):
    def external(f):  # actions stored in an external file that does not exist
        del f["data/demo_1/actions"]
        f["data/demo_1"].create_dataset("actions", shape=(5, 7), dtype="f8",
                                        external=[(str(tmp_path / "gone.bin"), 0, 5 * 7 * 8)])

    with pytest.raises(InputError, match="demo_1: cannot read it") as err:
        _validate(_file(tmp_path, external))
    assert "\n" not in str(err.value)


BAD_ENV_ARGS = {
    "not_json": (lambda f: f["data"].attrs.__setitem__("env_args", "{nope"), "not valid JSON"),
    "json_list": (lambda f: f["data"].attrs.__setitem__("env_args", "[1, 2]"), "no 'env_name'"),
    "no_env_args": (lambda f: f["data"].attrs.__delitem__("env_args"), "no 'env_args'"),
    "env_name_number": (_env_args(env_name=5), "no 'env_name'"),
    "env_kwargs_list": (_env_args(env_kwargs=[1]), "'env_kwargs' is a list"),
    "type_gym": (_env_args(type=2), "only robosuite envs"),
    "robots_int": (_env_args(robots=3), "env_kwargs.robots"),
    "cameras_ints": (_env_args(camera_names=[1, 2]), "env_kwargs.camera_names"),
    "controller_configs_list": (_env_args(controller_configs=["OSC_POSE"]), "'env_kwargs.controller_configs' must"),
    "control_freq_negative": (_env_args(control_freq=-20), "control_freq"),
    "control_freq_text": (_env_args(control_freq="fast"), "control_freq"),
    "control_freq_inf": (_env_args(control_freq=float("inf")), "control_freq"),
}


@pytest.mark.parametrize("case", sorted(BAD_ENV_ARGS))
def test_bad_env_args_are_refused(case, tmp_path):
    edit, message = BAD_ENV_ARGS[case]
    with pytest.raises(InputError, match=message) as err:
        _validate(_file(tmp_path, edit))
    assert "'data'" in str(err.value) and "in.hdf5" in str(err.value)


BAD_MASKS = {
    "missing": (None, "mask/nope", "not found"),
    "unknown_demo": (lambda f: f.__setitem__("mask/x", np.array([b"demo_0", b"demo_7"])), "mask/x", "demo_7"),
    "numbers": (lambda f: f.__setitem__("mask/x", np.arange(3)), "mask/x", "1-D list of demo names"),
    "twice": (lambda f: f.__setitem__("mask/x", np.array([b"demo_0", b"demo_0"])), "mask/x", "twice"),
    "empty": (lambda f: f.__setitem__("mask/x", np.array([], dtype="S6")), "mask/x", "no demos"),
    "not_utf8": (lambda f: f.__setitem__("mask/x", np.array([b"demo_\xff"])), "mask/x", "not a demo group"),
}


@pytest.mark.parametrize("case", sorted(BAD_MASKS))
def test_bad_filter_masks_are_refused(case, tmp_path):
    edit, key, message = BAD_MASKS[case]
    with pytest.raises(InputError, match=message):
        _validate(_file(tmp_path, edit), key.split("/")[1])


def test_demos_must_agree_on_widths_and_on_each_cameras_frame_size(tmp_path):
    def smaller_images(f):
        del f["data/demo_1/obs/agentview_image"]
        f["data/demo_1/obs/agentview_image"] = np.zeros((5, 6, 6, 3), np.uint8)

    with pytest.raises(InputError, match=r"demo_1: 'obs/agentview_image' frames are 6x6, those of demo_0 8x8"):
        _validate(_file(tmp_path, smaller_images))

    def wider_states(f):
        del f["data/demo_1/states"]
        f["data/demo_1/states"] = np.zeros((5, 33))

    with pytest.raises(InputError, match="demo_1: 'states'/'actions' widths 33/7 differ"):
        _validate(_file(tmp_path, wider_states))


def test_a_camera_missing_in_one_demo_is_not_offered(tmp_path):
    info = _validate(_file(tmp_path, lambda f: f.__delitem__("data/demo_1/obs/eye_image"),
                           cameras=("agentview", "eye")))
    assert info.image_cameras == ["agentview"]


def test_one_demo_without_low_dim_obs_makes_the_file_not_low_dim(tmp_path):
    info = _validate(_file(tmp_path, lambda f: f.__delitem__("data/demo_1/obs/robot0_joint_vel")))
    assert not info.low_dim
