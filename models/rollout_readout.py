"""A state readout refitted on the world model's own open-loop rollouts (``RUN/rollout_readout``).

The run's readout (``VWorldModel.read_state``) is trained with the model on encoded frames and on predictions at
most ``num_pred`` steps ahead. Planning reads it on rollouts ``goal_H`` steps ahead, of the actions the search
picks, where the predictor's errors have built up: on Lift it reads the plans that lift the cube as ending at the goal
height while they truly end 2 cm below (docs/experiments.md, round 15). This readout has the same form (one linear
map of every patch's aligned dims, :class:`models.alignment.StateReadout`) and is fitted, with the world model
frozen, on its rollouts of the training episodes' true actions against the true states they reached
(``python -m training.rollout_readout RUN``): what the model's prediction of a plan says about where the plan will
truly end. Planning uses it with ``objective.state_readout=rollout``; it is a learned cost on latents (states only,
no action is learned from demonstrations).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn

from models.alignment import StateReadout

READOUT_DIR = "rollout_readout"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class LatentStateReader(nn.Module):
    """latents [..., P, >= alignment_dim] -> normalised state [..., S], through ``readout`` on the aligned dims
    (the objective's ``state_reader``, in place of the model's own ``read_state``)."""

    def __init__(self, readout: StateReadout):
        super().__init__()
        self.readout = readout

    @property
    def alignment_dim(self) -> int:
        return self.readout.alignment_dim

    def forward(self, z: Tensor) -> Tensor:
        return self.readout(z[..., : self.alignment_dim].float())


def save_rollout_readout(readout: StateReadout, out_dir: str | Path, extra: dict | None = None) -> Path:
    """Write ``out_dir/{model.safetensors, config.json}`` (the caller makes ``out_dir`` atomic)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in readout.state_dict().items()}, str(out_dir / WEIGHTS_FILE))
    shape = {"alignment_dim": readout.alignment_dim, "state_dim": readout.linear.out_features,
             "n_patches": readout.n_patches}
    (out_dir / CONFIG_FILE).write_text(json.dumps({"config": shape, **(extra or {})}, indent=2) + "\n")
    return out_dir


def load_rollout_readout(path: str | Path, device: str | torch.device = "cpu") -> LatentStateReader:
    """Load ``RUN/rollout_readout`` as a reader in eval mode on ``device``; FileNotFoundError when there is none,
    ValueError (one line) for a damaged one."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from utils.errors import first_line

    path = Path(path)
    if not (path / WEIGHTS_FILE).is_file() or not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{path} holds no rollout readout (fit one with python -m training.rollout_readout RUN)")
    try:
        shape = json.loads((path / CONFIG_FILE).read_text())["config"]
        readout = StateReadout(int(shape["alignment_dim"]), int(shape["state_dim"]), shape["n_patches"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path / CONFIG_FILE} is not a rollout readout's config ({first_line(exc)})") from exc
    try:
        readout.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
    except (SafetensorError, RuntimeError) as exc:
        raise ValueError(f"{path / WEIGHTS_FILE} does not hold this rollout readout's weights: {first_line(exc)}") from exc
    return LatentStateReader(readout).to(device).eval()
