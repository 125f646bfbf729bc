"""A robosuite environment built from a robomimic ``env_args``, with dataset-matching observations.

Observations are ``{"image": uint8 [H, W, 3] (only if render), "state": float32 [S],
"proprio": float32 [P], "velocity": float32 [V]}``; the vectors come from
``tasks.state_layout.extract_vectors`` (the converter uses the same function on hdf5 obs) and
the image is the chosen camera at ``image_size`` (or several cameras side by side: ``frame_cameras``), right side
up, as the converter stores frames.
Success is the registered task's check (``tasks/registry.py``; robosuite's own for other envs).

Resets are soft (``hard_reset=False``: no model / renderer rebuild), and ``reset_to`` restores the
controller state a flattened MuJoCo state lacks (see ``envs/state_restore.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from envs.controller_config import make_kwargs
from envs.model_xml import localize_model_xml
from envs.state_restore import reset_gripper_ramp, restore_gripper_ramp, restore_nullspace_target
from tasks.registry import task_for_env
from tasks.state_layout import extract_vectors
from utils.xml_text import model_key

log = logging.getLogger(__name__)


def _disable_multisampling(sim) -> None:
    """Rebuild the offscreen MuJoCo render context without multisampling (about 2x faster on CPU)."""
    ctx = sim._render_context_offscreen
    if ctx is None:
        return
    sim.model.vis.quality.offsamples = 0
    ctx.gl_ctx.make_current()
    ctx.con.free()
    ctx._set_mujoco_context_and_buffers()


def _make_render_context_current(sim) -> None:
    """Make this sim's GL context the current one before drawing with it.

    robosuite's ``MjSim.render`` draws into whichever context is current; with two envs in one process
    (a second env built, a planner and an evaluator, tests) that is the other env's, and the frame comes
    out wrong. ``eglMakeCurrent`` on the already-current context costs microseconds.
    """
    ctx = sim._render_context_offscreen
    if ctx is not None:
        ctx.gl_ctx.make_current()


def _release_render_context(sim) -> None:
    """Free a sim's MuJoCo render buffers and GL context while that context is current.

    Left to robosuite, they are freed by ``__del__`` at garbage-collection time, under whatever context
    is current then: that deletes the GL buffers of another live env (same integer names) and corrupts
    its frames. After this, the later ``__del__`` finds nothing left to free.
    """
    ctx = getattr(sim, "_render_context_offscreen", None)
    if ctx is None or getattr(ctx.gl_ctx, "_context", True) is None:
        return
    ctx.gl_ctx.make_current()
    ctx.con.free()
    ctx.gl_ctx.free()


class RobosuiteEnv:
    """One robosuite env (e.g. Lift, PickPlaceCan) with dataset-format obs: one camera, or several side by side.

    Args:
        env_name: robosuite env name, as in the hdf5 ``env_args["env_name"]``.
        env_kwargs: the hdf5 ``env_args["env_kwargs"]`` (either controller config form).
        camera_name: the main camera, rendered into ``obs["image"]`` and by :meth:`render`.
        image_size: square image size of each camera in pixels.
        frame_cameras: the cameras ``obs["image"]`` shows side by side, left to right (the dataset's views; None:
            the main camera alone). The main camera comes first.
        render: False builds no renderer (no ``image`` in obs, :meth:`render` raises).
    """

    def __init__(self, env_name: str, env_kwargs: dict, camera_name: str = "agentview",
                 image_size: int = 84, render: bool = True, frame_cameras: Sequence[str] | None = None):
        import robosuite

        self.env_name = env_name
        self.task = task_for_env(env_name)  # None: an env with no registered task (generic layout)
        self.camera_name = camera_name
        self.frame_cameras = list(frame_cameras) if frame_cameras else [camera_name]
        if self.frame_cameras[0] != camera_name:
            raise ValueError(f"frame_cameras {self.frame_cameras} must start with the main camera {camera_name!r}")
        self.image_size = int(image_size)
        self.render_enabled = bool(render)
        kwargs = make_kwargs(env_kwargs, camera_name, self.image_size, self.render_enabled)
        try:
            self.env = robosuite.make(env_name, **kwargs)
        except Exception as exc:
            if render and camera_name and "camera" in str(exc).lower():
                raise ValueError(f"cannot build {env_name} with camera {camera_name!r}: {exc}") from exc
            raise
        if self.render_enabled:
            cameras = list(self.env.sim.model.camera_names)
            unknown = [c for c in self.frame_cameras if c not in cameras]
            if unknown:
                self.env.close()
                raise ValueError(f"unknown camera {unknown[0]!r} for {env_name}; available: {cameras}")
            _disable_multisampling(self.env.sim)
        self.last_raw_obs: dict[str, Any] = {}
        self.model_key: str | None = None  # model_key of the xml loaded by load_model_xml, if any
        low, high = self.env.action_spec
        self.action_low: np.ndarray = np.asarray(low, dtype=np.float64)
        self.action_high: np.ndarray = np.asarray(high, dtype=np.float64)

    @classmethod
    def from_meta(cls, meta: Any, render: bool = True) -> RobosuiteEnv:
        """The env a converted dataset was recorded in, rendering its frames' cameras at its size.

        ``meta``: a ``datasets.meta.DatasetMeta`` (anything with ``env_name``, ``env_kwargs``,
        ``camera_names`` and ``image_size``; ``frame_cameras``, the cameras side by side in a frame, the main
        camera alone if absent).
        """
        return cls(meta.env_name, meta.env_kwargs, camera_name=meta.camera_names[0], image_size=meta.image_size,
                   render=render, frame_cameras=getattr(meta, "frame_cameras", meta.camera_names[:1]))

    # ------------------------------------------------------------------ observations
    def observation(self) -> dict[str, np.ndarray]:
        """The dataset-format observation of the current sim state (a function of the state only).

        Runs ``sim.forward()`` first, so positions match ``get_sim_state()`` exactly (after a
        physics step MuJoCo's derived quantities lag one substep behind qpos); forward does not
        change the dynamics. Low-dim values are read fresh (robosuite's observables otherwise
        sample at a substep that depends on accumulated float time), the image is rendered now.
        """
        self.env.sim.forward()
        raw = self.env._get_observations(force_update=True)
        self.last_raw_obs = raw
        obs = dict(extract_vectors(raw, self.env_name))
        if self.render_enabled:
            obs["image"] = self.render()
        return obs

    def raw_observation(self) -> dict[str, np.ndarray]:
        """robosuite's own low-dim observation dict of the current state (as of the last observation)."""
        return self.last_raw_obs

    # ------------------------------------------------------------------ control
    def reset(self) -> dict[str, np.ndarray]:
        """Soft reset with robosuite's placement randomisation; the gripper ramp starts at zero."""
        self.env.reset()
        reset_gripper_ramp(self.env)
        return self.observation()

    def load_model_xml(self, xml: str) -> None:
        """Rebuild the simulator from an episode's model xml (no-op if that xml is already loaded).

        Needed for exact replays: robosuite randomises some model properties (Lift's cube size)
        when it builds the model. Takes 1-2 s with a renderer. Raises (ValueError / ParseError)
        for an xml that does not parse or compile; the env then keeps its current model.
        """
        key = model_key(xml)
        if key == self.model_key:
            return
        xml = localize_model_xml(xml)
        import mujoco

        mujoco.MjModel.from_xml_string(xml)  # raises (leaving this env intact) if it does not compile
        if self.render_enabled:
            _release_render_context(self.env.sim)
        self.env.reset_from_xml_string(xml)
        if self.render_enabled:
            _disable_multisampling(self.env.sim)
        self.model_key = key

    def reset_to(self, sim_state: np.ndarray, past_actions: np.ndarray | None = None,
                 initial_sim_state: np.ndarray | None = None,
                 model_xml: str | None = None) -> dict[str, np.ndarray]:
        """Put the simulator in a recorded state and restore the controller state around it.

        Args:
            sim_state: float64 [sim_state_dim] flattened MuJoCo state (``states[t]`` of a demo).
            past_actions: [t, A] the episode's actions before ``t`` (None / empty at ``t = 0``);
                rebuilds the gripper command ramp.
            initial_sim_state: the episode's first state ``states[0]``; sets the arm controller's
                nullspace target as it was in the recorded episode (None: as after this reset).
            model_xml: the episode's model xml (hdf5 ``model_file``; a converted dataset keeps it,
                see ``datasets.model_files``); loaded first if it differs from the current model.
        Returns:
            the observation of ``sim_state``.
        """
        state = np.asarray(sim_state, dtype=np.float64)
        if model_xml is not None:
            self.load_model_xml(model_xml)
        self._check_state(state)
        self.env.reset()
        sim = self.env.sim
        sim.set_state_from_flattened(state)
        sim.forward()
        restore_nullspace_target(self.env, initial_sim_state)
        restore_gripper_ramp(self.env, past_actions)
        self.env.update_state()
        return self.observation()

    def observe_state(self, sim_state: np.ndarray) -> dict[str, np.ndarray]:
        """Observation of a recorded state without resetting or restoring controllers (rendering only).

        Faster than :meth:`reset_to` (no soft reset); do not step from here, use reset_to for that.
        """
        state = np.asarray(sim_state, dtype=np.float64)
        self._check_state(state)
        self.env.sim.set_state_from_flattened(state)
        return self.observation()

    def _check_state(self, state: np.ndarray) -> None:
        sim = self.env.sim
        expected = 1 + sim.model.nq + sim.model.nv
        if state.shape != (expected,):
            raise ValueError(f"sim_state has shape {state.shape}, {self.env_name} expects ({expected},)")

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, dict]:
        """Apply one OSC action [A]; returns (obs, reward, done, info) with ``info["success"]``."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_low.shape:
            raise ValueError(f"action has shape {action.shape}, expected {self.action_low.shape}")
        _, reward, done, info = self.env.step(action)
        info = dict(info)
        info["success"] = self.is_success()
        return self.observation(), float(reward), bool(done), info

    def is_success(self) -> bool:
        """The task's own success check (the registered task's, else robosuite's ``_check_success``)."""
        if self.task is not None:
            return self.task.is_success(self.env)
        return bool(self.env._check_success())

    def get_sim_state(self) -> np.ndarray:
        """float64 [sim_state_dim] flattened MuJoCo state ``[time, qpos, qvel]``."""
        return np.asarray(self.env.sim.get_state().flatten(), dtype=np.float64)

    def render(self) -> np.ndarray:
        """uint8 [S, V * S, 3] (S = image_size): the frame cameras side by side, right side up."""
        frames = [self.render_camera(c) for c in self.frame_cameras]
        return frames[0] if len(frames) == 1 else np.concatenate(frames, axis=1)

    def render_camera(self, camera_name: str) -> np.ndarray:
        """uint8 [image_size, image_size, 3] frame of any camera of the model, right side up."""
        if not self.render_enabled:
            raise RuntimeError("this RobosuiteEnv was built with render=False")
        if camera_name not in self.env.sim.model.camera_names:
            raise ValueError(f"unknown camera {camera_name!r}; available: {list(self.env.sim.model.camera_names)}")
        _make_render_context_current(self.env.sim)
        frame = self.env.sim.render(camera_name=camera_name, width=self.image_size, height=self.image_size)
        return np.ascontiguousarray(frame[::-1]).astype(np.uint8)

    def model_xml(self) -> str:
        """The MuJoCo model xml (stored as a demo's ``model_file`` attribute)."""
        return self.env.sim.model.get_xml()

    def close(self) -> None:
        if self.render_enabled and self.env.sim is not None:
            _release_render_context(self.env.sim)
        self.env.close()

    def __del__(self) -> None:
        # an env dropped without close(): free its GL context now, while nothing else is drawing
        env = getattr(self, "env", None)
        if getattr(self, "render_enabled", False) and env is not None and getattr(env, "sim", None) is not None:
            try:
                _release_render_context(env.sim)
            except Exception:  # interpreter shutdown: EGL / OSMesa may already be gone
                pass

    def __enter__(self) -> RobosuiteEnv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
