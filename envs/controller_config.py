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
