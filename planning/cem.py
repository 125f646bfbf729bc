"""Cross-entropy method over action sequences in the world model's latent space, batched over episodes."""

from __future__ import annotations

import functools
import logging

import torch

from planning.base import (
    PlanContext,
    PlanResult,
    context_on,
    encode_context,
    evaluate_candidates,
    per_episode_noise_steps,
    pin_fixed_dims,
    rollout_predictions,
)
from planning.cuda_graph import run_steps
from planning.objectives import LatentGoalObjective
from planning.prior import propose

log = logging.getLogger(__name__)


class CEMPlanner:
    """CEM in normalised action space; every episode x sample goes through one batched rollout per iteration.

    Per iteration: draw ``num_samples`` sequences ``mu + sigma * eps`` per episode (sample 0 is ``mu``
    itself), clip them to the env bounds (in normalised space), pin the dims the training data never
    varied (``ctx.fixed_dims``) to 0, snap the gripper to open / close when ``ctx.gripper`` says the
    command is binary, score them all with the objective,
    refit ``mu``/``sigma`` to the ``topk`` best of each episode, ``sigma >= min_std``.

    Args:
        model: world model (``rollout``), already on its device, in eval mode.
        objective: latent objective (lower is better).
        horizon: planning steps per plan (an MPC may ask for fewer near the end of its budget).
        num_samples / topk / opt_steps: CEM budget; ``num_samples * opt_steps`` rollouts per episode.
        var_scale: initial std in normalised action units.
        min_std: lower bound on the std after each refit.
        chunk_size: at most this many (episode, sample) rollouts per model forward (memory bound).
        warm_start: start ``mu`` from the previous plan's unexecuted actions when the MPC gives them.
        action_repeat: search one env action per planning step, repeated over the model's
            ``frameskip`` env steps (``A / frameskip`` dims per step instead of ``A``): the scripted and
            teleoperated data change their actions slowly, and a 5x smaller search space is what
            lets a few hundred samples find a multi-step plan.
        prior: a goal-conditioned action prior (``models.action_prior``) or None. When given, every
            re-plan starts ``mu`` at the prior's proposal rolled out through the model
            (``planning.prior.propose``) with std ``prior_std`` instead of the warm start / zeros with
            ``var_scale``: the search refines a plan that already holds the task's phases (reach,
            grasp, lift) instead of discovering them from noise.
        prior_std: initial std around the prior's proposal (normalised units).
        prior_weight: with a prior, every candidate's cost also gets ``prior_weight`` times its mean squared
            distance (normalised units) from the proposal: the search leaves the proposal only where the
            model predicts a clearly better end state (a MAP estimate under a Gaussian prior), so model
            errors smaller than that margin cannot pull a precise proposal off the goal. 0: plain CEM
            started at the proposal.
        cuda_graph: on a GPU, record the second iteration of every re-plan as a CUDA graph and replay it
            for the rest (:mod:`planning.cuda_graph`): one launch per iteration instead of hundreds from
            Python. Not with a predictor compiled in a CUDA-graph mode (``model.rollout_graphs``). The
            first graphed re-plan is checked against the same iteration run eagerly; a failure or a
            mismatch turns it off with one warning. No effect on a CPU.
    """

    name = "cem"
    uses_model = True

    def __init__(self, model, objective: LatentGoalObjective, horizon: int = 5, num_samples: int = 300,
                 topk: int = 30, opt_steps: int = 30, var_scale: float = 1.0, min_std: float = 0.05,
                 chunk_size: int = 4096, warm_start: bool = True, action_repeat: bool = False,
                 prior=None, prior_std: float = 0.3, prior_weight: float = 3.0, cuda_graph: bool = True):
        if not 0 < topk <= num_samples:
            raise ValueError(f"need 0 < topk <= num_samples, got topk={topk}, num_samples={num_samples}")
        if opt_steps < 0:
            raise ValueError(f"planner.opt_steps={opt_steps} must be >= 0 (0: the starting mean, no search)")
        self.model, self.objective = model, objective
        self.horizon, self.num_samples, self.topk, self.opt_steps = int(horizon), int(num_samples), int(topk), int(opt_steps)
        self.var_scale, self.min_std = float(var_scale), float(min_std)
        self.chunk_size, self.warm_start = int(chunk_size), bool(warm_start)
        self.repeat = int(getattr(model, "frameskip", 1)) if action_repeat else 1
        self.prior, self.prior_std, self.prior_weight = prior, float(prior_std), float(prior_weight)
        self.cuda_graph, self._graph_checked = bool(cuda_graph), False

    def initial_mean(self, ctx: PlanContext, a_dim: int, device) -> torch.Tensor:
        """[B, h, A] starting mean: the warm start where given, zeros (the data mean) elsewhere."""
        mu = torch.zeros(ctx.batch_size, ctx.horizon, a_dim, device=device)
        if self.warm_start and ctx.init_actions is not None:
            k = min(ctx.init_actions.shape[1], ctx.horizon)
            mu[:, :k] = ctx.init_actions[:, :k].to(device)
        return pin_fixed_dims(ctx, mu)

    def _expand(self, x: torch.Tensor) -> torch.Tensor:
        """[..., A / repeat] searched actions -> [..., A] model action chunks (each env action repeated)."""
        return x.tile(self.repeat) if self.repeat > 1 else x

    def _reduce(self, x: torch.Tensor) -> torch.Tensor:
        """[..., A] chunks -> [..., A / repeat]: the mean env action of each chunk."""
        return x.unflatten(-1, (self.repeat, -1)).mean(-2) if self.repeat > 1 else x

    def start(self, ctx: PlanContext, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(mu [B, h, a], sigma [B, h, a], the prior's proposal [B, 1, h, a] or None) of a re-plan."""
        if self.prior is not None:
            mu = self._reduce(propose(self.model, self.prior, ctx)[0])  # [B, h, a]
            return mu, torch.full_like(mu, self.prior_std), mu.unsqueeze(1)
        mu = self._reduce(self.initial_mean(ctx, ctx.action_low.shape[-1], device))  # [B, h, a]
        return mu, torch.full_like(mu, self.var_scale), None

    def iteration(self, ctx: PlanContext, z_obs: torch.Tensor | None, proposal: torch.Tensor | None,
                  state: tuple[torch.Tensor, torch.Tensor], eps: torch.Tensor):
        """One CEM iteration: ((mu, sigma) [B, h, a] each, eps [B, N, h, a]) -> ((mu, sigma), costs [B, N]).

        A pure function of device tensors (no host sync, no random numbers): on a GPU it is recorded once
        and replayed as a CUDA graph (:mod:`planning.cuda_graph`)."""
        mu, sigma = state
        low, high = self._reduce(ctx.action_low), self._reduce(ctx.action_high)
        samples = mu.unsqueeze(1) + sigma.unsqueeze(1) * eps  # [B, N, h, a]
        samples[:, 0] = mu
        samples = torch.maximum(torch.minimum(samples, high), low)
        samples = pin_fixed_dims(ctx, self._expand(samples))
        if ctx.gripper is not None:
            samples = ctx.gripper.snap(samples)
        samples = self._reduce(samples)
        costs = evaluate_candidates(self.model, self.objective, ctx, self._expand(samples), self.chunk_size,
                                    z_obs=z_obs)  # [B, N]
        if proposal is not None and self.prior_weight > 0:
            costs = costs + self.prior_weight * (samples - proposal).pow(2).mean(dim=(-2, -1))
        top = torch.topk(costs, self.topk, dim=1, largest=False).indices  # [B, k]
        elite = torch.gather(samples, 1, top[:, :, None, None].expand(-1, -1, *samples.shape[2:]))
        mu = elite.mean(dim=1)
        sigma = elite.std(dim=1, unbiased=False).clamp_min(self.min_std) if self.topk > 1 \
            else torch.full_like(mu, self.min_std)
        return (mu, sigma), costs

    @torch.no_grad()
    def plan(self, ctx: PlanContext) -> PlanResult:
        """Plan ``ctx.horizon`` actions for every episode of ``ctx``; returns the final mean sequence."""
        device = ctx.z_goal.device
        ctx = context_on(ctx, device)  # bounds, pinned dims, gripper levels: no copies inside the iterations
        mu, sigma, proposal = self.start(ctx, device)
        # every iteration's noise at once, in the order per-iteration draws would give: one host -> device copy
        eps = per_episode_noise_steps(ctx.generators, self.opt_steps, (self.num_samples, ctx.horizon, mu.shape[-1]),
                                      device)  # [opt_steps, B, N, h, a]
        z_obs = encode_context(self.model, ctx)
        step = functools.partial(self.iteration, ctx, z_obs, proposal)
        mu, sigma = self._iterate(step, (mu, sigma), eps)
        actions = self._expand(mu) if ctx.gripper is None else ctx.gripper.snap(self._expand(mu))
        z = rollout_predictions(self.model, ctx.obs_0, ctx.past_actions, actions, z_obs=z_obs)
        return PlanResult(actions=actions, z_pred=z, cost=self.objective(z, ctx.z_goal))

    def _iterate(self, step, state, eps: torch.Tensor):
        """``state`` after the ``opt_steps`` iterations: replayed as one CUDA graph when ``cuda_graph`` allows."""
        graph = self.cuda_graph and not getattr(self.model, "rollout_graphs", False)
        state, graphed, why = run_steps(step, state, eps, graph=graph, verify=graph and not self._graph_checked)
        if graphed:
            self._graph_checked = True
        elif why is not None:
            self.cuda_graph = False
            log.warning("CEM iterations run eagerly from now on (planner.cuda_graph=false skips the attempt): "
                        "%s", why)
        return state
