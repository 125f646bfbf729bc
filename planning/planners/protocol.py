"""What every planner receives and returns: ``PlanContext`` -> ``PlanResult``, the ``Planner`` and ``WorldModel``
protocols, and the context the replay baseline alone is given (``ReplayContext``).

Shapes: ``B`` episodes planned together, ``h`` planned steps, ``A = action_dim * frameskip`` (one planning step =
``frameskip`` env steps), ``T0`` history frames, ``P`` patches, ``D`` = projected_dim. Every action here is in the
model's *normalised* space.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


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


def context_on(ctx: PlanContext, device) -> PlanContext:
    """``ctx`` with its per-action tensors (bounds, fixed dims, gripper levels) on ``device``: the planner's
    iterations then copy nothing from the host (a copy would wait for the GPU, and cannot be graphed)."""
    gripper = ctx.gripper
    if gripper is not None:
        gripper = GripperLevels(gripper.dims.to(device), gripper.open.to(device), gripper.close.to(device))
    return dataclasses.replace(ctx, action_low=ctx.action_low.to(device), action_high=ctx.action_high.to(device),
                               fixed_dims=None if ctx.fixed_dims is None else ctx.fixed_dims.to(device),
                               gripper=gripper)


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
        searches_by_cost (optional, False if absent): whether the planner chooses among candidates by their cost
            under its ``objective`` (CEM, random shooting), not only reports that cost (prior, replay); an MPC
            recipe's later objective (``mpc.n_taken_actions=auto``) is given only to those.

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
