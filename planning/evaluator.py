"""One evaluation batch: reset envs to dataset start states, encode goals, run MPC, measure the outcome.

Success fields per episode (all recorded; ``success`` is the one ``success_rate`` averages):

* ``task_success``: the task's own check (e.g. Lift: cube lifted) after the last executed step.
* ``success_any``: the task's check held after some executed step (robomimic's rollout convention).
* ``goal_reached``: the object position ended within ``goal_tolerance`` metres of the goal frame's.
* ``start_is_success`` / ``goal_is_success``: the task's check at the start and at the goal frame
  (read by resetting the simulator to those dataset states before planning), so a reader can see
  whether the goal was a success state and whether the start already was one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from planning.episodes import EpisodeSpec
from planning.mpc import MPC, MPCResult
from planning.observations import to_model_obs

log = logging.getLogger(__name__)


@dataclass
class EvalSettings:
    frameskip: int
    history_frames: int = 1
    success_metric: str = "task"  # "task" (the task's own check at the end) or "goal" (goal_reached)
    goal_tolerance: float = 0.02  # metres, object position


def _history(data, spec: EpisodeSpec, frames: np.ndarray, k: int, fs: int) -> dict:
    """The k dataset frames / proprios / action chunks before ``spec.start`` (oldest first)."""
    ep, s = spec.episode, spec.start
    idx = [s - j * fs for j in range(k, 0, -1)]
    acts = [data.actions[ep, i:i + fs].reshape(-1).numpy() for i in idx]
    return {"images": [frames[i] for i in idx], "proprios": [data.proprios[ep, i].numpy() for i in idx],
            "actions": acts}


def _reference_actions(data, spec: EpisodeSpec, n_env_steps: int) -> np.ndarray:
    """[n_env_steps, 7] recorded actions from the start; past the episode's end the last one repeats."""
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


def evaluate_batch(model, normalizer, data, envs: list, specs: list[EpisodeSpec], mpc: MPC,
                   settings: EvalSettings, device) -> tuple[list[dict], MPCResult, list[np.ndarray]]:
    """Evaluate ``specs`` (one env each) in one batched MPC run.

    Returns:
        (records, mpc_result, goal_images): one JSON-ready dict per spec, the traces, the goal frames.
    """
    fs, k = settings.frameskip, settings.history_frames - 1
    starts, histories, goal_imgs, goal_props, pre = [], [], [], [], []
    for env, spec in zip(envs, specs):
        ep = spec.episode
        frames = data.frames(ep)
        init = data.sim_states[ep, 0].numpy()
        env.reset_to(data.sim_states[ep, spec.goal].numpy(), data.actions[ep, :spec.goal].numpy(), init)
        goal_ok = env.is_success()
        obs = env.reset_to(data.sim_states[ep, spec.start].numpy(), data.actions[ep, :spec.start].numpy(), init)
        mae = float(np.abs(obs["image"].astype(np.float32) - frames[spec.start].astype(np.float32)).mean())
        pre.append({"goal_is_success": bool(goal_ok), "start_is_success": env.is_success(),
                    "start_frame_mae": mae})
        starts.append(obs)
        histories.append(_history(data, spec, frames, k, fs))
        goal_imgs.append(frames[spec.goal])
        goal_props.append(data.proprios[ep, spec.goal].numpy())
    z_goal = model.encode_obs(to_model_obs(np.stack(goal_imgs)[:, None], np.stack(goal_props)[:, None],
                                           normalizer, device))
    generators = [torch.Generator().manual_seed(int(s.seed)) for s in specs]
    ref = np.stack([_reference_actions(data, s, mpc.budget_steps * fs).reshape(mpc.budget_steps, fs * 7)
                    for s in specs])
    result = mpc.run(envs, starts, histories, z_goal, generators, reference_actions=ref)
    finals = [tr.final_obs for tr in result.traces]
    lat = latent_distance(model, normalizer, finals, z_goal, device)
    share = float(sum(result.plan_seconds)) / max(1, len(specs))
    records = []
    for i, (spec, tr) in enumerate(zip(specs, result.traces)):
        ep = spec.episode
        obj_d = float(np.linalg.norm(tr.obj[-1] - data.states[ep, spec.goal, :3].numpy()))
        eef_d = float(np.linalg.norm(tr.eef[-1] - data.proprios[ep, spec.goal, :3].numpy()))
        rec = {**spec.to_dict(), **pre[i], "task_success": bool(tr.success[-1]),
               "success_any": bool(any(tr.success[1:])), "goal_reached": obj_d < settings.goal_tolerance,
               "final_latent_dist": float(lat[i]), "final_object_dist": obj_d, "final_eef_dist": eef_d,
               "start_object_dist": float(np.linalg.norm(tr.obj[0] - data.states[ep, spec.goal, :3].numpy())),
               "final_plan_cost": tr.plan_costs[-1] if tr.plan_costs else None,
               "planning_seconds": share, "n_replans": result.n_replans, "n_env_steps": len(tr.actions)}
        rec["success"] = rec["task_success"] if settings.success_metric == "task" else rec["goal_reached"]
        records.append(rec)
    return records, result, goal_imgs
