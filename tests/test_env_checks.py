"""Tests for conversion/env_checks.py: the file against the simulator its env_args name (no rendering)."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil

import h5py
import numpy as np
import pytest

from conversion.env_checks import (
    check_actions,
    check_model_files,
    check_state_width,
    object_layout,
    open_env,
)
from datasets.hdf5_checks import InputError, open_input, validate


@pytest.fixture()
def lift(tiny_lift_hdf5, tmp_path):
    """``edit -> (open h5py file, SourceInfo)`` of an edited copy of the tiny Lift file."""
    opened = []

    def make(edit=None):
        path = tmp_path / f"in{len(opened)}.hdf5"
        shutil.copyfile(tiny_lift_hdf5, path)
        if edit is not None:
            with h5py.File(path, "r+") as f:
                edit(f)
        f = open_input(path)
        opened.append(f)
        return f, validate(f, path)

    yield make
    for f in opened:
        f.close()


def _env(info, **kw):
    return open_env(info, "agentview", 64, render=False, needed=kw.pop("needed", False),
                    allow_unknown=kw.pop("allow_unknown", False))


def _with_env_name(name):
    def edit(f):
        args = json.loads(f["data"].attrs["env_args"])
        args["env_name"] = name
        f["data"].attrs["env_args"] = json.dumps(args)
    return edit


def test_a_valid_file_passes_every_simulator_check(lift):
    f, info = lift()
    env = _env(info)
    try:
        check_model_files(f, info)
        check_actions(f, info, env)
        check_state_width(info, env)
        assert object_layout(f, info, env) == "canonical"
    finally:
        env.close()


def test_unknown_env_is_refused_unless_allowed_and_not_needed(lift, caplog):
    _, info = lift(_with_env_name("LiftXYZ"))
    with pytest.raises(InputError, match="does not know env name 'LiftXYZ' .*--allow-unknown-env"):
        _env(info)
    with caplog.at_level(logging.WARNING):
        assert _env(info, allow_unknown=True) is None
    assert "skipping the checks that need the simulator (action width and range" in caplog.text
    with pytest.raises(InputError, match="needs the simulator"):
        _env(info, allow_unknown=True, needed=True)


def test_an_env_that_does_not_build_is_refused_unless_allowed(lift):
    def bad_kwarg(f):
        args = json.loads(f["data"].attrs["env_args"])
        args["env_kwargs"]["no_such_kwarg"] = 1
        f["data"].attrs["env_args"] = json.dumps(args)

    _, info = lift(bad_kwarg)
    with pytest.raises(InputError, match="cannot build Lift from its env_kwargs .*no_such_kwarg"):
        _env(info)
    assert _env(info, allow_unknown=True) is None


def test_action_width_and_range_come_from_the_env(lift):
    def out_of_range(f):
        f["data/demo_2/actions"][4, 6] = 1.5

    f, info = lift(out_of_range)
    env = _env(info)
    try:
        with pytest.raises(InputError, match="'actions' has width 6; Lift with controller .*OSC_POSE.* takes 7"):
            check_actions(f, dataclasses.replace(info, action_dim=6), env)
        with pytest.raises(InputError, match=r"demo_2: 'actions' value 1.5 at step 4, dim 6 is outside Lift's "
                                             r"action range \[-1, 1\]"):
            check_actions(f, info, env)
    finally:
        env.close()


def test_state_width_comes_from_the_env_model(lift):
    _, info = lift()
    env = _env(info)
    try:
        with pytest.raises(InputError, match=r"'states' has width 31; .* has 32 \(1 \+ nq 16 \+ nv 15\)"):
            check_state_width(dataclasses.replace(info, sim_state_dim=31), env)
    finally:
        env.close()


def test_model_files_must_compile_and_match_the_states(lift):
    def no_worldbody_geom_type(f):
        f["data/demo_2"].attrs["model_file"] = "<mujoco><worldbody><geom type='blob'/></worldbody></mujoco>"

    f, info = lift(no_worldbody_geom_type)
    with pytest.raises(InputError, match="demo_2: attribute 'model_file' does not load in MuJoCo") as err:
        check_model_files(f, info)
    assert "\n" not in str(err.value)

    def tiny_model(f):  # a model that compiles, but whose state is 1 + 0 + 0 wide
        f["data/demo_1"].attrs["model_file"] = "<mujoco><worldbody/></mujoco>"

    f, info = lift(tiny_model)
    with pytest.raises(InputError, match="demo_1: 'states' has width 32, but the flattened state of its "
                                         "'model_file' has 1"):
        check_model_files(f, info)


def test_obs_object_must_match_the_simulator_in_every_demo(lift):
    def last_step_off(f):
        f["data/demo_2/obs/object"][-1, 0] += 0.01

    f, info = lift(last_step_off)
    env = _env(info)
    try:
        t = info.lengths[2] - 1
        with pytest.raises(InputError, match=f"demo_2: 'obs/object' pose at step {t} is 0.01 away"):
            object_layout(f, info, env)
    finally:
        env.close()

    def first_demo_off(f):
        f["data/demo_0/obs/object"][0, :3] = np.zeros(3)

    f, info = lift(first_demo_off)
    env = _env(info)
    try:
        with pytest.raises(InputError, match="demo_0: 'obs/object' matches the simulator .* in no known layout"):
            object_layout(f, info, env)
    finally:
        env.close()
