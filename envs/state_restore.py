"""Controller state that ``sim.get_state()`` does not hold, and how to restore it (see SIMULATOR.md).

Two pieces decide how the robot answers the next action, besides the MuJoCo state:

- the gripper command ramp: the Panda gripper's ``current_action`` [2] moves toward the commanded
  side by 0.2 per step (``format_action``). It starts at zero when the gripper model is built
  and is NOT reset by a soft reset. :func:`reset_gripper_ramp` zeroes it (what a hard reset gives,
  so every episode starts alike) and :func:`restore_gripper_ramp` rebuilds it from past actions.
- the arm OSC controller's nullspace target ``initial_joint``: the arm's joint positions at the
  episode's reset. :func:`restore_nullspace_target` sets it from the episode's first sim state.

Flattened MuJoCo states (``MjSim.get_state().flatten()``) are ``[time, qpos..., qvel...]``.
"""

from __future__ import annotations

import numpy as np

RAMP_STEPS = 5  # |current_action| saturates after 5 steps of 0.2: older actions no longer matter


def _grippers(env) -> list:
    out = []
    for robot in env.robots:
        for arm in robot.arms:
            if robot.has_gripper[arm] and hasattr(robot.gripper[arm], "current_action"):
                out.append(robot.gripper[arm])
    return out


def reset_gripper_ramp(env) -> None:
    """Zero every gripper's command ramp, as at the start of an episode after a hard reset."""
    for gripper in _grippers(env):
        gripper.current_action = np.zeros_like(np.asarray(gripper.current_action, dtype=np.float64))


def restore_gripper_ramp(env, past_actions: np.ndarray | None) -> None:
    """Rebuild the gripper ramp from the actions taken before the current frame.

    Args:
        past_actions: [K, action_dim] actions of this episode before the start frame, oldest first
            (K may be 0 or None: the ramp is then zero, as at an episode start). The last action
            entry of each row is the gripper command. Starting from zero, all given actions are
            applied in order: all of the episode's past actions give the exact ramp; only the
            last ``RAMP_STEPS`` is exact too whenever the gripper command kept its sign over them.
    """
    reset_gripper_ramp(env)
    if past_actions is None or len(past_actions) == 0:
        return
    past = np.asarray(past_actions, dtype=np.float64)
    if past.ndim != 2:
        raise ValueError(f"past_actions must be [K, action_dim], got shape {past.shape}")
    grippers = _grippers(env)
    if len(grippers) != 1:
        raise NotImplementedError(f"gripper ramp restore supports one gripper, env has {len(grippers)}")
    gripper = grippers[0]
    for a in past:
        gripper.format_action(a[-gripper.dof:] if gripper.dof > 1 else a[-1:])


def restore_nullspace_target(env, initial_sim_state: np.ndarray | None) -> None:
    """Set each arm controller's nullspace target to the arm joints of ``initial_sim_state``.

    Call after the sim holds the state to continue from (the controller update reads it).
    ``None`` leaves the targets as the last reset set them.
    """
    if initial_sim_state is None:
        return
    state = np.asarray(initial_sim_state, dtype=np.float64)
    for robot in env.robots:
        q0 = state[1 + np.asarray(robot._ref_joint_pos_indexes)]
        for arm in robot.arms:
            controller = robot.part_controllers.get(arm)
            if controller is not None and hasattr(controller, "update_initial_joints"):
                controller.update_initial_joints(q0)
