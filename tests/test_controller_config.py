"""Tests for envs/controller_config.py: names robosuite cannot resolve, the controller in words."""

from __future__ import annotations

import copy

import pytest

from envs.controller_config import composite_controller_config, controller_summary, unknown_names
from tests.test_robosuite_env import OLD_OSC

NEW = {"robots": ["Panda"], "controller_configs": composite_controller_config(None, "Panda")}


def test_known_names_in_both_controller_forms_pass():
    assert unknown_names("Lift", NEW) == []
    assert unknown_names("PickPlaceCan", {"robots": "Panda", "controller_configs": OLD_OSC}) == []
    assert unknown_names("Lift", {}) == []  # no controller config: the robot's default


@pytest.mark.parametrize("where, value, phrase", [
    ("env", "LiftXYZ", "env name 'LiftXYZ'"),
    ("robots", ["Pandaa"], "robot 'Pandaa'"),
    ("top", "FANCY", "controller type 'FANCY' (controller_configs.type)"),
    ("part", "OSC_FOO", "controller type 'OSC_FOO' (controller_configs.body_parts.right.type)"),
    ("gripper", "PINCH", "controller type 'PINCH' (controller_configs.body_parts.right.gripper.type)"),
    ("old", "OSC_FOO", "controller type 'OSC_FOO' (controller_configs.type)"),
    # a stored type may be any JSON value, even an unhashable one
    ("part", ["OSC_POSE"], "controller type ['OSC_POSE'] (controller_configs.body_parts.right.type)"),
])
def test_each_unknown_name_is_reported_with_where_it_is(where, value, phrase):
    kw, env = copy.deepcopy(NEW), "Lift"
    right = kw["controller_configs"]["body_parts"]["right"]
    if where == "env":
        env = value
    elif where == "robots":
        kw["robots"] = value
    elif where == "top":
        kw["controller_configs"]["type"] = value
    elif where == "part":
        right["type"] = value
    elif where == "gripper":
        right["gripper"]["type"] = value
    else:
        kw["controller_configs"] = {**OLD_OSC, "type": value}
    assert unknown_names(env, kw) == [phrase]


def test_a_controller_config_that_is_not_a_dict_is_reported():
    assert unknown_names("Lift", {"controller_configs": "OSC_POSE"}) == [
        "controller_configs of type str (expected a dict)"]


def test_controller_summary_names_every_part():
    assert controller_summary({"controller_configs": OLD_OSC}) == "BASIC (right OSC_POSE, right.gripper GRIP)"
