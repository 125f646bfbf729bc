"""Receding-horizon execution of a planner in a batch of simulators.

Every re-plan plans all episodes at once (one batched planner call); then each env executes the
first ``n_taken_actions`` planning steps (``frameskip`` env steps each, denormalised and clipped to
the env's bounds), or the next entry of an ``n_taken_actions`` schedule. The budget is explicit: ``max_iter``
re-plans. The task's success is recorded after every env step for the report, and never read by the planner or
used to stop early.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from einops import rearrange

from planning.execution.mpc_budget import taken_schedule
from planning.execution.observations import (
    action_bounds,
    constant_action_dims,
    images_to_uint8,
    precompute_features,
    to_model_obs,
)
from planning.planners.protocol import GripperLevels, PlanContext, context_for
from planning.planners.rollout import evaluate_candidates
from tasks.state_layout import POSITION_ACTION, eef_position, object_position
from utils.progress import progress

log = logging.getLogger(__name__)


@dataclass
class EpisodeTrace:
    """What happened in one episode (per env step unless said otherwise)."""

    frames: list[np.ndarray] = field(default_factory=list)  # uint8 [H, W, 3], the start frame first
    imagined: list[np.ndarray | None] = field(default_factory=list)  # decoded predicted frame or None
    eef: list[np.ndarray] = field(default_factory=list)  # [3] end-effector position
    obj: list[np.ndarray] = field(default_factory=list)  # [3] object position
    success: list[bool] = field(default_factory=list)  # the task's own check after each step
    actions: list[np.ndarray] = field(default_factory=list)  # executed env actions [7]
    planned_eef: list[np.ndarray] = field(default_factory=list)  # per re-plan: [h * fs + 1, 3] commanded path
    plan_costs: list[float] = field(default_factory=list)  # per re-plan: objective of the chosen plan
    reference_costs: list[float] = field(default_factory=list)  # per re-plan: the model's cost of the demo's actions
    plan_info: dict[str, list[float]] = field(default_factory=dict)  # per re-plan diagnostics (PlanResult.info)
    final_obs: dict | None = None


@dataclass
class MPCResult:
    traces: list[EpisodeTrace]
    plan_seconds: list[float]  # wall time of each batched planner call
    n_replans: int
    n_env_steps: int


class MPC:
    """Receding-horizon controller around a planner.

    Args:
        planner: object with ``horizon`` and ``plan(PlanContext) -> PlanResult``.
        model: world model (for the goal / current-obs encodings and optional decoded frames).
        normalizer: the run's normaliser (actions, proprio).
        frameskip: env steps per planning step.
        n_taken_actions: planning steps executed per re-plan, or a schedule of them, one per re-plan (e.g.
            ``(6, 1, 1, 1)``: the first plan's first 6 steps open loop, then a re-plan from the real frame before
            each of the last 3 steps).
        max_iter: number of re-plans (the budget: ``max_iter * n_taken_actions`` planning steps, or the
            schedule's sum; a schedule's length must equal it).
        shrink_horizon: plan ``min(horizon, steps left in the budget)`` steps, so that the last
            predicted step of every plan lines up with the end of the budget (the goal time).
        history_frames: observed frames given to the model (1 .. num_hist).
        eef_scale: metres per unit of OSC position action (for the commanded eef path in plots).
        decode_imagined: decode the predicted frames (runs trained with a decoder) for the videos.
        binary_gripper: the gripper command (last dim of each env action) is open (-1) or close (+1)
            only, as in the demonstrations: planners search those two values and the MPC executes
            the sign of whatever a planner returns. A half-closed command grasps nothing.
        rank_reference: at every re-plan, also score the demonstration's own actions from the same state with
            the planner's model and objective (``EpisodeTrace.reference_costs``), the ranking diagnostic that
            tells a model failure (the failing plan scored better than the demonstration) from a search failure.
            The planner never sees them (only the replay baseline is given them, :func:`planning.planners.protocol.context_for`).
        later_objective: the planner's objective at every re-plan after the first (None: its own throughout), e.g. a
            state cost that should only act once the first plan has been executed from the real frames (the planner's
            ``objective`` is swapped for the re-plans and restored after the run).
    """

    def __init__(self, planner, model, normalizer, frameskip: int, n_taken_actions: int | Sequence[int] = 1,
                 max_iter: int = 5, shrink_horizon: bool = True, history_frames: int = 1, eef_scale: float = 0.05,
                 decode_imagined: bool = False, device: str | torch.device = "cpu", progress: bool = True,
                 binary_gripper: bool = False, rank_reference: bool = True, later_objective=None):
        self.schedule = taken_schedule(n_taken_actions, max_iter)  # steps executed at each re-plan
        self.planner, self.model, self.normalizer = planner, model, normalizer
        self.frameskip, self.max_iter = int(frameskip), int(max_iter)
        # as configured (an int, or the schedule as a list), for the reports
        self.n_taken = list(self.schedule) if isinstance(n_taken_actions, Sequence) else self.schedule[0]
        self.shrink_horizon, self.history_frames = bool(shrink_horizon), max(1, int(history_frames))
        self.eef_scale, self.decode_imagined = float(eef_scale), bool(decode_imagined)
        self.device, self.progress = torch.device(device), progress
        self.binary_gripper, self.rank_reference = bool(binary_gripper), bool(rank_reference)
        self.later_objective = later_objective

    def _gripper_levels(self, a_dim: int) -> GripperLevels | None:
        """The normalised open / close values of the gripper dims of a [a_dim * fs] chunk, or None."""
        if not self.binary_gripper:
            return None
        raw = torch.zeros(2, a_dim)
        raw[:, -1] = torch.tensor([-1.0, 1.0])
        levels = self.normalizer.normalize_action(raw.tile(self.frameskip)).to(self.device)
        dims = torch.zeros(a_dim, dtype=torch.bool)
        dims[-1] = True
        return GripperLevels(dims=dims.tile(self.frameskip).to(self.device), open=levels[0], close=levels[1])

    @property
    def budget_steps(self) -> int:
        return sum(self.schedule)

    def _context_obs(self, hist_img, hist_prop) -> dict[str, torch.Tensor]:
        t0 = self.history_frames
        imgs = np.stack([np.stack(h[-t0:]) for h in hist_img])  # [B, T0, H, W, 3]
        props = np.stack([np.stack(h[-t0:]) for h in hist_prop])
        return precompute_features(self.model, to_model_obs(imgs, props, self.normalizer, self.device))

    def _past_actions(self, hist_act) -> torch.Tensor:
        k = self.history_frames - 1
        if k == 0:
            return torch.zeros(len(hist_act), 0, self.model.action_dim * self.frameskip, device=self.device)
        raw = torch.as_tensor(np.stack([np.stack(h[-k:]) for h in hist_act]), dtype=torch.float32, device=self.device)
        return self.normalizer.normalize_action(raw)

    def _hold_actions(self, last_raw: np.ndarray) -> torch.Tensor:
        """last executed raw actions [B, 7] -> normalised [B, 7 * fs] chunks of zero arm motion that keep
        each gripper command (the do-nothing action)."""
        hold = np.zeros_like(last_raw)
        hold[:, -1] = last_raw[:, -1]
        raw = torch.as_tensor(np.tile(hold, (1, self.frameskip)), dtype=torch.float32, device=self.device)
        return self.normalizer.normalize_action(raw)

    @staticmethod
    def _start_trace(obs: dict, env) -> EpisodeTrace:
        tr = EpisodeTrace()
        tr.frames.append(obs["image"]), tr.imagined.append(None), tr.eef.append(eef_position(obs["proprio"]))
        tr.obj.append(object_position(obs["state"])), tr.success.append(env.is_success())
        return tr

    def _env_actions(self, actions: torch.Tensor, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Planned normalised chunks [B, h, 7 * fs] -> env actions [B, h * fs, 7] in the env's bounds
        (the gripper as open / close when ``binary_gripper``)."""
        raw = self.normalizer.denormalize_action(actions).float().cpu().numpy()
        raw = np.clip(rearrange(raw, "b h (f a) -> b (h f) a", f=self.frameskip), low, high)
        if self.binary_gripper:
            raw[..., -1] = np.where(raw[..., -1] > 0, 1.0, -1.0)
        return raw

    def _execute(self, env, tr: EpisodeTrace, raw: np.ndarray, n_exec: int, imagined: np.ndarray | None,
                 history: tuple[list, list, list]) -> np.ndarray:
        """Step ``env`` through the first ``n_exec`` planning steps of ``raw`` [h * fs, 7], recording them in
        ``tr`` and in the (images, proprios, action chunks) ``history``; returns the last env action."""
        fs, (hist_img, hist_prop, hist_act) = self.frameskip, history
        for j in range(n_exec):
            for a in raw[j * fs:(j + 1) * fs]:
                obs, _, _, info = env.step(a)
                tr.frames.append(obs["image"]), tr.eef.append(eef_position(obs["proprio"]))
                tr.obj.append(object_position(obs["state"])), tr.success.append(bool(info["success"]))
                tr.actions.append(a.copy())
                tr.imagined.append(None if imagined is None else imagined[j])
            hist_img.append(obs["image"]), hist_prop.append(obs["proprio"])
            hist_act.append(raw[j * fs:(j + 1) * fs].reshape(-1))
        tr.final_obs = obs
        return raw[n_exec * fs - 1]

    def _reference_cost(self, ctx: PlanContext, reference: torch.Tensor | None) -> torch.Tensor | None:
        """[B] the planner's model and objective applied to the demonstration's actions [B, h, A] from this state
        (its gripper snapped as the planner's candidates are), or None (no reference, or a model-free planner)."""
        objective = getattr(self.planner, "objective", None)
        if not self.rank_reference or reference is None or objective is None or not self.planner.uses_model:
            return None
        cand = reference if ctx.gripper is None else ctx.gripper.snap(reference)
        return evaluate_candidates(self.model, objective, ctx, cand[:, None], chunk_size=4096)[:, 0]

    def _commanded_path(self, eef: np.ndarray, actions_raw: np.ndarray) -> np.ndarray:
        """eef [3] + raw actions [h * fs, 7] -> [h * fs + 1, 3] path commanded by the OSC position deltas."""
        steps = np.clip(actions_raw[:, POSITION_ACTION], -1, 1) * self.eef_scale
        return np.concatenate([eef[None], eef[None] + np.cumsum(steps, axis=0)], axis=0)

    @torch.no_grad()
    def _record_plan(self, tr, i: int, raw_i: np.ndarray, res, ref_cost: torch.Tensor | None) -> None:
        """Evaluation ``i``'s trace gets this re-plan's commanded eef path (from ``raw_i`` [h * fs, 7]), its plan cost,
        the demonstration's cost under the same model (the ranking diagnostic) and the planner's per-plan info."""
        tr.planned_eef.append(self._commanded_path(tr.eef[-1], raw_i))
        if res.cost is not None:
            tr.plan_costs.append(float(res.cost[i]))
        if ref_cost is not None:
            tr.reference_costs.append(float(ref_cost[i]))
        for key, value in (res.info or {}).items():
            tr.plan_info.setdefault(key, []).append(float(value[i]))

    def run(self, envs: list, start_obs: list[dict], history: list[dict], z_goal: torch.Tensor,
            generators: list[torch.Generator], reference_actions: np.ndarray | None = None) -> MPCResult:
        """Plan and execute in every env for ``max_iter`` re-plans (see :meth:`_run`); the planner's own objective is
        back in place afterwards whatever happens."""
        first = getattr(self.planner, "objective", None)
        try:
            return self._run(envs, start_obs, history, z_goal, generators, reference_actions)
        finally:
            if self.later_objective is not None:
                self.planner.objective = first

    def _run(self, envs: list, start_obs: list[dict], history: list[dict], z_goal: torch.Tensor,
             generators: list[torch.Generator], reference_actions: np.ndarray | None = None) -> MPCResult:
        """Plan and execute in every env for ``max_iter`` re-plans.

        Args:
            envs: B envs already reset to their start states (``RobosuiteEnv``-like).
            start_obs: B observations of those states ({"image", "state", "proprio"}).
            history: B dicts {"images": [k, H, W, 3], "proprios": [k, p], "actions": [k, 7 * fs]} of the
                ``k = history_frames - 1`` dataset frames / action chunks before the start (k may be 0),
                optionally "last_action" [7]: the recorded env action before the start (gripper state).
            z_goal: [B, 1, P, D] goal latents.
            generators: B seeded CPU generators (planner noise).
            reference_actions: raw [B, budget_steps, 7 * fs] dataset actions from the start (replay) or None.
        """
        fs = self.frameskip
        low, high = envs[0].action_low, envs[0].action_high
        low_n, high_n = action_bounds(self.normalizer, low, high, fs)
        fixed = constant_action_dims(self.normalizer, fs).to(self.device)
        fixed = fixed if bool(fixed.any()) else None
        gripper = self._gripper_levels(len(low))
        hist_img = [list(h["images"]) + [o["image"]] for h, o in zip(history, start_obs)]
        hist_prop = [list(h["proprios"]) + [o["proprio"]] for h, o in zip(history, start_obs)]
        hist_act = [list(h["actions"]) for h in history]
        last_raw = np.stack([np.asarray(h.get("last_action", np.r_[np.zeros(len(low) - 1), -1.0]), dtype=np.float32)
                             for h in history])  # [B, A]: no arm motion, gripper open
        traces = [self._start_trace(o, env) for o, env in zip(start_obs, envs)]
        ref = None if reference_actions is None else self.normalizer.normalize_action(
            torch.as_tensor(reference_actions, dtype=torch.float32, device=self.device))
        prev, plan_seconds, done = None, [], 0
        bar = progress(range(self.max_iter), desc=f"MPC {getattr(self.planner, 'name', 'plan')}", disable=not self.progress)
        for k in bar:
            if done >= self.budget_steps:  # here, not after the step: the bar has counted the last re-plan
                break
            left = self.budget_steps - done
            horizon = min(self.planner.horizon, left) if self.shrink_horizon else self.planner.horizon
            ctx = PlanContext(obs_0=self._context_obs(hist_img, hist_prop), past_actions=self._past_actions(hist_act),
                              z_goal=z_goal, horizon=horizon, generators=generators, action_low=low_n.to(self.device),
                              action_high=high_n.to(self.device), init_actions=prev,
                              fixed_dims=fixed, hold_actions=self._hold_actions(last_raw), gripper=gripper)
            if k == 1 and self.later_objective is not None:
                self.planner.objective = self.later_objective
            ref_now = None if ref is None else ref[:, done:done + horizon]
            t = time.perf_counter()
            res = self.planner.plan(context_for(self.planner, ctx, ref_now))
            plan_seconds.append(time.perf_counter() - t)
            ref_cost = self._reference_cost(ctx, ref_now)
            raw = self._env_actions(res.actions, low, high)  # [B, h * fs, 7]
            imagined = None
            if self.decode_imagined and res.z_pred is not None and getattr(self.model, "has_decoder", False):
                imagined = images_to_uint8(self.model.decode(res.z_pred[:, : self.schedule[k]]))  # [B, n, H, W, 3]
            n_exec = min(self.schedule[k], horizon)
            for i, (env, tr) in enumerate(zip(envs, traces)):
                self._record_plan(tr, i, raw[i], res, ref_cost)
                last_raw[i] = self._execute(env, tr, raw[i], n_exec, None if imagined is None else imagined[i],
                                            (hist_img[i], hist_prop[i], hist_act[i]))
            done += n_exec
            prev = res.actions[:, n_exec:] if res.actions.shape[1] > n_exec else None
            bar.set_postfix(success=f"{np.mean([tr.success[-1] for tr in traces]):.2f}", plan_s=f"{plan_seconds[-1]:.2f}")
        return MPCResult(traces=traces, plan_seconds=plan_seconds, n_replans=len(plan_seconds), n_env_steps=done * fs)
