"""Mean / std normalisation of actions, proprio and states (statistics from the training split only)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partialmethod
from pathlib import Path

import torch
from torch import Tensor

from utils.atomic_files import atomic_write_json

NORMALIZER_FILE = "normalizer.json"
_MIN_STD = 1e-6


@dataclass
class Normalizer:
    """Per-dimension mean / std (1-D tensors) for ``action`` (7), ``proprio`` and ``state``.

    ``normalize_action`` / ``denormalize_action`` accept ``[..., 7]`` (one env step) or
    ``[..., 7 * frameskip]`` (``frameskip`` env-step actions concatenated, oldest first): the 7-D
    statistics are tiled. ``normalize_proprio`` takes ``[..., proprio_dim]``, ``normalize_state``
    ``[..., state_dim]``. Stats move to the input's device / dtype.
    """

    action_mean: Tensor
    action_std: Tensor
    proprio_mean: Tensor
    proprio_std: Tensor
    state_mean: Tensor
    state_std: Tensor

    @classmethod
    def fit(cls, actions: Tensor, proprios: Tensor, states: Tensor, seq_lengths: Tensor,
            episodes: list[int]) -> Normalizer:
        """Statistics over the valid frames (t < seq_len) of ``episodes`` ([N, T_max, D] inputs)."""
        t_max = actions.shape[1]
        valid = torch.arange(t_max)[None, :] < seq_lengths[:, None]  # [N, T_max]
        sel = torch.zeros(len(seq_lengths), dtype=torch.bool)
        sel[list(episodes)] = True
        mask = valid & sel[:, None]

        def stats(x: Tensor) -> tuple[Tensor, Tensor]:
            v = x[mask].double()
            return v.mean(0).float(), v.std(0, unbiased=False).clamp_min(_MIN_STD).float()

        (am, as_), (pm, ps), (sm, ss) = stats(actions), stats(proprios), stats(states)
        return cls(am, as_, pm, ps, sm, ss)

    @staticmethod
    def _apply(x: Tensor, mean: Tensor, std: Tensor, inverse: bool) -> Tensor:
        d = x.shape[-1]
        if d % mean.numel():
            raise ValueError(f"last dim {d} is not a multiple of the statistics' size {mean.numel()}")
        reps = d // mean.numel()
        mean, std = mean.to(x.device, x.dtype).repeat(reps), std.to(x.device, x.dtype).repeat(reps)
        return x * std + mean if inverse else (x - mean) / std

    def normalize(self, kind: str, x: Tensor) -> Tensor:
        """``x`` [..., k * d] in ``kind`` ("action" | "proprio" | "state") units -> zero mean, unit std."""
        return self._apply(x, getattr(self, f"{kind}_mean"), getattr(self, f"{kind}_std"), False)

    def denormalize(self, kind: str, x: Tensor) -> Tensor:
        """Inverse of :meth:`normalize`."""
        return self._apply(x, getattr(self, f"{kind}_mean"), getattr(self, f"{kind}_std"), True)

    normalize_action = partialmethod(normalize, "action")
    denormalize_action = partialmethod(denormalize, "action")
    normalize_proprio = partialmethod(normalize, "proprio")
    denormalize_proprio = partialmethod(denormalize, "proprio")
    normalize_state = partialmethod(normalize, "state")
    denormalize_state = partialmethod(denormalize, "state")

    def to_dict(self) -> dict[str, list[float]]:
        return {k: getattr(self, k).tolist() for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> Normalizer:
        return cls(**{k: torch.tensor(d[k], dtype=torch.float32) for k in cls.__dataclass_fields__})

    def save(self, run_dir: str | Path) -> Path:
        """Write ``run_dir/normalizer.json`` atomically."""
        return atomic_write_json(Path(run_dir) / NORMALIZER_FILE, self.to_dict(), indent=1)

    @classmethod
    def load(cls, run_dir: str | Path) -> Normalizer:
        return cls.from_dict(json.loads((Path(run_dir) / NORMALIZER_FILE).read_text()))
