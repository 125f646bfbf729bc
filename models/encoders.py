"""Low-dimensional encoders: proprio -> proprio_emb_dim and (concatenated) action -> action_emb_dim."""

from __future__ import annotations

from torch import Tensor, nn


class LinearEncoder(nn.Module):
    """Per-timestep linear embedding: x [..., in_dim] -> [..., emb_dim] (a 1x1 temporal conv)."""

    def __init__(self, in_dim: int, emb_dim: int):
        super().__init__()
        self.in_dim, self.emb_dim = in_dim, emb_dim
        self.proj = nn.Linear(in_dim, emb_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class ProprioEncoder(LinearEncoder):
    """proprio [B, T, proprio_dim] (normalised) -> [B, T, proprio_emb_dim]."""


class ActionEncoder(LinearEncoder):
    """action [B, T, action_dim * frameskip] (normalised) -> [B, T, action_emb_dim]."""
