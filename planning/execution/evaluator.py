"""One evaluation batch: reset envs to dataset start states, encode goals, run MPC, measure the outcome.

Success fields per episode (all recorded; ``success`` is the one ``success_rate`` averages):

* ``task_success``: the task's own check (e.g. Lift: cube lifted) after the last executed step.
* ``success_any``: the task's check held after some executed step (robomimic's rollout convention).
* ``goal_reached``: the object position ended within ``goal_tolerance`` metres of the goal frame's and
  the gripper opening within ``gripper_tolerance`` metres of the goal's (open vs closed on the object).
* ``start_is_success`` / ``goal_is_success``: the task's check at the start and at the goal state
  (read in the simulator before planning), so a reader can see whether the goal was a success
  state and whether the start already was one.
* ``final_object_pos`` / ``final_eef_pos``: where the object and the end effector ended (metres, world frame),
  beside ``goal_object_pos`` / ``goal_eef_pos`` (e.g. a lift that ends a few mm under the success height).
* ``start_frame_mae``: mean absolute pixel difference between the frame rendered after the reset and
  the dataset's frame (a check that the reset and the camera match the training frames).
* ``first_plan_cost`` / ``first_reference_cost`` / ``model_prefers_plan``: the ranking diagnostic
  (:func:`ranking`) for model-based planners.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from planning.execution.episodes import EpisodeSpec
from planning.execution.mpc import MPC, MPCResult
from planning.execution.observations import to_model_obs
from tasks.state_layout import eef_position, object_position

log = logging.getLogger(__name__)


@dataclass
class EvalSettings:
    frameskip: int
    history_frames: int = 1
    success_metric: str = "task"  # "task" (the task's own check at the end) or "goal" (goal_reached)
    goal_tolerance: float = 0.02  # metres, object position
    gripper_tolerance: float = 0.01  # metres, finger opening (robot0_gripper_qpos[0] - [1])


def gripper_opening(meta, proprio: np.ndarray) -> float | None:
    """Finger opening (m) from a raw proprio vector, via the dataset's ``robot0_gripper_qpos`` slice."""
    sl = next((s for s in meta.proprio_slices if s.name == "robot0_gripper_qpos"), None)
    if sl is None or sl.size < 2:
        return None
    q = np.asarray(proprio)[sl.start:sl.stop]
    return float(q[0] - q[1])


def seed_simulation(seed: int) -> None:
    """Seed numpy's global generator, which robosuite's object placement draws from on every reset.

    A soft reset leaves solver / controller internals that depend on the env's history, so the same
    evaluation only replays bit for bit when its env sees the same sequence of seeded resets: the
    evaluator seeds before building each env and before each of its resets, with the evaluation's
    own seed, whichever batch or shard it runs in.
    """
    np.random.seed(int(seed) % (2 ** 32))


def _history(data, spec: EpisodeSpec, frames: np.ndarray, k: int, fs: int) -> dict:
    """The k dataset frames / proprios / action chunks before ``spec.start`` (oldest first)."""
    ep, s = spec.episode, spec.start
    idx = [s - j * fs for j in range(k, 0, -1)]
    acts = [data.actions[ep, i:i + fs].reshape(-1).numpy() for i in idx]
    last = data.actions[ep, s - 1].numpy() if s > 0 else np.r_[np.zeros(6), -1.0]  # gripper open at reset
    return {"images": [frames[i] for i in idx], "proprios": [data.proprios[ep, i].numpy() for i in idx],
            "actions": acts, "last_action": last}


def episode_xml(data, episode: int) -> str | None:
    """The episode's own MuJoCo model xml (robosuite randomises e.g. Lift's cube size per model), or None."""
    from datasets.model_files import episode_model_xml

    return episode_model_xml(data.path, data.meta, episode)


def goal_observation(env, data, spec: EpisodeSpec, frames: np.ndarray, xml: str | None = None) -> tuple[dict, bool]:
    """The goal state's observation {"image", "proprio", "state"} and the task's check there.

    ``spec.goal < T``: the dataset frame (as stored, like the training frames). ``spec.goal == T``: the
    terminal state after the last recorded action, which no frame holds: the simulator is reset to
    frame ``T - 1`` (with its controller state) and steps that recorded action, then renders.
    """
    ep, g, last = spec.episode, spec.goal, data.seq_len(spec.episode)
    init = data.sim_states[ep, 0].numpy()
    if g < last:
        env.reset_to(data.sim_states[ep, g].numpy(), data.actions[ep, :g].numpy(), init, model_xml=xml)
        obs = {"image": frames[g], "proprio": data.proprios[ep, g].numpy(), "state": data.states[ep, g].numpy()}
        return obs, env.is_success()
    if g != last:
        raise ValueError(f"goal {g} is past episode {ep}'s terminal state {last}")
    env.reset_to(data.sim_states[ep, last - 1].numpy(), data.actions[ep, :last - 1].numpy(), init, model_xml=xml)
    obs, _, _, info = env.step(data.actions[ep, last - 1].numpy())
    return obs, bool(info["success"])


def successful_episodes(env, data, episodes: list[int]) -> list[int]:
    """The ``episodes`` whose last recorded frame passes the task's own check in the simulator.

    Planning goals are taken at an episode's end; a dataset can also hold episodes that end in a
    failure (e.g. the scripted generator's exploration episodes), which are no goal for the task.
    """
    keep = []
    for ep in episodes:
        last = data.seq_len(ep) - 1
        env.reset_to(data.sim_states[ep, last].numpy())
        if env.is_success():
            keep.append(int(ep))
    return keep


def _reference_actions(data, spec: EpisodeSpec, n_env_steps: int) -> np.ndarray:
    """[n_env_steps, A] recorded actions from the start; past the episode's end the last one repeats."""
    last = data.seq_len(spec.episode) - 1
    idx = np.minimum(np.arange(spec.start, spec.start + n_env_steps), last)
    return data.actions[spec.episode, idx].numpy()


@torch.no_grad()
def latent_distance(model, normalizer, obs_list: list[dict], z_goal: torch.Tensor, device) -> np.ndarray:
    """Mean squared distance [B] between the encoded observations and the goal latents [B, 1, P, D]."""
    imgs = np.stack([o["image"] for o in obs_list])[:, None]
    props = np.stack([o["proprio"] for o in obs_list])[:, None]
    z = model.encode_obs(to_model_obs(imgs, props, normalizer, device))
    return (z - z_goal).pow(2).mean(dim=(1, 2, 3)).cpu().numpy()


def ranking(trace) -> dict:
    """The ranking diagnostic of an episode's first re-plan (the whole horizon from the start): the model's cost
    of the chosen plan beside its cost of the demonstration's own actions from the same state, and whether the
    model preferred the plan. A failed episode whose plan the model preferred is a model failure (it ranks a
    failing plan above one that solves the task); one where it did not is a search failure."""
    if not trace.plan_costs or not trace.reference_costs:
        return {}
    plan, ref = trace.plan_costs[0], trace.reference_costs[0]
    return {"first_plan_cost": plan, "first_reference_cost": ref, "model_prefers_plan": bool(plan < ref)}


def evaluate_batch(model, normalizer, data, envs: list, specs: list[EpisodeSpec], mpc: MPC,
                   settings: EvalSettings, device) -> tuple[list[dict], MPCResult, list[np.ndarray]]:
    """Evaluate ``specs`` (one env each) in one batched MPC run.

    Returns:
        (records, mpc_result, goal_images): one JSON-ready dict per spec, the traces, the goal frames.
    """
    fs, k = settings.frameskip, settings.history_frames - 1
    starts, histories, goals, pre = [], [], [], []
    for env, spec in zip(envs, specs):
        ep = spec.episode
        frames = data.frames(ep)
        init = data.sim_states[ep, 0].numpy()
        xml = episode_xml(data, ep)
        seed_simulation(spec.seed)
        goal, goal_ok = goal_observation(env, data, spec, frames, xml)
        seed_simulation(spec.seed)
        obs = env.reset_to(data.sim_states[ep, spec.start].numpy(), data.actions[ep, :spec.start].numpy(), init,
                           model_xml=xml)
        mae = float(np.abs(obs["image"].astype(np.float32) - frames[spec.start].astype(np.float32)).mean())
        pre.append({"goal_is_success": bool(goal_ok), "start_is_success": env.is_success(),
                    "start_frame_mae": mae})
        starts.append(obs)
        histories.append(_history(data, spec, frames, k, fs))
        goals.append(goal)
    z_goal = model.encode_obs(to_model_obs(np.stack([g["image"] for g in goals])[:, None],
                                           np.stack([g["proprio"] for g in goals])[:, None], normalizer, device))
    generators = [torch.Generator().manual_seed(int(s.seed)) for s in specs]
    ref = np.stack([_reference_actions(data, s, mpc.budget_steps * fs).reshape(mpc.budget_steps, -1)
                    for s in specs])
    result = mpc.run(envs, starts, histories, z_goal, generators, reference_actions=ref)
    finals = [tr.final_obs for tr in result.traces]
    lat = latent_distance(model, normalizer, finals, z_goal, device)
    share = float(sum(result.plan_seconds)) / max(1, len(specs))
    records = []
    for i, (spec, tr) in enumerate(zip(specs, result.traces)):
        goal_obj, goal_eef = object_position(goals[i]["state"]), eef_position(goals[i]["proprio"])
        obj_d = float(np.linalg.norm(tr.obj[-1] - goal_obj))
        eef_d = float(np.linalg.norm(tr.eef[-1] - goal_eef))
        g_final, g_goal = (gripper_opening(data.meta, o["proprio"]) for o in (tr.final_obs, goals[i]))
        grip_d = None if g_final is None or g_goal is None else abs(g_final - g_goal)
        grip_ok = grip_d is None or grip_d < settings.gripper_tolerance
        rec = {**spec.to_dict(), **pre[i], "task_success": bool(tr.success[-1]),
               "success_any": bool(any(tr.success[1:])), "goal_reached": bool(obj_d < settings.goal_tolerance and grip_ok),
               "final_gripper_dist": grip_d,
               "final_latent_dist": float(lat[i]), "final_object_dist": obj_d, "final_eef_dist": eef_d,
               "start_object_dist": float(np.linalg.norm(tr.obj[0] - goal_obj)),
               "goal_object_pos": [float(x) for x in goal_obj], "goal_eef_pos": [float(x) for x in goal_eef],
               "final_object_pos": [float(x) for x in tr.obj[-1]], "final_eef_pos": [float(x) for x in tr.eef[-1]],
               "final_plan_cost": tr.plan_costs[-1] if tr.plan_costs else None,
               **ranking(tr), **{f"mean_{k}": float(np.mean(v)) for k, v in tr.plan_info.items()},
               "planning_seconds": share, "n_replans": result.n_replans, "n_env_steps": len(tr.actions)}
        rec["success"] = rec["task_success"] if settings.success_metric == "task" else rec["goal_reached"]
        records.append(rec)
    return records, result, [g["image"] for g in goals]
