"""Cross-entropy method over action sequences in the world model's latent space, batched over episodes.

``CEMPlanner`` (``planner=cem``, ``cem_cpu``) is the world model's own planner: it chooses actions only by
scoring candidate sequences with rollouts of the trained predictor. Nothing learned from demonstrations that
maps observations to actions takes part (the prior-seeded search is ``planning.planners.cem_prior``, under its own name).
"""

from __future__ import annotations

import functools
import logging

import torch

from planning.objectives import LatentGoalObjective
from planning.planners import gripper_schedules as gs
from planning.planners.cuda_graph import run_steps
from planning.planners.protocol import PlanContext, PlanResult, context_on
from planning.planners.rollout import encode_context, evaluate_candidates, rollout_predictions
from planning.planners.sampling import per_episode_noise_steps, pin_fixed_dims

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
        keep_elites: how many of each iteration's elites (at most ``topk`` and ``num_samples - 1``) are carried into
            the next iteration's samples (iCEM,
            Pinneri et al. 2020): the best plans found so far are never lost to an unlucky draw. 0: plain CEM.
        noise_beta: exponent of the samples' temporal noise spectrum, power ~ 1/f^beta along the horizon
            (iCEM's coloured noise): 0 white, 2 smooth (consecutive steps move together, as arm motions do).
        return_best: return the lowest-cost candidate seen in any iteration instead of the final mean (a mean
            of elites that grasp at different steps grasps at none).
        gripper_switches: with a binary gripper (``ctx.gripper``), search the gripper as a discrete choice: every
            candidate follows an open / close schedule with at most this many switches from the current command,
            drawn from a categorical distribution refitted to the elites (:mod:`planning.planners.gripper_schedules`).
            0: the gripper is one more Gaussian dimension, snapped to open / close.
        schedule_smoothing: weight of the old categorical distribution in each refit (0: the elites' only).
        refine_steps: Adam steps on the chosen plan's arm actions, descending the gradient of its cost through the
            predictor's rollout (the gripper schedule and the pinned dims held); the plan with the lowest cost seen is
            kept, so a step that makes it worse is never executed. 0: off. Still the world model's own search: the
            gradient is of the same predicted cost the samples are ranked by.
        refine_lr: the Adam step size of the refinement (normalised action units).
        cuda_graph: on a GPU, record the second iteration of every re-plan as a CUDA graph and replay it
            for the rest (:mod:`planning.planners.cuda_graph`): one launch per iteration instead of hundreds from
            Python. Not with a predictor compiled in a CUDA-graph mode (``model.rollout_graphs``). The
            first graphed re-plan is checked against the same iteration run eagerly; a failure or a
            mismatch turns it off with one warning. No effect on a CPU.
    """

    uses_model = True
    searches_by_cost = True

    def __init__(self, model, objective: LatentGoalObjective, name: str = "cem", horizon: int = 5,
                 num_samples: int = 300, topk: int = 30, opt_steps: int = 30, var_scale: float = 1.0,
                 min_std: float = 0.05, chunk_size: int = 4096, warm_start: bool = True, action_repeat: bool = False,
                 keep_elites: int = 0, noise_beta: float = 0.0, return_best: bool = False, gripper_switches: int = 0,
                 schedule_smoothing: float = 0.3, refine_steps: int = 0, refine_lr: float = 0.05,
                 cuda_graph: bool = True):
        if not 0 < topk <= num_samples:
            raise ValueError(f"need 0 < topk <= num_samples, got topk={topk}, num_samples={num_samples}")
        if opt_steps < 0:
            raise ValueError(f"planner.opt_steps={opt_steps} must be >= 0 (0: the starting mean, no search)")
        self.name, self.model, self.objective = str(name), model, objective
        self.horizon, self.num_samples, self.topk, self.opt_steps = int(horizon), int(num_samples), int(topk), int(opt_steps)
        self.var_scale, self.min_std = float(var_scale), float(min_std)
        self.chunk_size, self.warm_start = int(chunk_size), bool(warm_start)
        self.repeat = int(getattr(model, "frameskip", 1)) if action_repeat else 1
        if keep_elites < 0 or noise_beta < 0:
            raise ValueError(f"need planner.keep_elites >= 0 and noise_beta >= 0, got {keep_elites}, {noise_beta}")
        keep_elites = min(int(keep_elites), self.topk, self.num_samples - 1)  # a small budget keeps what it has
        self.keep_elites, self.noise_beta, self.return_best = keep_elites, float(noise_beta), bool(return_best)
        if gripper_switches not in (0, 1, 2) or not 0 <= schedule_smoothing < 1:
            raise ValueError(f"need planner.gripper_switches in 0, 1, 2 and 0 <= schedule_smoothing < 1, got "
                             f"{gripper_switches}, {schedule_smoothing}")
        self.gripper_switches, self.schedule_smoothing = int(gripper_switches), float(schedule_smoothing)
        if refine_steps < 0 or refine_lr <= 0:
            raise ValueError(f"need planner.refine_steps >= 0 and refine_lr > 0, got {refine_steps}, {refine_lr}")
        self.refine_steps, self.refine_lr = int(refine_steps), float(refine_lr)
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
        """(mu [B, h, a], sigma [B, h, a], an anchor [B, 1, h, a] the costs are held to, or None) of a re-plan:
        here the warm start (or zeros, the data mean) with ``var_scale`` and no anchor."""
        mu = self._reduce(self.initial_mean(ctx, ctx.action_low.shape[-1], device))  # [B, h, a]
        return mu, torch.full_like(mu, self.var_scale), None

    def anchor_cost(self, samples: torch.Tensor, anchor: torch.Tensor | None) -> torch.Tensor | None:
        """[B, N] cost added for the distance of ``samples`` [B, N, h, a] from the re-plan's anchor; None here."""
        return None

    def iteration(self, ctx: PlanContext, z_obs: torch.Tensor | None, anchor: torch.Tensor | None,
                  grip: GripperSearch | None, state: tuple[torch.Tensor, ...], x: torch.Tensor):
        """One CEM iteration: (state, x) -> (state, costs [B, N]).

        ``x`` [B, N, h * a + 1]: this iteration's Gaussian noise [B, N, h, a] flattened, then one uniform per
        sample for its gripper schedule (one tensor, so that the iterations are replayed over one input).
        ``state`` = (mu, sigma [B, h, a], best [B, h, a], best_cost [B], elites [B, keep_elites, h, a], schedule
        probabilities [B, C], the elites' schedules [B, keep_elites]): the distributions, the lowest-cost candidate
        so far and the elites carried over (they replace the last samples). A pure function of device tensors (no
        host sync, no random numbers): on a GPU it is recorded once and replayed as a CUDA graph
        (:mod:`planning.planners.cuda_graph`)."""
        mu, sigma, best, best_cost, kept, probs, kept_idx = state
        eps, u = x[..., :-1].unflatten(-1, mu.shape[1:]), x[..., -1]
        low, high = self._reduce(ctx.action_low), self._reduce(ctx.action_high)
        samples = mu.unsqueeze(1) + sigma.unsqueeze(1) * eps  # [B, N, h, a]
        samples[:, 0] = mu
        if self.keep_elites:
            samples[:, samples.shape[1] - self.keep_elites:] = kept
        samples = torch.maximum(torch.minimum(samples, high), low)
        samples = pin_fixed_dims(ctx, self._expand(samples))
        if ctx.gripper is not None:
            samples = ctx.gripper.snap(samples)
        samples = self._reduce(samples)
        idx = None
        if grip is not None:
            idx = gs.sample(probs, u)  # [B, N]
            idx[:, 0] = probs.argmax(-1)
            if self.keep_elites:
                idx[:, idx.shape[1] - self.keep_elites:] = kept_idx
            samples = grip.apply(samples, idx)
        costs = evaluate_candidates(self.model, self.objective, ctx, self._expand(samples), self.chunk_size,
                                    z_obs=z_obs)  # [B, N]
        extra = self.anchor_cost(samples, anchor)
        if extra is not None:
            costs = costs + extra
        top = torch.topk(costs, self.topk, dim=1, largest=False).indices  # [B, k], best first
        elite = torch.gather(samples, 1, top[:, :, None, None].expand(-1, -1, *samples.shape[2:]))
        mu = elite.mean(dim=1)
        sigma = elite.std(dim=1, unbiased=False).clamp_min(self.min_std) if self.topk > 1 \
            else torch.full_like(mu, self.min_std)
        if idx is not None:
            elite_idx = torch.gather(idx, 1, top)
            probs, kept_idx = gs.refit(probs, elite_idx, self.schedule_smoothing, floor=0.02), \
                elite_idx[:, : self.keep_elites]
        first = torch.gather(costs, 1, top[:, :1])[:, 0]  # [B]
        better = first < best_cost
        best = torch.where(better[:, None, None], elite[:, 0], best)
        best_cost = torch.where(better, first, best_cost)
        return (mu, sigma, best, best_cost, elite[:, : self.keep_elites], probs, kept_idx), costs

    def coloured(self, eps: torch.Tensor) -> torch.Tensor:
        """``eps`` [..., h, a] standard normal -> noise with power ~ 1/f^noise_beta along ``h``, each step still of
        unit variance (iCEM's coloured noise; white for beta 0 or h = 1). A fixed linear filter along ``h``, so an
        episode's noise depends on its own draws only."""
        h = eps.shape[-2]
        if self.noise_beta == 0 or h < 2:
            return eps
        freq = torch.fft.rfftfreq(h, dtype=torch.float64)
        freq[0] = freq[1]  # the constant component gets the lowest frequency's weight
        gain = freq.pow(-self.noise_beta / 2)[:, None]
        filt = torch.fft.irfft(torch.fft.rfft(torch.eye(h, dtype=torch.float64), dim=0) * gain, n=h, dim=0)  # [h, h]
        filt = filt / filt.pow(2).sum(dim=0, keepdim=True).sqrt()  # column t: step t's weights, unit variance
        return torch.einsum("...ja,jt->...ta", eps, filt.to(eps))

    @torch.no_grad()
    def plan(self, ctx: PlanContext) -> PlanResult:
        """Plan ``ctx.horizon`` actions for every episode of ``ctx``; returns the final mean sequence (with the
        most likely gripper schedule) or the best candidate seen (``return_best``)."""
        device = ctx.z_goal.device
        ctx = context_on(ctx, device)  # bounds, pinned dims, gripper levels: no copies inside the iterations
        mu, sigma, anchor = self.start(ctx, device)
        h, b = ctx.horizon, ctx.batch_size
        # every iteration's noise at once, in the order per-iteration draws would give: one host -> device copy
        eps = self.coloured(per_episode_noise_steps(ctx.generators, self.opt_steps,
                                                    (self.num_samples, h, mu.shape[-1]), device))
        grip = GripperSearch.build(self, ctx, mu) if self.gripper_switches and ctx.gripper is not None else None
        u = per_episode_noise_steps(ctx.generators, self.opt_steps, (self.num_samples,), device) if grip else \
            eps.new_zeros(*eps.shape[:3])
        x = torch.cat([eps.flatten(-2), torch.special.ndtr(u)[..., None]], dim=-1)  # normal -> uniform for schedules
        z_obs = encode_context(self.model, ctx)
        step = functools.partial(self.iteration, ctx, z_obs, anchor, grip)
        probs = grip.probs if grip else mu.new_ones(b, 1)
        state = (mu, sigma, mu.clone(), torch.full((b,), float("inf"), device=device),
                 mu.unsqueeze(1).expand(-1, self.keep_elites, -1, -1).clone(), probs,
                 probs.argmax(-1, keepdim=True).expand(-1, self.keep_elites).clone())
        mu, sigma, best, best_cost, _, probs, _ = self._iterate(step, state, x)
        if grip is not None:
            mu = grip.apply(mu[:, None], probs.argmax(-1, keepdim=True))[:, 0]
        chosen = torch.where(torch.isfinite(best_cost)[:, None, None], best, mu) if self.return_best else mu
        if self.refine_steps:
            chosen = self.refine(ctx, z_obs, chosen, anchor)
        actions = self._expand(chosen) if ctx.gripper is None else ctx.gripper.snap(self._expand(chosen))
        z = rollout_predictions(self.model, ctx.obs_0, ctx.past_actions, actions, z_obs=z_obs)
        return PlanResult(actions=actions, z_pred=z, cost=self.objective(z, ctx.z_goal),
                          info=self.plan_info(actions, anchor))

    def refine(self, ctx: PlanContext, z_obs: torch.Tensor | None, plan: torch.Tensor,
               anchor: torch.Tensor | None = None) -> torch.Tensor:
        """``plan`` [B, h, a] after ``refine_steps`` Adam steps on the score the search ranked it by (its cost through
        the predictor, plus ``anchor_cost`` where a subclass has one): only the arm entries move (the gripper's,
        binary, and the pinned dims are held), within the bounds; per episode the lowest-scoring plan seen (``plan``
        itself included) is returned."""
        low, high = self._reduce(ctx.action_low), self._reduce(ctx.action_high)
        held = self._reduce(ctx.gripper.dims.float()) > 0.5 if ctx.gripper is not None else \
            torch.zeros(plan.shape[-1], dtype=torch.bool, device=plan.device)  # [a]

        def cost_of(x: torch.Tensor) -> torch.Tensor:  # [B, h, a] -> [B]
            acts = pin_fixed_dims(ctx, self._expand(x))
            acts = ctx.gripper.snap(acts) if ctx.gripper is not None else acts
            z = rollout_predictions(self.model, ctx.obs_0, ctx.past_actions, acts, z_obs=z_obs)
            cost = self.objective(z, ctx.z_goal)
            extra = self.anchor_cost(x.unsqueeze(1), anchor)  # [B, 1] or None
            return cost if extra is None else cost + extra[:, 0]

        best, best_cost = plan, plan.new_full(plan.shape[:1], float("inf"))  # step 0 scores ``plan`` itself
        with torch.enable_grad():
            x = plan.clone().requires_grad_(True)
            opt = torch.optim.Adam([x], lr=self.refine_lr)
            for k in range(self.refine_steps + 1):
                cost = cost_of(x)
                with torch.no_grad():
                    better = cost < best_cost
                    best = torch.where(better[:, None, None], x, best)
                    best_cost = torch.where(better, cost, best_cost)
                if k == self.refine_steps:
                    break
                (grad,) = torch.autograd.grad(cost.sum(), x)
                x.grad = torch.where(held, 0.0, grad)
                opt.step()
                with torch.no_grad():
                    x.copy_(torch.where(held, plan, torch.maximum(torch.minimum(x, high), low)))
        return best.detach()

    def plan_info(self, actions: torch.Tensor, anchor: torch.Tensor | None) -> dict[str, torch.Tensor] | None:
        """Per-episode diagnostics of a plan (``PlanResult.info``); none for plain CEM."""
        return None

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


class GripperSearch:
    """The discrete gripper search of one re-plan (``CEMPlanner(gripper_switches > 0)``): the schedule table, the
    gripper entries of a searched action and their open / close values, each episode's current command.

    Attributes: table bool [C, h]; dims bool [a]; open / close [a] normalised levels; closed_now bool [B]; probs
    [B, C] the starting distribution (uniform, half of it on the previous plan's schedule when warm-started)."""

    def __init__(self, table, dims, open_level, close_level, closed_now, probs):
        self.table, self.dims, self.open, self.close = table, dims, open_level, close_level
        self.closed_now, self.probs = closed_now, probs

    @classmethod
    def build(cls, planner: CEMPlanner, ctx: PlanContext, mu: torch.Tensor) -> GripperSearch:
        device, h = mu.device, mu.shape[1]
        table = gs.schedule_table(h, planner.gripper_switches, device=device)
        dims = planner._reduce(ctx.gripper.dims.float()) > 0.5  # [a]
        open_level, close_level = planner._reduce(ctx.gripper.open), planner._reduce(ctx.gripper.close)
        first = int(dims.nonzero()[0])
        if ctx.hold_actions is not None:
            now = planner._reduce(ctx.hold_actions.to(device))[:, first]  # [B]
            closed_now = (now - close_level[first]).abs() < (now - open_level[first]).abs()
        else:
            closed_now = torch.zeros(mu.shape[0], dtype=torch.bool, device=device)
        warm = None
        if planner.warm_start and ctx.init_actions is not None:  # the previous plan's schedule, shifted
            prev = planner._reduce(ctx.init_actions.to(device))[:, :h, first]  # [B, h0]
            prev = torch.cat([prev, prev[:, -1:].expand(-1, h - prev.shape[1])], dim=1) if prev.shape[1] < h else prev
            closed = (prev - close_level[first]).abs() < (prev - open_level[first]).abs()
            warm = gs.index_of(closed != closed_now[:, None], table)
        probs = gs.initial_probs(table, warm) if warm is not None else \
            gs.initial_probs(table, None).expand(mu.shape[0], -1).clone()
        return cls(table, dims, open_level, close_level, closed_now, probs)

    def apply(self, samples: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """``samples`` [B, N, h, a] with their gripper entries set by schedules ``idx`` [B, N]."""
        closed = self.table[idx] != self.closed_now[:, None, None]  # [B, N, h]: the command is "close"
        value = torch.where(closed[..., None], self.close, self.open)  # [B, N, h, a]
        return torch.where(self.dims, value, samples)
