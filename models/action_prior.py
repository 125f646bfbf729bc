"""Goal-conditioned action prior: proposes the next action chunk from the world model's latents.

A planner with a proposal distribution (as in TD-MPC's policy-guided MPPI): the prior reads the
current projected latent, the goal latent and the planning steps left, and returns one normalised
action chunk. Rolled out through the world model it gives a whole candidate plan that CEM then
refines and scores with the model (``planning.planners.prior``). It is trained after the world model, on the
model's own (frozen) latents of the training episodes, with hindsight goals: the frame ``k``
planning steps later in the same episode (``training.action_prior``).

Shapes: B batch, P patches, D = projected_dim (64), A = action_dim * frameskip (normalised).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from einops import rearrange
from torch import Tensor, nn

PRIOR_DIR = "action_prior"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class ActionPriorConfig:
    """Sizes of an :class:`ActionPrior` (saved beside its weights).

    n_patches / latent_dim: P and D of the world model's projected latent; action_dim: A (one chunk);
    max_steps: the largest number of planning steps left it was trained for (inputs are scaled by it);
    patch_dim: per-patch width after the shared input layer; hidden: MLP width.
    """

    n_patches: int
    latent_dim: int
    action_dim: int
    max_steps: int
    patch_dim: int = 16
    hidden: int = 512


class ActionPrior(nn.Module):
    """pi(z, z_goal, steps_left) -> normalised action chunk.

    Each patch of the current and the goal latent goes through one shared linear layer (D -> patch_dim),
    the two are flattened with the steps-left fraction and an MLP outputs the chunk.
    """

    def __init__(self, cfg: ActionPriorConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_in = nn.Linear(2 * cfg.latent_dim, cfg.patch_dim)
        width = cfg.n_patches * cfg.patch_dim + 1
        self.mlp = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, cfg.hidden), nn.GELU(),
                                 nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.action_dim))

    def forward(self, z: Tensor, z_goal: Tensor, steps_left: Tensor) -> Tensor:
        """z [B, P, D], z_goal [B, P, D], steps_left [B] (planning steps to the goal, >= 1) -> [B, A]."""
        x = self.patch_in(torch.cat([z, z_goal.expand_as(z)], dim=-1))  # [B, P, patch_dim]
        frac = (steps_left.to(z.dtype) / self.cfg.max_steps).unsqueeze(-1)  # [B, 1]
        return self.mlp(torch.cat([rearrange(x, "b p c -> b (p c)"), frac], dim=-1))


def save_action_prior(prior: ActionPrior, out_dir: str | Path, extra: dict | None = None) -> Path:
    """Write ``out_dir/{model.safetensors, config.json}`` (the caller makes ``out_dir`` atomic)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in prior.state_dict().items()}, str(out_dir / WEIGHTS_FILE))
    (out_dir / CONFIG_FILE).write_text(json.dumps({"config": asdict(prior.cfg), **(extra or {})}, indent=2) + "\n")
    return out_dir


def load_action_prior(path: str | Path, device: str | torch.device = "cpu") -> ActionPrior:
    """Load a saved prior directory (``RUN/action_prior``) in eval mode on ``device``."""
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / WEIGHTS_FILE).is_file() or not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{path} holds no action prior (train one with python -m training.action_prior RUN)")
    from safetensors import SafetensorError

    from utils.errors import first_line

    try:
        cfg = ActionPriorConfig(**json.loads((path / CONFIG_FILE).read_text())["config"])
    except (ValueError, KeyError, TypeError) as exc:  # truncated or hand-edited JSON, missing fields
        raise ValueError(f"{path / CONFIG_FILE} is not an action prior's config ({exc})") from exc
    prior = ActionPrior(cfg)
    try:
        prior.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
    except (SafetensorError, RuntimeError) as exc:  # truncated file, or weights of another shape
        raise ValueError(f"{path / WEIGHTS_FILE} does not hold this prior's weights: {first_line(exc)}") from exc
    return prior.to(device).eval()
