"""Frame-causal ViT predictor over the latent tokens of ``num_hist`` frames.

Tokens of frame t attend to every token of frames <= t (block lower-triangular mask, a registered
buffer), through ``F.scaled_dot_product_attention``. Input width = projected_dim + action_emb_dim
(80), output = projected_dim (64) per token: the latent of the next frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


def frame_causal_mask(num_frames: int, num_patches: int) -> Tensor:
    """bool [F*P, F*P]: True where query token (frame i) may attend key token (frame j <= i)."""
    frame = torch.arange(num_frames).repeat_interleave(num_patches)
    return frame[:, None] >= frame[None, :]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x [B, N, D], mask bool [N, N] -> [B, N, D]."""
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(rearrange(y, "b h n d -> b n (h d)"))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class ViTPredictor(nn.Module):
    """z [B, T, P, in_dim] (T <= num_frames) -> predicted next latents [B, T, P, out_dim].

    ``in_dim`` = projected_dim + action_emb_dim (computed once by the caller), ``out_dim`` =
    projected_dim. Position t's output is the prediction of frame t + 1.
    """

    def __init__(self, num_frames: int, num_patches: int, in_dim: int, out_dim: int, depth: int = 6,
                 heads: int = 16, mlp_ratio: float = 4.0, dropout: float = 0.0, grad_checkpointing: bool = False):
        super().__init__()
        if in_dim % heads:
            raise ValueError(f"predictor width {in_dim} is not divisible by heads={heads}")
        self.num_frames, self.num_patches, self.in_dim, self.out_dim = num_frames, num_patches, in_dim, out_dim
        self.grad_checkpointing = grad_checkpointing
        self.pos_embedding = nn.Parameter(torch.randn(1, num_frames * num_patches, in_dim) * 0.02)
        self.blocks = nn.ModuleList(Block(in_dim, heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(in_dim)
        self.head = nn.Linear(in_dim, out_dim)
        nn.init.zeros_(self.head.weight)  # starts as "no change" (with the residual world model: copy-last)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("mask", frame_causal_mask(num_frames, num_patches), persistent=False)

    def forward(self, z: Tensor) -> Tensor:
        b, t, p, _ = z.shape
        if t > self.num_frames or p != self.num_patches:
            raise ValueError(f"predictor built for <= {self.num_frames} frames x {self.num_patches} patches, "
                             f"got {t} x {p}")
        n = t * p
        x = rearrange(z, "b t p d -> b (t p) d") + self.pos_embedding[:, :n]
        mask = self.mask[:n, :n]
        for blk in self.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(blk, x, mask, use_reentrant=False)
            else:
                x = blk(x, mask)
        return rearrange(self.head(self.norm(x)), "b (t p) d -> b t p d", t=t)
