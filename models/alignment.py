"""InfoNCE alignment of the first ``alignment_dim`` latent dims with the true low-dim state."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class StateAlignment(nn.Module):
    """Contrastive loss between patch-mean z[..., :alignment_dim] and a learned map of the state.

    ``z`` [N, alignment_dim] and ``state`` [N, state_dim] (normalised): positives are the pairs of
    the same sample, negatives every other sample of the batch; symmetric cross-entropy with a
    learned temperature (log-parametrised, clamped to [0.01, 1]).
    """

    def __init__(self, state_dim: int, alignment_dim: int, init_temperature: float = 0.1):
        super().__init__()
        self.state_dim, self.alignment_dim = state_dim, alignment_dim
        self.state_map = nn.Linear(state_dim, alignment_dim)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(init_temperature)))

    @property
    def temperature(self) -> Tensor:
        return self.log_temperature.exp().clamp(0.01, 1.0)

    def forward(self, z: Tensor, state: Tensor) -> Tensor:
        """z [N, alignment_dim], state [N, state_dim] -> scalar loss."""
        a = F.normalize(z.float(), dim=-1)
        s = F.normalize(self.state_map(state.float()), dim=-1)
        logits = a @ s.T / self.temperature
        target = torch.arange(len(a), device=a.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


class StateReadout(nn.Module):
    """The low-dim state read from the aligned dims of a latent: [..., P, alignment_dim] -> [..., state_dim].

    ``n_patches`` given: one linear map of every patch's aligned dims (where in the image the object is
    counts: a small object covers a patch or two), trained on encoded and predicted latents; planning's
    learned state cost reads it (``planning.objectives``). ``n_patches=None``: the linear map of the patch
    mean, as runs saved before the patch readout were trained (they load with it).
    """

    def __init__(self, alignment_dim: int, state_dim: int, n_patches: int | None = None):
        super().__init__()
        self.alignment_dim, self.n_patches = alignment_dim, n_patches
        self.linear = nn.Linear(alignment_dim * (n_patches or 1), state_dim)

    def forward(self, z: Tensor) -> Tensor:
        """z [..., P, alignment_dim] -> [..., state_dim]."""
        x = z.flatten(-2) if self.n_patches else z.mean(-2)
        return self.linear(x)
