"""Learned post-concat projection: [visual 384 | proprio emb 32] = 416 -> projected_dim (64)."""

from __future__ import annotations

from torch import Tensor, nn


class Projection(nn.Module):
    """x [..., in_dim] -> [..., out_dim] (two-layer MLP with a linear skip, then a parameter-free LayerNorm).

    The output norm fixes the latent's scale: without it the contrastive alignment (scale-free)
    inflates the latent norm step by step and the predictor chases a moving target.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 256):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.norm = nn.LayerNorm(in_dim)
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, out_dim))
        self.skip = nn.Linear(in_dim, out_dim)
        self.out_norm = nn.LayerNorm(out_dim, elementwise_affine=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(x)
        return self.out_norm(self.mlp(x) + self.skip(x))
