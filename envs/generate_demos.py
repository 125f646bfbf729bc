"""Generate scripted demonstrations of a registered task in robosuite, written in robomimic's hdf5 layout.

Layout (as robomimic writes it)::

    data                      attrs: total (sum of num_samples), env_args (JSON: env_name, type=1,
                                     env_kwargs incl. controller_configs), robosuite_version
    data/demo_i               attrs: num_samples, model_file (MuJoCo xml)
    data/demo_i/states        float64 [T, sim_dim]  flattened MuJoCo state before action t
    data/demo_i/actions       float64 [T, 7]
    data/demo_i/rewards       float64 [T]           sparse task reward after action t
    data/demo_i/dones         int64   [T]           1 at the last step
    data/demo_i/obs/<key>     low-dim obs before action t: object (canonical order, see
                              tasks/state_layout.py), robot0_eef_pos, robot0_eef_quat,
                              robot0_gripper_qpos, robot0_gripper_qvel, robot0_joint_pos, ...
    data/demo_i/obs/<cam>_image  uint8 [T, H, W, 3], right side up (only if cameras are asked for)
    mask/train, mask/valid    byte strings of demo names (about 10% valid)

Only successful episodes are kept. After the first step whose result passes the task's check the
policy keeps going for ``hold_steps`` more steps (it holds the lifted / placed object), and the episode
is kept only if the check still passes at its end: the last frames are then success states, so a
planning goal taken there is a state where the task is really done. Placement randomisation is
robosuite's own, seeded with ``seed``. The task's env, scripted policy, step limits and main camera
come from its registry entry (``tasks/builtin.py``); tasks without a scripted policy cannot be generated.

CLI: ``python -m envs.generate_demos --task lift --n-episodes 24 --output data/demo/lift/demo.hdf5``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from envs.controller_config import composite_controller_config
from envs.robosuite_env import RobosuiteEnv
from tasks.registry import get_task, known_tasks
from tasks.scripted_policy import PERTURBATIONS, ScriptedPolicy
from tasks.state_layout import object_vector
from tasks.task import Task
from utils.atomic_files import atomic_path
from utils.progress import progress as progress_bar

log = logging.getLogger(__name__)

EYE_IN_HAND = "robot0_eye_in_hand"
DEFAULT_CAMERAS = ("agentview", EYE_IN_HAND)  # the task's default camera, then the wrist camera
LOW_DIM_SKIP = ("robot0_proprio-state", "object-state")


def demo_env_kwargs(camera_names: Sequence[str], image_size: int) -> dict:
    """The env_kwargs stored in ``env_args`` (robosuite 1.5 composite OSC_POSE controller, 20 Hz)."""
    cams = list(camera_names)
    return {
        "has_renderer": False, "has_offscreen_renderer": bool(cams), "ignore_done": True,
        "use_object_obs": True, "use_camera_obs": bool(cams), "control_freq": 20,
        "controller_configs": composite_controller_config(None, "Panda"), "robots": ["Panda"],
        "camera_depths": False, "camera_heights": image_size, "camera_widths": image_size,
        "camera_names": cams or ["agentview"], "reward_shaping": False, "lite_physics": True,
    }


def _low_dim(raw: dict, env_name: str) -> dict[str, np.ndarray]:
    out = {"object": object_vector(raw, env_name)}
    for key, value in raw.items():
        if key.startswith("robot0_") and key not in LOW_DIM_SKIP and not key.endswith("_image"):
            out[key] = np.asarray(value)
    return out


def scripted_tasks() -> list[str]:
    """Registered tasks the generator can make demos of (they have a scripted policy)."""
    return [n for n in known_tasks() if get_task(n).has_policy]


def run_episode(env: RobosuiteEnv, policy: ScriptedPolicy, cameras: Sequence[str], max_steps: int,
                hold_steps: int = 0, perturbation: str | None = None) -> dict | None:
    """Run one scripted episode; the recorded arrays if it succeeds (and still succeeds ``hold_steps``
    steps after its first success), else None. With a ``perturbation`` (an exploration episode) it is
    recorded whatever happens, until ``hold_steps`` steps after the policy's last phase (or ``max_steps``)."""
    obs = env.reset()
    policy.reset(perturbation)
    if env.task is not None and env.task.policy_goal is not None:
        policy.goal_pos = np.asarray(env.task.policy_goal(env.env), dtype=np.float64)
    rec: dict[str, list] = {"states": [], "actions": [], "rewards": [], "obs": []}
    images: dict[str, list] = {c: [] for c in cameras}
    first_success = finished = None
    for t in range(max_steps + hold_steps):
        rec["states"].append(env.get_sim_state())
        rec["obs"].append(_low_dim(env.last_raw_obs, env.env_name))
        for cam in cameras:
            images[cam].append(obs["image"] if cam == env.camera_name else env.render_camera(cam))
        action = policy(obs)
        obs, reward, _, info = env.step(action)
        rec["actions"].append(action)
        rec["rewards"].append(reward)
        if perturbation is not None:
            finished = t if finished is None and policy.done else finished
            if (finished is not None and t - finished >= hold_steps) or t + 1 >= max_steps:
                return _episode_arrays(rec, images, cameras)
            continue
        if info["success"] and first_success is None:
            first_success = t
        if first_success is None and t + 1 >= max_steps:
            return None
        if first_success is not None and t - first_success >= hold_steps:
            return _episode_arrays(rec, images, cameras) if info["success"] else None
    return None


def _episode_arrays(rec: dict, images: dict, cameras: Sequence[str]) -> dict:
    obs_keys = rec["obs"][0].keys()
    n = len(rec["actions"])
    return {
        "states": np.stack(rec["states"]).astype(np.float64),
        "actions": np.stack(rec["actions"]).astype(np.float64),
        "rewards": np.asarray(rec["rewards"], dtype=np.float64),
        "dones": np.eye(1, n, n - 1, dtype=np.int64)[0],
        "obs": {k: np.stack([o[k] for o in rec["obs"]]) for k in obs_keys}
        | {f"{c}_image": np.stack(images[c]).astype(np.uint8) for c in cameras},
    }


def _write_demo(grp: h5py.Group, ep: dict, model_xml: str) -> None:
    grp.attrs["num_samples"] = len(ep["actions"])
    grp.attrs["model_file"] = model_xml
    for key in ("states", "actions", "rewards", "dones"):
        grp.create_dataset(key, data=ep[key])
    for key, value in ep["obs"].items():
        grp.create_dataset(f"obs/{key}", data=value)


def _write_masks(f: h5py.File, names: list[str], explore: list[str]) -> None:
    """About 10% of the successful demos are ``mask/valid``; exploration episodes are always train."""
    n_valid = max(1, round(0.1 * len(names))) if len(names) > 1 else 0
    valid = names[len(names) - n_valid:] if n_valid else []
    train = [n for n in [*names, *explore] if n not in valid]
    f.create_dataset("mask/train", data=np.array(sorted(train, key=lambda n: int(n.split("_")[1])), dtype="S"))
    f.create_dataset("mask/valid", data=np.array(valid, dtype="S"))


@dataclass
class _Tally:
    names: list = field(default_factory=list)  # successful demos
    explore: list = field(default_factory=list)  # exploration episodes (see scripted_policy.PERTURBATIONS)
    steps: list = field(default_factory=list)
    attempts: int = 0

    @property
    def written(self) -> int:
        return len(self.names) + len(self.explore)


def _collect(data: h5py.Group, env: RobosuiteEnv, policy: ScriptedPolicy, task: Task, cameras: list[str],
             n_success: int, n_explore: int, hold_steps: int, max_attempts: int, rng, bar) -> _Tally:
    """Run episodes until ``n_success`` successful demos and ``n_explore`` exploration episodes are written."""
    tally = _Tally()
    while len(tally.names) < n_success or len(tally.explore) < n_explore:
        if tally.attempts >= max_attempts:
            raise RuntimeError(f"only {len(tally.names)}/{n_success} successful {task.name} episodes "
                               f"in {tally.attempts} attempts")
        tally.attempts += 1
        explore = len(tally.explore) < n_explore and (len(tally.names) >= n_success or rng.random() < 0.5)
        kind = str(rng.choice(PERTURBATIONS)) if explore else None
        ep = run_episode(env, policy, cameras, task.max_steps, hold_steps, perturbation=kind)
        if ep is None:
            bar.set_postfix(success=f"{len(tally.names)}/{tally.attempts}")
            continue
        name = f"demo_{tally.written}"
        grp = data.create_group(name)
        _write_demo(grp, ep, env.model_xml())
        if kind is not None:
            grp.attrs["scripted_perturbation"] = kind
        (tally.explore if explore else tally.names).append(name)
        tally.steps.append(len(ep["actions"]))
        bar.update(1)
        bar.set_postfix(success=f"{len(tally.names)}/{tally.attempts}")
    return tally


def generate_demos(task: str, n_episodes: int, output_path: str | Path,
                   camera_names: Sequence[str] | None = DEFAULT_CAMERAS, image_size: int = 84,
                   seed: int = 0, max_attempts: int | None = None, progress: bool = True,
                   hold_steps: int | None = None, explore_fraction: float = 0.0,
                   policy: ScriptedPolicy | None = None) -> dict:
    """Write ``n_episodes`` scripted episodes of ``task`` (a registered task name: "lift", "can") to ``output_path``.

    ``round(explore_fraction * n_episodes)`` of them are exploration episodes (a deliberate mistake,
    see ``scripted_policy.PERTURBATIONS``; kept whatever happens, attribute ``scripted_perturbation``,
    always in ``mask/train``), the rest successful demos. ``hold_steps`` (default the task's ``hold_steps``)
    steps are recorded after the first success. Returns stats: ``successes``, ``explore``, ``attempts``,
    ``success_rate``, ``seconds_per_episode`` (wall time per attempted episode), ``steps_per_episode``
    (mean over kept episodes), ``path``. Raises RuntimeError (and writes nothing) if ``max_attempts``
    (default 2n + 10) run out first. ``policy``: another policy with the scripted policy's interface
    (``reset(perturbation)``, ``done``, ``__call__(obs)``, ``goal_pos``, ``rng``), e.g. a second generator
    with other gains and timing (``benchmarks/alt_lift_demos.py``); None: the task's scripted policy.
    """
    spec = get_task(task)
    if not spec.has_policy:
        raise ValueError(f"task {task!r} has no scripted policy; choose one of {scripted_tasks()}")
    if camera_names is DEFAULT_CAMERAS:
        camera_names = (spec.default_camera, EYE_IN_HAND)
    if n_episodes < 1 or not 0.0 <= explore_fraction < 1.0:
        raise ValueError("n_episodes must be >= 1 and explore_fraction in [0, 1)")
    cameras = list(camera_names or [])
    env_kwargs = demo_env_kwargs(cameras, image_size)
    n_explore = int(round(explore_fraction * n_episodes))
    output_path = Path(output_path)
    rng = np.random.default_rng(seed)
    env = RobosuiteEnv(spec.env_name, {**env_kwargs, "seed": seed}, camera_name=cameras[0] if cameras else spec.default_camera,
                       image_size=image_size, render=bool(cameras))
    if policy is None:
        policy = ScriptedPolicy(task, goal_pos=np.zeros(3), rng=rng)
    t0 = time.perf_counter()
    bar = progress_bar(total=n_episodes, desc=f"{task} demos", unit="ep", disable=not progress)
    try:
        with atomic_path(output_path) as tmp, h5py.File(tmp, "w") as f:
            data = f.create_group("data")
            tally = _collect(data, env, policy, spec, cameras, n_episodes - n_explore, n_explore,
                             spec.hold_steps if hold_steps is None else int(hold_steps),
                             max_attempts or 2 * n_episodes + 10, rng, bar)
            data.attrs["total"] = int(sum(tally.steps))
            data.attrs["env_args"] = json.dumps({"env_name": spec.env_name, "type": 1, "env_kwargs": env_kwargs})
            import robosuite
            data.attrs["robosuite_version"] = robosuite.__version__
            _write_masks(f, tally.names, tally.explore)
    finally:
        bar.close()
        env.close()
    seconds = time.perf_counter() - t0
    return {"task": task, "successes": len(tally.names), "explore": len(tally.explore), "attempts": tally.attempts,
            "success_rate": len(tally.names) / max(1, tally.attempts - len(tally.explore)),
            "seconds_per_episode": seconds / tally.attempts, "steps_per_episode": float(np.mean(tally.steps)),
            "seconds": seconds, "path": str(output_path)}


def _refusal(args: argparse.Namespace) -> str | None:
    """Why these arguments cannot give a demo file (one line), before minutes of simulation; None if they can."""
    if args.n_episodes < 1 or args.image_size < 8:
        return "--n-episodes must be >= 1 and --image-size >= 8"
    if (args.max_attempts is not None and args.max_attempts < 1) or (args.hold_steps is not None and args.hold_steps < 0):
        return f"--max-attempts must be >= 1 and --hold-steps >= 0 (got {args.max_attempts}, {args.hold_steps})"
    out = args.output
    if not str(out).strip() or out.is_dir() or str(out).endswith("/"):
        return f"--output {str(out)!r} must name a file (e.g. data/demo/lift/demo.hdf5), not a directory"
    if out.exists() and not args.overwrite:
        return f"--output {out} exists: pass --overwrite to replace it"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate scripted robosuite demos (robomimic hdf5 layout).")
    parser.add_argument("--task", required=True, choices=scripted_tasks(),
                        help="a registered task with a scripted policy: " + ", ".join(
                            f"{n} ({get_task(n).env_name})" for n in scripted_tasks()))
    parser.add_argument("--n-episodes", type=int, default=24, help="successful episodes to keep (default 24)")
    parser.add_argument("--output", required=True, type=Path, help="hdf5 file to write (atomically)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    cams = parser.add_mutually_exclusive_group()
    cams.add_argument("--cameras", default=None,
                      help="comma-separated camera names to record (default: the task's camera, robot0_eye_in_hand)")
    cams.add_argument("--no-cameras", action="store_true", help="record no images (states and low-dim obs only)")
    parser.add_argument("--image-size", type=int, default=84, help="camera image size in pixels (default 84)")
    parser.add_argument("--seed", type=int, default=0, help="seed of placement randomisation and action noise")
    parser.add_argument("--max-attempts", type=int, default=None, help="give up after this many episodes")
    parser.add_argument("--hold-steps", type=int, default=None,
                        help="steps recorded after the first success, holding it (default: the task's hold_steps)")
    parser.add_argument("--explore-fraction", type=float, default=0.0,
                        help="fraction of exploration episodes with a deliberate mistake (missed grasp, drop), "
                             "kept in mask/train only (default 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    refused = _refusal(args)
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    cameras = [] if args.no_cameras else DEFAULT_CAMERAS if args.cameras is None else \
        [c for c in args.cameras.split(",") if c]
    folder = Path(args.output).resolve().parent
    try:  # before minutes of simulation: the file must be writable where it is asked for
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: cannot create {folder} for --output: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if not os.access(folder, os.W_OK):
        print(f"error: {folder} is not writable (--output {args.output})", file=sys.stderr)
        return 2
    try:
        stats = generate_demos(args.task, args.n_episodes, args.output, cameras, args.image_size,
                               args.seed, args.max_attempts, hold_steps=args.hold_steps,
                               explore_fraction=args.explore_fraction)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {stats['successes']} {args.task} demos + {stats['explore']} exploration episodes "
          f"({stats['successes']}/{stats['attempts'] - stats['explore']} successful, "
          f"{stats['seconds_per_episode']:.2f} s/episode, {stats['steps_per_episode']:.0f} steps/episode) "
          f"to {stats['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
