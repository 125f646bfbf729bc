"""Turn the ``env_kwargs`` stored in a robomimic hdf5 ``env_args`` into ``robosuite.make`` kwargs.

Handles both controller config forms found in robomimic files:

- robosuite 1.5 composite: ``{"type": "BASIC", "body_parts": {"right": {"type": "OSC_POSE", ...}}}``
- robosuite <= 1.4: ``{"type": "OSC_POSE", ...}`` (converted with robosuite's own
  ``refactor_composite_controller_config``).

Only what rendering and fast resets need is overridden; every other stored kwarg is kept as is.
"""

from __future__ import annotations

import copy
from typing import Any

# machine-specific kwargs not taken from the file: the EGL device is chosen on this machine
# (robosuite's default -1 follows MUJOCO_EGL_DEVICE_ID, which gpu_utils sets)
_DROPPED_KEYS = ("render_gpu_device_id",)


def robot_names(env_kwargs: dict[str, Any]) -> list[str]:
    """The ``robots`` entry of env_kwargs as a list (robomimic stores a list or a single string)."""
    robots = env_kwargs.get("robots", "Panda")
    return [robots] if isinstance(robots, str) else list(robots)


def composite_controller_config(controller_configs: dict[str, Any] | None, robot: str = "Panda") -> dict:
    """A robosuite 1.5 composite controller config from either stored form (or the robot default)."""
    from robosuite.controllers import load_composite_controller_config
    from robosuite.controllers.composite.composite_controller_factory import (
        refactor_composite_controller_config,
    )

    if not controller_configs:
        return load_composite_controller_config(robot=robot)
    cfg = copy.deepcopy(controller_configs)
    return refactor_composite_controller_config(cfg, robot, ["right"])


def make_kwargs(env_kwargs: dict[str, Any], camera_name: str | None, image_size: int,
                render: bool) -> dict[str, Any]:
    """``robosuite.make`` kwargs: the stored ones + soft resets + (if render) an offscreen renderer.

    Args:
        env_kwargs: as stored in the hdf5 ``env_args["env_kwargs"]`` (not modified).
        camera_name: camera whose images go into the observations (ignored if not render).
        image_size: square camera image size in pixels.
        render: False builds the env without any renderer (fast, no images).
    """
    kw = copy.deepcopy(dict(env_kwargs))
    for key in _DROPPED_KEYS:
        kw.pop(key, None)
    robots = robot_names(kw)
    kw["robots"] = robots if len(robots) > 1 else robots[0]
    kw["controller_configs"] = composite_controller_config(kw.get("controller_configs"), robots[0])
    # camera images are rendered by RobosuiteEnv itself at the end of each step (robosuite's
    # camera observables sample at the first physics substep, i.e. not the recorded state)
    kw.update(has_renderer=False, hard_reset=False, use_object_obs=True, use_camera_obs=False,
              has_offscreen_renderer=bool(render))
    if render:
        kw.update(camera_names=[camera_name], camera_heights=image_size, camera_widths=image_size,
                  camera_depths=False)
    kw.pop("camera_segmentations", None)
    return kw


def _types_in(cfg: dict[str, Any], where: str):
    """(where, type) of every ``"type"`` entry below a controller config's top level."""
    for key, value in cfg.items():
        if isinstance(value, dict):
            if "type" in value:
                yield f"{where}.{key}", value["type"]
            yield from _types_in(value, f"{where}.{key}")


def unknown_names(env_name: str, env_kwargs: dict[str, Any]) -> list[str]:
    """What in a stored ``env_args`` this robosuite install cannot resolve (empty if all is known).

    Checks the env name, the robot names and every controller ``type`` (the composite type at the
    top of a 1.5 config, the part type of a <= 1.4 config, each body part's and gripper's type).
    Returns one short phrase per unknown name, e.g. ``"controller type 'FOO' (controller_configs.right)"``.
    """
    from robosuite.controllers import ALL_COMPOSITE_CONTROLLERS, ALL_PART_CONTROLLERS
    from robosuite.environments.base import REGISTERED_ENVS
    from robosuite.robots import ROBOT_CLASS_MAPPING

    problems = [] if env_name in REGISTERED_ENVS else [f"env name {env_name!r}"]
    problems += [f"robot {r!r}" for r in robot_names(env_kwargs) if r not in ROBOT_CLASS_MAPPING]
    cfg = env_kwargs.get("controller_configs")
    if not cfg:  # no config: the robot's default (see composite_controller_config)
        return problems
    if not isinstance(cfg, dict):
        return [*problems, f"controller_configs of type {type(cfg).__name__} (expected a dict)"]
    parts = [*ALL_PART_CONTROLLERS, "GRIP"]  # lists: a stored type may be any JSON value
    top_type = cfg.get("type", "BASIC") if "body_parts" in cfg else cfg.get("type")
    if top_type not in ([*ALL_COMPOSITE_CONTROLLERS] if "body_parts" in cfg else parts):
        problems.append(f"controller type {top_type!r} (controller_configs.type)")
    problems += [f"controller type {t!r} ({where}.type)" for where, t in _types_in(cfg, "controller_configs")
                 if t not in parts]
    return problems


def controller_summary(env_kwargs: dict[str, Any]) -> str:
    """The controller ``robosuite.make`` gets, in words, e.g. ``"BASIC (right OSC_POSE, right.gripper GRIP)"``."""
    cfg = composite_controller_config(env_kwargs.get("controller_configs"), robot_names(env_kwargs)[0])
    parts = [f"{where[1:]} {t}" for where, t in _types_in(cfg.get("body_parts", {}), "")]
    return f"{cfg.get('type', 'BASIC')} ({', '.join(parts)})"
