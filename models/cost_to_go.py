"""A learned goal-conditioned cost-to-go on the world model's latents: how many planning steps from ``z`` to
``z_goal``, trained on states only (TD-MPC-style terminal value; no actions are read, so it is a cost, not a
policy).

The latent distance to the goal ranks a plan that puts the gripper at the goal pose without the object above one
that is still on its way to grasp it: the task's progress does not show in a distance. A cost-to-go learned from
the data's own trajectories does: a state halfway through a demonstration is ``k`` steps from its end, and a state
the data never continues to the goal (an exploration branch gone astray, another scene) is far. Planning then
minimises the predicted cost-to-go at the end of a short horizon, where the world model is accurate.

Shapes: B batch, P patches, D = projected_dim (64).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

CTG_DIR = "cost_to_go"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class CostToGoConfig:
    """Sizes of a :class:`CostToGo`: n_patches / latent_dim (P, D); far: the cost of an unreachable goal (planning
    steps, above the longest trajectory it was trained on); patch_dim, hidden: layer widths."""

    n_patches: int
    latent_dim: int
    far: float
    patch_dim: int = 16
    hidden: int = 512


class CostToGo(nn.Module):
    """d(z, z_goal) >= 0 in planning steps: each patch of [z, z_goal, z - z_goal] through one shared linear layer,
    flattened, an MLP, a softplus."""

    def __init__(self, cfg: CostToGoConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_in = nn.Linear(3 * cfg.latent_dim, cfg.patch_dim)
        width = cfg.n_patches * cfg.patch_dim
        self.mlp = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, cfg.hidden), nn.GELU(),
                                 nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, 1))

    def forward(self, z: Tensor, z_goal: Tensor) -> Tensor:
        """z [..., P, D], z_goal [..., P, D] (broadcast) -> [...] predicted planning steps to the goal."""
        z, z_goal = torch.broadcast_tensors(z.float(), z_goal.float())
        x = self.patch_in(torch.cat([z, z_goal, z - z_goal], dim=-1))  # [..., P, patch_dim]
        return F.softplus(self.mlp(rearrange(x, "... p c -> ... (p c)"))).squeeze(-1)


def save_cost_to_go(model: CostToGo, out_dir: str | Path, extra: dict | None = None) -> Path:
    """Write ``out_dir/{model.safetensors, config.json}`` (the caller makes ``out_dir`` atomic)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(out_dir / WEIGHTS_FILE))
    (out_dir / CONFIG_FILE).write_text(json.dumps({"config": asdict(model.cfg), **(extra or {})}, indent=2) + "\n")
    return out_dir


def load_cost_to_go(path: str | Path, device: str | torch.device = "cpu") -> CostToGo:
    """Load a saved cost-to-go directory (``RUN/cost_to_go``) in eval mode on ``device``; ValueError (one line)
    for a damaged one, FileNotFoundError when there is none."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from utils.errors import first_line

    path = Path(path)
    if not (path / WEIGHTS_FILE).is_file() or not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{path} holds no cost-to-go (fit one with python -m training.cost_to_go RUN)")
    try:
        cfg = CostToGoConfig(**json.loads((path / CONFIG_FILE).read_text())["config"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path / CONFIG_FILE} is not a cost-to-go's config ({exc})") from exc
    model = CostToGo(cfg)
    try:
        model.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
    except (SafetensorError, RuntimeError) as exc:
        raise ValueError(f"{path / WEIGHTS_FILE} does not hold this cost-to-go's weights: {first_line(exc)}") from exc
    return model.to(device).eval()
