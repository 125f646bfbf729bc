"""CEM seeded by the goal-conditioned action prior: ``planner=cem_prior`` (``cem_prior_cpu``).

A different planner from the world model's own ``cem``: the action prior is a behaviour-cloned head
(``models.action_prior``: it maps latents of observations to actions, learned from the demonstrations), so
whatever this planner solves is credited to the prior and the model together, and every output names it
``cem_prior`` with the prior's identity (``plan.py`` records its path, sha256, the checkpoint it was fitted on
and its validation MSE). As in TD-MPC's policy-guided search: every re-plan starts at the prior's proposal
rolled out through the world model (``planning.planners.prior.propose``) with std ``prior_std``, and each candidate's
latent cost gets ``prior_weight`` x its mean squared distance from the proposal.
"""

from __future__ import annotations

import torch

from planning.objectives import LatentGoalObjective
from planning.planners.cem import CEMPlanner
from planning.planners.prior import propose
from planning.planners.protocol import PlanContext


class PriorSeededCEMPlanner(CEMPlanner):
    """:class:`~planning.planners.cem.CEMPlanner` started at the action prior's proposal and held near it.

    Args (besides CEM's):
        prior: the trained prior (``RUN/action_prior``, loaded by ``plan.py``); required.
        prior_std: initial std around the proposal (normalised units).
        prior_weight: cost += prior_weight x mean squared distance from the proposal (a MAP estimate under a
            Gaussian prior: the search leaves the proposal only for a clearly better predicted end state).
            0: plain CEM started at the proposal.

    ``PlanResult.info`` per episode: ``proposal_distance`` (RMS distance, normalised units, of the first planned
    step, the one the MPC executes, from the proposal's) and ``gripper_differs`` (1 where that step's gripper
    command is not the proposal's).
    """

    def __init__(self, model, objective: LatentGoalObjective, prior, name: str = "cem_prior", horizon: int = 5,
                 num_samples: int = 300, topk: int = 30, opt_steps: int = 30, var_scale: float = 1.0,
                 min_std: float = 0.05, chunk_size: int = 4096, warm_start: bool = True, action_repeat: bool = False,
                 keep_elites: int = 0, noise_beta: float = 0.0, return_best: bool = False, gripper_switches: int = 0,
                 schedule_smoothing: float = 0.3, refine_steps: int = 0, refine_lr: float = 0.05,
                 cuda_graph: bool = True, prior_std: float = 0.3, prior_weight: float = 3.0):
        if prior is None:
            raise ValueError(f"planner={name} needs a trained action prior (python -m training.action_prior RUN); "
                             "planner=cem plans with the world model alone")
        if prior_std <= 0 or prior_weight < 0:
            raise ValueError(f"planner.prior_std={prior_std} must be > 0 and planner.prior_weight={prior_weight} >= 0")
        super().__init__(model, objective, name=name, horizon=horizon, num_samples=num_samples, topk=topk,
                         opt_steps=opt_steps, var_scale=var_scale, min_std=min_std, chunk_size=chunk_size,
                         warm_start=warm_start, action_repeat=action_repeat, keep_elites=keep_elites,
                         noise_beta=noise_beta, return_best=return_best, gripper_switches=gripper_switches,
                         schedule_smoothing=schedule_smoothing, refine_steps=refine_steps, refine_lr=refine_lr,
                         cuda_graph=cuda_graph)
        self.prior, self.prior_std, self.prior_weight = prior, float(prior_std), float(prior_weight)

    def start(self, ctx: PlanContext, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        mu = self._reduce(propose(self.model, self.prior, ctx)[0])  # [B, h, a]
        return mu, torch.full_like(mu, self.prior_std), mu.unsqueeze(1)

    def anchor_cost(self, samples: torch.Tensor, anchor: torch.Tensor | None) -> torch.Tensor | None:
        if anchor is None or self.prior_weight <= 0:
            return None
        return self.prior_weight * (samples - anchor).pow(2).mean(dim=(-2, -1))

    def plan_info(self, actions: torch.Tensor, anchor: torch.Tensor | None) -> dict[str, torch.Tensor] | None:
        if anchor is None:
            return None
        proposal = self._expand(anchor[:, 0])  # [B, h, A]
        first, prop = actions[:, 0], proposal[:, 0]  # [B, A]: the step the MPC executes
        gripper = slice(self.model.action_dim - 1, None, self.model.action_dim)  # the gripper entry of each env action
        differs = (torch.sign(first[:, gripper]) != torch.sign(prop[:, gripper])).any(dim=-1)
        return {"proposal_distance": (first - prop).pow(2).mean(dim=-1).sqrt(), "gripper_differs": differs.float()}
