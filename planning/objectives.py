"""Planning objectives: how far predicted 64-D latents are from the goal latent.

The world model's projected latent (``projected_dim`` = 64 per patch) mixes the DINO patch features
with the proprio embedding, so after the projection there is no separate "proprio slot" to compare.
What *is* tied to the robot / object state is the aligned block ``z[..., :alignment_dim]``: training
pulls it towards the ground-truth low-dim state with InfoNCE. The objective therefore is

    cost = latent_term + alpha * aligned_term

* ``latent_term``: mean over patches and the 64 dims of ``(z_pred - z_goal)^2`` at the last predicted
  step (``mode="last"``), or a discounted mean over every predicted step (``mode="all"``, step ``k`` of
  ``h`` gets weight ``discount ** (h - 1 - k)``, weights normalised to sum to 1, so the last step always
  has the largest weight when ``discount <= 1``).
* ``aligned_term``: squared distance between the patch means of the aligned dims,
  ``|| mean_P z_pred[..., :a] - mean_P z_goal[..., :a] ||^2 / a``, computed on the same steps and
  weights. With ``alpha = 0`` or ``alignment_dim = 0`` it is off.
* ``state_term`` (``state_weight`` > 0, a *learned cost on latents*): the world model's own state readout
  (``read_state``: the low-dim robot / object state it reads from a latent, trained with it on states only)
  applied to the predicted and the goal latent, ``mean_s (read(z_pred) - read(z_goal))_s^2`` in normalised
  state units. It sees where the task shows (object pose, object relative to the gripper, gripper opening)
  however few pixels the object covers. With ``state_tolerance`` (metres) it reads a position only, in metres
  over that tolerance: ``mean_xyz ((pos_pred - pos_goal) / tol)^2``. ``state_position`` says which: ``object``
  (state dims 0-2 of every task), ``eef`` (the end effector, the first 3 of the state's trailing proprio dims), or
  ``both`` (the mean over the 6 dims).
  The normalised units weigh a dim by how little it varies in the data (a cube that the data barely lifts
  turns a few millimetres of readout error into a large cost); the tolerance weighs every axis by the task's
  own precision, so a plan that leaves the object a tolerance short of the goal pays 1 per axis.

* ``cost_to_go`` (``cost_to_go_weight`` > 0, a *learned cost on latents*, ``models.cost_to_go``): the predicted
  planning steps from the last predicted latent to the goal, learned from the data's trajectories (states only).
  It is what lets a plan that approaches the object score better than one that stops at the goal pose without
  it; it reads the last step only, whatever ``mode``.

* ``disagreement`` (``disagreement_weight`` > 0, an ensemble of world models, ``planning.ensemble``): the
  members' disagreement about the state of every predicted frame (variance over members of their state
  readouts), averaged over the planned steps whatever ``mode``: a plan through states the data did not pin
  down, where the search would exploit one member's error, pays for it.

    cost = latent_term + alpha * aligned_term + state_weight * state_term + cost_to_go_weight * cost_to_go
           + disagreement_weight * disagreement

No simulator is touched here: the objective only sees latents.
"""

from __future__ import annotations

import torch
from einops import reduce

from tasks.state_layout import EEF_POS_SLICE, OBJECT_POS, PROPRIO_DIM

STATE_POSITIONS = ("object", "eef", "both")  # what the state cost compares with a state_tolerance


def position_dims(state_dim: int, which: str) -> list[int]:
    """Indices into a [state_dim] state of the object's position (every task's state starts with it), the end
    effector's (the first 3 of the trailing proprio dims), or both."""
    if which not in STATE_POSITIONS:
        raise ValueError(f"state_position={which!r} is not one of {', '.join(STATE_POSITIONS)}")
    obj = list(range(state_dim))[OBJECT_POS]
    eef = list(range(state_dim - PROPRIO_DIM, state_dim))[EEF_POS_SLICE]
    return {"object": obj, "eef": eef, "both": obj + eef}[which]


class LatentGoalObjective:
    """Cost of predicted latent trajectories w.r.t. a goal latent (lower is better).

    Args:
        mode: ``"last"`` (only the final predicted step) or ``"all"`` (discounted over every step).
        discount: per-step discount for ``mode="all"`` (1.0 = uniform).
        alpha: weight of the aligned-dims term (see module docstring).
        alignment_dim: number of leading latent dims tied to the state (``model.alignment_dim``);
            ``None`` or 0 disables the aligned term.
        state_weight: weight of the learned state term (0: off).
        state_reader: latents [..., P, D] -> normalised state [..., S] (the world model's ``read_state``);
            required when ``state_weight`` > 0.
        state_tolerance: None: the state term is the mean over all S normalised dims; metres: a position only
            (``state_position``), in units of this tolerance (needs ``state_std``).
        state_position: with ``state_tolerance``: ``object`` (state dims 0-2), ``eef`` (the end effector's
            position) or ``both``.
        state_std: [S] the state normaliser's std (``Normalizer.state_std``): turns normalised differences
            into metres for ``state_tolerance``.
        cost_to_go_weight: weight of the learned cost-to-go term (0: off); cost_to_go: ``(z [B, P, D], z_goal
            [B, P, D]) -> [B]`` planning steps (``RUN/cost_to_go``), required when the weight is > 0.
        disagreement_weight: weight of the ensemble's disagreement (0: off); disagreement: latents [..., P, D] ->
            [...] (``WorldModelEnsemble.disagreement``), required when the weight is > 0.
    """

    def __init__(self, mode: str = "last", discount: float = 1.0, alpha: float = 0.0,
                 alignment_dim: int | None = None, state_weight: float = 0.0, state_reader=None,
                 cost_to_go_weight: float = 0.0, cost_to_go=None, disagreement_weight: float = 0.0,
                 disagreement=None, state_tolerance: float | None = None, state_std=None,
                 state_position: str = "object"):
        if mode not in ("last", "all"):
            raise ValueError(f"objective mode must be 'last' or 'all', got {mode!r}")
        if not 0.0 < discount <= 1.0 and mode == "all":
            raise ValueError(f"discount must be in (0, 1], got {discount}")
        self.mode = mode
        self.discount = float(discount)
        self.alpha = float(alpha)
        self.alignment_dim = int(alignment_dim or 0)
        self.state_weight, self.state_reader = float(state_weight), state_reader
        self.cost_to_go_weight, self.cost_to_go = float(cost_to_go_weight), cost_to_go
        if self.cost_to_go_weight < 0 or (self.cost_to_go_weight > 0 and cost_to_go is None):
            raise ValueError(f"cost_to_go_weight={cost_to_go_weight} needs to be >= 0, and > 0 needs the run's learned "
                             "cost-to-go (python -m training.cost_to_go RUN)")
        self.disagreement_weight, self.disagreement = float(disagreement_weight), disagreement
        if self.disagreement_weight < 0 or (self.disagreement_weight > 0 and disagreement is None):
            raise ValueError(f"disagreement_weight={disagreement_weight} needs to be >= 0, and > 0 needs an ensemble of "
                             "world models (plan.py ensemble=[RUN, ...])")
        if self.state_weight < 0 or (self.state_weight > 0 and state_reader is None):
            raise ValueError(f"state_weight={state_weight} needs to be >= 0, and > 0 needs a world model that reads "
                             "states from its latents (read_state)")
        # with a tolerance: the compared dims and [len(dims)] metres per normalised unit over the tolerance
        self.state_dims, self.state_scale = None, None
        if state_position not in STATE_POSITIONS:
            raise ValueError(f"state_position={state_position!r} is not one of {', '.join(STATE_POSITIONS)}")
        if state_tolerance is not None:
            if not float(state_tolerance) > 0:
                raise ValueError(f"state_tolerance={state_tolerance} must be > 0 metres (or null: normalised units)")
            if state_std is None:
                raise ValueError("state_tolerance needs the state normaliser's std (state_std) of the compared position")
            std = torch.as_tensor(state_std, dtype=torch.float32)
            need = OBJECT_POS.stop + (PROPRIO_DIM if state_position != "object" else 0)
            if len(std) < need:
                raise ValueError(f"state_position={state_position} needs a state of >= {need} dims (object, then "
                                 f"proprio), the state normaliser has {len(std)}")
            self.state_dims = torch.as_tensor(position_dims(len(std), state_position))
            self.state_scale = std[self.state_dims] / float(state_tolerance)

    def step_weights(self, h: int, device: torch.device | None = None) -> torch.Tensor:
        """Weights [h] over predicted steps, summing to 1."""
        if self.mode == "last":
            w = torch.zeros(h, device=device)
            w[-1] = 1.0
            return w
        w = self.discount ** torch.arange(h - 1, -1, -1, dtype=torch.float32, device=device)
        return w / w.sum()

    def per_step(self, z_pred: torch.Tensor, z_goal: torch.Tensor) -> torch.Tensor:
        """Unweighted cost of each step.

        Args:
            z_pred: [B, h, P, D] predicted latents (one per planned action).
            z_goal: [B, 1, P, D] or [B, P, D] goal latent.
        Returns:
            [B, h] cost per step.
        """
        if z_goal.dim() == 3:
            z_goal = z_goal.unsqueeze(1)
        diff = z_pred - z_goal
        cost = reduce(diff.pow(2), "b h p d -> b h", "mean")
        a = min(self.alignment_dim, z_pred.shape[-1])
        if self.alpha > 0 and a > 0:
            aligned = reduce(diff[..., :a], "b h p a -> b h a", "mean")
            cost = cost + self.alpha * reduce(aligned.pow(2), "b h a -> b h", "mean")
        if self.state_weight > 0:
            s_pred, s_goal = self.state_reader(z_pred).float(), self.state_reader(z_goal).float()  # [B, h, S], [B, 1, S]
            gap = s_pred - s_goal
            if self.state_scale is not None:  # the compared positions in tolerances: [B, h, 3 or 6]
                if self.state_scale.device != gap.device:  # moved once, on the first (eager) call: no copy in a graph
                    self.state_scale, self.state_dims = self.state_scale.to(gap.device), self.state_dims.to(gap.device)
                gap = gap[..., self.state_dims] * self.state_scale
            cost = cost + self.state_weight * reduce(gap.pow(2), "b h s -> b h", "mean")
        return cost

    def __call__(self, z_pred: torch.Tensor, z_goal: torch.Tensor) -> torch.Tensor:
        """Weighted cost [B] of predicted latents ``z_pred`` [B, h, P, D] against ``z_goal``."""
        if self.mode == "last":  # only the last step has weight: the others are not compared at all
            cost = self.per_step(z_pred[:, -1:], z_goal)[:, 0]
        else:
            per_step = self.per_step(z_pred, z_goal)
            cost = per_step @ self.step_weights(per_step.shape[1], device=per_step.device).to(per_step.dtype)
        if self.cost_to_go_weight > 0:
            goal = z_goal[:, -1] if z_goal.dim() == 4 else z_goal
            cost = cost + self.cost_to_go_weight * self.cost_to_go(z_pred[:, -1].float(), goal.float())
        if self.disagreement_weight > 0:
            cost = cost + self.disagreement_weight * self.disagreement(z_pred).float().mean(-1)
        return cost
