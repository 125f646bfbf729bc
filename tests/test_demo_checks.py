"""Tests for datasets/demo_checks.py: every array that reaches the dataset is checked (no simulator)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from datasets.demo_checks import check_demo
from tests._synthetic_data import make_robomimic_hdf5


def _replace(key, fn):
    def edit(demo):
        value = fn(demo[key][()])
        del demo[key]
        demo[key] = value
    return edit


def _put(key, t, d, value, dtype=np.float64):
    def fn(a):
        a = a.astype(dtype)
        a[t, d] = value
        return a
    return _replace(key, fn)


def _check(tmp_path, edit=None, env_name="Lift"):
    path = make_robomimic_hdf5(tmp_path / "in.hdf5", n_demos=1, steps=6)
    with h5py.File(path, "r+") as f:
        demo = f["data/demo_0"]
        if edit is not None:
            edit(demo)
        return check_demo(demo, env_name)


BAD = {
    # every numeric array that reaches the dataset must be finite, in the dtype it is stored in
    "nan_action": (_put("actions", 2, 1, np.nan), "'actions' has a non-finite float32 value (nan) at step 2, dim 1"),
    "action_overflows_float32": (_put("actions", 4, 0, 1e39), "'actions' has a non-finite float32 value (1e+39 overflows it)"),
    "inf_state": (_put("states", 5, 3, -np.inf), "'states' has a non-finite float64 value"),
    "nan_obs_object": (_put("obs/object", 0, 9, np.nan), "'obs/object' has a non-finite"),
    "inf_obs_joint_vel": (_put("obs/robot0_joint_vel", 3, 6, np.inf), "'obs/robot0_joint_vel' has a non-finite"),
    "nan_gripper_qvel": (_put("obs/robot0_gripper_qvel", 1, 0, np.nan), "'obs/robot0_gripper_qvel' has"),
    # shapes and dtypes
    "actions_strings": (_replace("actions", lambda a: a.astype("S6")), "'actions' has dtype |S6, expected numbers"),
    "actions_bool": (_replace("actions", lambda a: a > 0), "'actions' has dtype bool"),
    "actions_1d": (_replace("actions", lambda a: a[:, 0]), "'actions' has shape (6,), expected [T, D]"),
    "actions_no_columns": (_replace("actions", lambda a: a[:, :0]), "expected [T, D] with D >= 1"),
    "empty": (lambda d: [_replace(k, lambda a: a[:0])(d) for k in ("actions", "states")], "'actions' is empty"),
    "states_longer": (_replace("states", lambda a: np.concatenate([a, a])),
                      "'states' has 12 steps but 'actions' has 6"),
    "obs_shorter": (_replace("obs/robot0_eef_pos", lambda a: a[:-1]), "'obs/robot0_eef_pos' has 5 steps"),
    "obs_eef_pos_width_2": (_replace("obs/robot0_eef_pos", lambda a: a[:, :2]), "'robot0_eef_pos' has last dim 2"),
    "obs_object_width_9": (_replace("obs/object", lambda a: a[:, :9]), "Lift object vector has 9 dims"),
    "actions_is_a_group": (lambda d: (d.__delitem__("actions"), d.create_group("actions")), "'actions' is a group"),
    "obs_is_a_dataset": (lambda d: (d.__delitem__("obs"), d.__setitem__("obs", np.zeros(3))), "'obs' is a dataset"),
    # images: uint8 [T, H, W, 3] only
    "float_images": (_replace("obs/agentview_image", lambda a: a / 255.0), "has dtype float64; images must be uint8"),
    "gray_images": (_replace("obs/agentview_image", lambda a: a[..., 0]), "expected [6, H, W, 3]"),
    "images_short": (_replace("obs/agentview_image", lambda a: a[:-2]), "'obs/agentview_image' has shape (4,"),
    "images_zero_width": (_replace("obs/agentview_image", lambda a: a[:, :, :0]), "expected [6, H, W, 3]"),
    # the model xml that resets and renders the states
    "no_model_file": (lambda d: d.attrs.__delitem__("model_file"), "no 'model_file' attribute"),
    "empty_model_file": (lambda d: d.attrs.__setitem__("model_file", ""), "not an xml string"),
    "model_file_not_xml": (lambda d: d.attrs.__setitem__("model_file", "<mujoco><a></mujoco>"), "not valid XML"),
    "model_file_number": (lambda d: d.attrs.__setitem__("model_file", 3), "not an xml string"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_demo_is_one_line_naming_the_key(case, tmp_path):
    edit, message = BAD[case]
    with pytest.raises(ValueError) as err:
        _check(tmp_path, edit)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_valid_demo_gives_its_facts(tmp_path):
    facts = _check(tmp_path)
    assert (facts.length, facts.action_dim, facts.state_dim) == (6, 7, 32)
    assert facts.image_shapes == {"agentview": (8, 8)} and facts.low_dim


def test_obs_that_do_not_reach_the_dataset_are_not_judged(tmp_path):
    def extra(d):
        d["obs/robot0_joint_acc"] = np.full((6, 7), np.nan)  # not read into any vector

    assert _check(tmp_path, extra).low_dim


def test_without_every_low_dim_key_the_vectors_come_from_the_simulator(tmp_path):
    def partial(d):
        del d["obs/robot0_gripper_qvel"]
        d["obs/object"][0, 0] = np.nan  # then obs/object never reaches the dataset

    assert not _check(tmp_path, partial).low_dim


def test_integer_actions_and_bytes_model_file_are_accepted(tmp_path):
    def edit(d):
        _replace("actions", lambda a: np.sign(a).astype(np.int8))(d)
        d.attrs["model_file"] = np.bytes_(b"<mujoco/>")

    assert _check(tmp_path, edit).action_dim == 7
