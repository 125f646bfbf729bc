"""Optional small image decoder: patch latents [B, P, D] (P = g*g) -> images [B, 3, S, S] in [0, 1]."""

from __future__ import annotations

import math

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class PatchDecoder(nn.Module):
    """Upsampling conv decoder from the g x g grid of latents to an S x S RGB image (for pictures only); with
    ``views`` = V, V grids (one per camera, in the encoder's order) to V images side by side, S x V * S."""

    def __init__(self, in_dim: int, out_size: int, width: int = 64, views: int = 1):
        super().__init__()
        self.out_size, self.views = out_size, views
        self.inp = nn.Conv2d(in_dim, width, 3, padding=1)
        self.up = nn.Sequential(
            nn.GELU(), nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(width, width, 3, padding=1),
            nn.GELU(), nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(width, width // 2, 3, padding=1),
            nn.GELU())
        self.out = nn.Conv2d(width // 2, 3, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        """z [B, P, D] (P = V x g x g) -> images [B, 3, out_size, V * out_size] in [0, 1]."""
        per_view = z.shape[1] // self.views
        g = math.isqrt(per_view)
        if g * g != per_view or per_view * self.views != z.shape[1]:
            raise ValueError(f"decoder needs {self.views} square grid(s) of patch tokens, got P={z.shape[1]}")
        x = self.up(self.inp(rearrange(z, "b (v h w) d -> (b v) d h w", v=self.views, h=g)))
        x = F.interpolate(x, size=(self.out_size, self.out_size), mode="bilinear", align_corners=False)
        return rearrange(self.out(x).sigmoid(), "(b v) c h w -> b c h (v w)", v=self.views)
