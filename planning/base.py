"""What every planner receives and returns (``PlanContext`` -> ``PlanResult``, the ``Planner`` protocol,
``build_planner``), and the batched, chunked latent rollout they share.

Shapes: ``B`` episodes planned together, ``N`` candidate sequences per episode, ``h`` planned steps,
``A = action_dim * frameskip`` (one planning step = ``frameskip`` env steps), ``T0`` history frames,
``P`` patches, ``D`` = projected_dim. Every action here is in the model's *normalised* space.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from einops import rearrange

from planning.objectives import LatentGoalObjective


@dataclass
class GripperLevels:
    """Where the gripper command sits in a normalised action chunk and its two normalised values.

    dims: [A] bool, the gripper entries (the last dim of each env action); open / close: [A] the
    normalised values of the raw commands -1 (open) and +1 (close) (only read where ``dims``)."""

    dims: torch.Tensor
    open: torch.Tensor
    close: torch.Tensor

    def snap(self, actions: torch.Tensor) -> torch.Tensor:
        """actions [..., A] normalised -> the same with every gripper entry set to the nearer of open / close."""
        dims, lo, hi = (t.to(actions.device) for t in (self.dims, self.open, self.close))
        snapped = torch.where((actions - lo).abs() <= (actions - hi).abs(), lo, hi)
        return torch.where(dims, snapped, actions)


@dataclass
class PlanContext:
    """The state of a batch of episodes at one re-plan.

    Attributes:
        obs_0: {"visual": float [B, T0, 3, H, W] in [0, 1], "proprio": [B, T0, proprio_dim] normalised}
        past_actions: [B, T0 - 1, A] normalised actions between the history frames.
        z_goal: [B, 1, P, D] goal latent.
        horizon: number of planning steps ``h`` to plan now.
        generators: one seeded ``torch.Generator`` (CPU) per episode, so an episode's samples do not
            depend on which other episodes share the batch (sharded runs == one run).
        action_low / action_high: [A] env action bounds mapped into normalised space.
        init_actions: [B, h0, A] warm start (the unexecuted rest of the previous plan) or None.
        fixed_dims: [A] bool, or None: action dims that never varied in the training data (e.g. the OSC
            rotation of scripted demos, normalised std at the floor). The model learned nothing about
            them (its action encoder only ever saw 0 there), so model-based planners keep them at 0
            (the data's value): noise there would only perturb the predictions the plan is scored on.
        hold_actions: [B, A] normalised "do nothing" action chunk (zero arm motion, the gripper kept at
            its last command), or None.
        gripper: ``GripperLevels`` when the gripper command is binary (open / close, as in every
            robomimic and scripted demo): model-based planners then score only open / close values,
            the ones the model was trained on and the ones the MPC executes; None: continuous.
    """

    obs_0: dict[str, torch.Tensor]
    past_actions: torch.Tensor
    z_goal: torch.Tensor
    horizon: int
    generators: list[torch.Generator]
    action_low: torch.Tensor
    action_high: torch.Tensor
    init_actions: torch.Tensor | None = None
    fixed_dims: torch.Tensor | None = None
    hold_actions: torch.Tensor | None = None
    gripper: GripperLevels | None = None

    @property
    def batch_size(self) -> int:
        return self.z_goal.shape[0]


@dataclass
class ReplayContext(PlanContext):
    """A :class:`PlanContext` that also holds the demonstration's own actions: what a deployed robot does
    not have. The MPC builds one only for the replay baseline (:func:`context_for`); every other planner gets
    a plain :class:`PlanContext`, which has no field for them.

    reference_actions: [B, h, A] normalised dataset actions from the current step.
    """

    reference_actions: torch.Tensor | None = None


class ReadsDemonstration:
    """Base class of the planners that execute the dataset's own actions (the replay baseline): the only
    ones :func:`context_for` hands a :class:`ReplayContext`. A class, not a flag, so that no other planner can
    claim the demonstration by setting an attribute."""


def context_for(planner, ctx: PlanContext, reference_actions: torch.Tensor | None) -> PlanContext:
    """The context ``planner`` may see: with the demonstration's actions only for a :class:`ReadsDemonstration`."""
    if isinstance(planner, ReadsDemonstration):
        fields = {f.name: getattr(ctx, f.name) for f in dataclasses.fields(PlanContext)}
        return ReplayContext(**fields, reference_actions=reference_actions)
    return ctx


@dataclass
class PlanResult:
    """actions [B, h, A] normalised; z_pred [B, h, P, D] predicted latents of the chosen plan (or None);
    cost [B] objective of the chosen plan (or None); info: per-episode diagnostics {name: [B]} that the MPC
    averages over the re-plans into each evaluation's record as ``mean_<name>`` (or None)."""

    actions: torch.Tensor
    z_pred: torch.Tensor | None = None
    cost: torch.Tensor | None = None
    info: dict[str, torch.Tensor] | None = None


@runtime_checkable
class WorldModel(Protocol):
    """All that ``planning/`` needs of a world model (it never imports ``models/``).

    ``rollout(obs_0, act)``: obs_0 {"visual": [b, T0, 3, H, W], "proprio": [b, T0, p]}, act [b, L, A]
    with L >= T0 -> latents [b, L + 1, P, D] (DINO-WM semantics, see :func:`rollout_predictions`).
    Optional, used when present: ``encode_obs(obs) -> [b, T0, P, D]`` with
    ``rollout_latents(z_obs, act)`` (latent rollouts, :func:`supports_latent_rollout`),
    ``alignment_dim``, ``has_decoder`` / ``decode`` (imagined frames).
    """

    frameskip: int
    num_hist: int
    action_dim: int

    def rollout(self, obs_0: dict[str, torch.Tensor], act: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Planner(Protocol):
    """What the MPC and ``plan.py`` need from a planner.

    Attributes:
        name: the planner's name in outputs, tables and wandb (the ``name`` of its ``conf/planner`` file
            must be the same; ``build_planner`` checks it).
        uses_model: whether the world model's rollouts choose the actions (model-based planners: CEM,
            random shooting); ``plan.py`` budgets rollout memory only for those.
        horizon: planning steps per plan (an MPC may ask for fewer near the end of its budget).

    A planner's constructor takes ``model`` and / or ``objective`` by those names when it needs them
    (``build_planner`` passes only what it declares), then its own settings; no ``**kwargs`` catch-all,
    so a misspelt setting fails at once. A constructor that takes ``name`` is given the config's ``name``
    (one class, several configs: ``cem`` and ``cem_cpu``); otherwise the config's ``name`` must be the class's.
    """

    name: str
    uses_model: bool
    horizon: int

    def plan(self, ctx: PlanContext) -> PlanResult:
        """Plan ``ctx.horizon`` normalised actions [B, h, A] for every episode of ``ctx``."""
        ...


def _import(target: str):
    module, _, attr = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"planner _target_ {target!r} cannot be imported: {exc}") from None


def build_planner(spec: Mapping[str, Any], model=None, objective=None) -> Planner:
    """A planner from its config (``_target_``, ``name`` and the constructor's settings).

    ``model`` / ``objective`` are passed only to constructors that take them. Raises ValueError (one
    line) for a setting the constructor does not take, a ``name`` that is not the class's own, or a
    result that does not satisfy :class:`Planner`.
    """
    settings = dict(spec)
    target, name = str(settings.pop("_target_", "")), settings.pop("name", None)
    cls = _import(target)
    params = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(settings) - set(params) | set(settings) & {"model", "objective"})
        if unknown:
            takes = [p for p in params if p not in ("model", "objective")]
            raise ValueError(f"planner {name or target}: unknown setting(s) {', '.join(unknown)} "
                             f"({cls.__name__} takes {', '.join(takes) or 'none'})")
    given = {k: v for k, v in (("model", model), ("objective", objective)) if k in params}
    if name is not None and "name" in params:
        given["name"] = str(name)
    planner = cls(**given, **settings)
    if not isinstance(planner, Planner):
        raise ValueError(f"{target} is not a planner (needs name, uses_model, horizon and plan(ctx))")
    if name is not None and name != planner.name:
        raise ValueError(f"planner.name={name!r} but {target} calls itself {planner.name!r}: make them equal")
    return planner


def supports_latent_rollout(model) -> bool:
    """True for world models that can roll out from encoded observations (``rollout_latents``)."""
    return hasattr(model, "rollout_latents") and hasattr(model, "encode_obs")


def rollout_dtype(device: torch.device | str) -> torch.dtype | None:
    """Autocast dtype of planning rollouts on ``device``: bf16 on a CUDA GPU that has it, else None (fp32)."""
    device = torch.device(device)
    native = device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.bfloat16 if native else None


def rollout_autocast(device: torch.device | str):
    """Context for the model calls of a rollout: bf16 autocast on CUDA, nothing (fp32) elsewhere. Without
    autocast's cache of cast weights (640 k parameters: nothing to save), so a CUDA graph recorded inside
    it never refers to cast weights another autocast region owns."""
    dtype = rollout_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype, cache_enabled=False)


def rollout_predictions(model, obs_0: dict[str, torch.Tensor], past_actions: torch.Tensor,
                        actions: torch.Tensor, z_obs: torch.Tensor | None = None) -> torch.Tensor:
    """Predicted latents after each planned action.

    Args:
        model: world model with ``rollout(obs_0, act)`` (DINO-WM semantics: ``act`` [b, L, A] with
            L >= T0 gives [b, L + 1, P, D], where frame ``T0 + k`` is the prediction after ``act[:, T0-1+k]``).
        obs_0: {"visual" or "features": [b, T0, ...], "proprio": [b, T0, p]}.
        past_actions: [b, T0 - 1, A].
        actions: [b, h, A] planned actions (the first one is applied at the current frame).
        z_obs: [b, T0, P, D] the encoded ``obs_0`` if already known (then the model's step API is used).
    Returns:
        [b, h, P, D] float32: frame ``k`` is the prediction after ``actions[:, k]``.

    The model runs under :func:`rollout_autocast` (bf16 on CUDA); observations are encoded and the
    predicted latents kept and returned in fp32, so objectives compare fp32 latents.
    """
    t0 = obs_0["proprio"].shape[1]
    act = torch.cat([past_actions.to(actions), actions], dim=1)
    if z_obs is None and supports_latent_rollout(model):
        z_obs = model.encode_obs(obs_0)
    with rollout_autocast(actions.device):
        z = model.rollout(obs_0, act) if z_obs is None else model.rollout_latents(z_obs.float(), act)
    return z[:, t0:].float()


def encode_context(model, ctx: PlanContext) -> torch.Tensor | None:
    """[B, T0, P, D] encoded ``ctx.obs_0`` when the model supports latent rollouts, else None."""
    return model.encode_obs(ctx.obs_0) if supports_latent_rollout(model) else None


def expand_obs(obs_0: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pick rows ``index`` [n] of every tensor in ``obs_0`` ([B, ...] -> [n, ...])."""
    return {k: v[index] for k, v in obs_0.items()}


@torch.no_grad()
def evaluate_candidates(model, objective: LatentGoalObjective, ctx: PlanContext, candidates: torch.Tensor,
                        chunk_size: int, z_obs: torch.Tensor | None = None) -> torch.Tensor:
    """Objective of every candidate sequence of every episode, in batched chunks.

    All ``B * N`` rollouts go through the model together, ``chunk_size`` of them per forward pass
    (this bounds memory; it is not a loop over episodes). Observations are encoded once per episode.
    Rollouts run in bf16 on CUDA (:func:`rollout_predictions`); costs are computed in fp32.

    Args:
        candidates: [B, N, h, A] normalised action sequences.
        z_obs: [B, T0, P, D] ``ctx.obs_0`` already encoded (:func:`encode_context`), or None: encoded here.
    Returns:
        [B, N] costs.
    """
    b, n = candidates.shape[:2]
    flat = rearrange(candidates, "b n h a -> (b n) h a")
    episode_of = torch.arange(b * n, device=flat.device) // n  # [B*N]: no host sync (CEM graphs this call)
    if z_obs is None:
        z_obs = encode_context(model, ctx)
    costs = []
    for start in range(0, b * n, max(1, chunk_size)):
        idx = episode_of[start:start + chunk_size]
        # latent rollouts read only the number of history frames of obs_0: its frames are not copied per sample
        obs = expand_obs(ctx.obs_0, idx) if z_obs is None else ctx.obs_0
        z = rollout_predictions(model, obs, ctx.past_actions[idx], flat[start:start + chunk_size],
                                z_obs=None if z_obs is None else z_obs[idx])
        costs.append(objective(z, ctx.z_goal[idx].float()))
    return rearrange(torch.cat(costs), "(b n) -> b n", b=b)


def pin_fixed_dims(ctx: PlanContext, actions: torch.Tensor) -> torch.Tensor:
    """``actions`` [..., A] (normalised) with ``ctx.fixed_dims`` set to 0, the training data's only value."""
    if ctx.fixed_dims is None:
        return actions
    return actions.masked_fill(ctx.fixed_dims.to(actions.device), 0.0)


def per_episode_noise_steps(generators: list[torch.Generator], steps: int, shape: tuple[int, ...], device,
                            dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise [steps, B, *shape] for ``steps`` iterations: episode ``i`` drawn from
    ``generators[i]`` (CPU), iteration by iteration (the numbers one draw per iteration would give), and
    moved to ``device`` in one copy that does not wait for the GPU (pinned host memory)."""
    noise = torch.empty(steps, len(generators), *shape, dtype=dtype)
    for k in range(steps):
        for i, g in enumerate(generators):
            noise[k, i] = torch.randn(shape, generator=g, dtype=dtype)
    device = torch.device(device)
    if device.type == "cuda":
        return noise.pin_memory().to(device, non_blocking=True)
    return noise.to(device)


def context_on(ctx: PlanContext, device) -> PlanContext:
    """``ctx`` with its per-action tensors (bounds, fixed dims, gripper levels) on ``device``: the planner's
    iterations then copy nothing from the host (a copy would wait for the GPU, and cannot be graphed)."""
    gripper = ctx.gripper
    if gripper is not None:
        gripper = GripperLevels(gripper.dims.to(device), gripper.open.to(device), gripper.close.to(device))
    return dataclasses.replace(ctx, action_low=ctx.action_low.to(device), action_high=ctx.action_high.to(device),
                               fixed_dims=None if ctx.fixed_dims is None else ctx.fixed_dims.to(device),
                               gripper=gripper)


def per_episode_uniform(generators: list[torch.Generator], shape: tuple[int, ...], device, dtype=torch.float32):
    """Uniform [0, 1) noise [B, *shape], episode ``i`` drawn from ``generators[i]`` (CPU), moved to device."""
    return torch.stack([torch.rand(shape, generator=g, dtype=dtype) for g in generators]).to(device)
