"""Tests for envs/model_xml.py: the xml checks the converter runs on every demo's model_file."""

from __future__ import annotations

import pytest

from envs.model_xml import flat_state_dim
from utils.xml_text import xml_parse_error

# one free body (qpos 7, qvel 6) and one hinge (1, 1): flattened state 1 + 8 + 7
MODEL = """<mujoco><worldbody>
  <body><freejoint/><geom size="0.1"/></body>
  <body pos="1 0 0"><joint type="hinge"/><geom size="0.1"/></body>
</worldbody></mujoco>"""


def test_flat_state_dim_is_one_plus_nq_plus_nv():
    assert flat_state_dim(MODEL) == 16
    assert flat_state_dim("<mujoco/>") == 1


def test_bad_xml_is_a_one_line_parse_error_or_value_error():
    assert xml_parse_error(MODEL) is None
    assert "line 1" in xml_parse_error("<mujoco><worldbody></mujoco>")
    with pytest.raises(ValueError, match="not valid XML"):
        flat_state_dim("<mujoco")
    with pytest.raises(ValueError):  # well-formed, but MuJoCo cannot compile it
        flat_state_dim("<mujoco><worldbody><geom type='blob'/></worldbody></mujoco>")
