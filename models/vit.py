"""Frame-causal ViT predictor over the latent tokens of ``num_hist`` frames.

Tokens of frame t attend to every token of frames <= t, through ``F.scaled_dot_product_attention``
(SDPA). Input width = projected_dim + action_emb_dim (80), output = projected_dim (64) per token: the
latent of the next frame.

How the mask reaches SDPA (what lets the fused GPU kernels run):

- The head dim (width / heads) should be a multiple of 8: the fused kernels (flash, memory-efficient,
  cuDNN, which torch prefers on Hopper GPUs with a recent cuDNN) take only those (width 80: 5 heads of
  16). Other layouts still work (a warning says they fall back to the math kernel, which materialises
  the full score matrix). ``benchmarks/plan_latency.py --no-cudnn-attention`` compares the kernels.
- A query block that is a single frame sees every key given to it (all of its own frame and all
  earlier ones), so it gets **no mask**: flash attention runs. That covers one-frame windows (the
  demo config, ``num_hist: 1``), every step of a rollout with a key/value cache, and the last layer
  of a sliding-window rollout step (only the last frame's queries are needed there).
- Several query frames at once (training, the first rollout step with more than one observed
  frame) get the block lower-triangular bool mask. The memory-efficient kernel takes an arbitrary
  mask (flash takes none, and the frame-causal pattern is not ``is_causal``'s token-causal one),
  so no path falls back to the math kernel because of the mask. Block masks of flex attention would
  also skip the fully masked tiles, but they need ``torch.compile``; with 3-4 frames the saving
  (at most a third of the score tiles) does not pay for that.

Rollouts may reuse the keys/values of frames already fed (:class:`KVCache`): under the frame-causal
mask a frame's keys/values depend only on itself, the frames before it and its position slot, so they
are unchanged while frames are appended behind it. See ``VWorldModel.rollout_latents`` for when that
holds (only while the window grows; a sliding window moves every frame to another slot).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

log = logging.getLogger(__name__)
FUSED_HEAD_DIM_MULTIPLE = 8  # flash / memory-efficient SDPA kernels need head_dim % 8 == 0


def frame_causal_mask(num_frames: int, num_patches: int) -> Tensor:
    """bool [F*P, F*P]: True where query token (frame i) may attend key token (frame j <= i)."""
    frame = torch.arange(num_frames).repeat_interleave(num_patches)
    return frame[:, None] >= frame[None, :]


class KVCache:
    """Per-layer keys / values [B, heads, n_cached_tokens, head_dim] of the frames fed so far.

    ``frames`` is how many frames (position slots 0..frames-1) the cache holds. It is filled by
    :meth:`ViTPredictor.forward` with ``cache=``; only valid while those frames keep their content,
    their slot and their predecessors (appending frames behind them is fine).
    """

    def __init__(self, depth: int):
        self.keys: list[Tensor | None] = [None] * depth
        self.values: list[Tensor | None] = [None] * depth
        self.frames = 0

    def extend(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append this layer's new keys / values; returns all of them (cached first)."""
        if self.keys[layer] is not None:
            k, v = torch.cat([self.keys[layer], k], dim=2), torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor | None, kv: tuple[KVCache, int] | None = None,
                queries_from: int = 0) -> Tensor:
        """x [B, N, D] -> [B, N - queries_from, D].

        ``mask`` bool [N - queries_from, N_keys] or None (every query sees every key); ``kv`` = (cache,
        layer): the cached keys / values come first; ``queries_from``: only tokens from there on query.
        """
        b, n, d = x.shape  # plain view / permute, not einops: this runs ~100 times per rollout step
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        if kv is not None:
            k, v = kv[0].extend(kv[1], k, v)
        y = F.scaled_dot_product_attention(q[:, :, queries_from:], k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, n - queries_from, d))  # [B, Nq, heads * head_dim]


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, mask: Tensor | None, kv: tuple[KVCache, int] | None = None,
                queries_from: int = 0) -> Tensor:
        """x [B, N, D] -> [B, N - queries_from, D] (see :meth:`Attention.forward`)."""
        x = x[:, queries_from:] + self.attn(self.norm1(x), mask, kv, queries_from)
        return x + self.mlp(self.norm2(x))


class ViTPredictor(nn.Module):
    """z [B, T, P, in_dim] (T <= num_frames) -> predicted next latents [B, T, P, out_dim].

    ``in_dim`` = projected_dim + action_emb_dim (computed once by the caller), ``out_dim`` =
    projected_dim. Position t's output is the prediction of frame t + 1.
    """

    def __init__(self, num_frames: int, num_patches: int, in_dim: int, out_dim: int, depth: int = 6,
                 heads: int = 5, mlp_ratio: float = 4.0, dropout: float = 0.0, grad_checkpointing: bool = False):
        super().__init__()
        if in_dim % heads:
            raise ValueError(f"predictor width {in_dim} is not divisible by heads={heads}")
        if (in_dim // heads) % FUSED_HEAD_DIM_MULTIPLE:
            log.warning("predictor head dim %d (width %d / %d heads) is not a multiple of %d: fused attention "
                        "kernels cannot run on a GPU (slow math fallback)", in_dim // heads, in_dim, heads,
                        FUSED_HEAD_DIM_MULTIPLE)
        self.num_frames, self.num_patches, self.in_dim, self.out_dim = num_frames, num_patches, in_dim, out_dim
        self.grad_checkpointing = grad_checkpointing
        self.pos_embedding = nn.Parameter(torch.randn(1, num_frames * num_patches, in_dim) * 0.02)
        self.blocks = nn.ModuleList(Block(in_dim, heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(in_dim)
        self.head = nn.Linear(in_dim, out_dim)
        nn.init.zeros_(self.head.weight)  # starts as "no change" (with the residual world model: copy-last)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("mask", frame_causal_mask(num_frames, num_patches), persistent=False)

    def new_cache(self) -> KVCache:
        return KVCache(len(self.blocks))

    def _mask(self, start: int, t: int) -> Tensor | None:
        """Mask rows of query frames start..start+t-1 over key frames 0..start+t-1; None for one query frame."""
        if t == 1:
            return None
        p = self.num_patches
        return self.mask[start * p : (start + t) * p, : (start + t) * p]

    def forward(self, z: Tensor, cache: KVCache | None = None, last_frame_only: bool = False,
                stream_dtype: torch.dtype | None = None) -> Tensor:
        """z [B, T, P, in_dim] -> [B, T, P, out_dim] ([B, 1, P, out_dim] with ``last_frame_only``).

        With ``cache``, ``z`` holds the frames that follow the ``cache.frames`` cached ones (they take
        position slots cache.frames..) and the cache is extended with them. ``last_frame_only`` computes
        the last layer for the last frame's tokens only (what a rollout step needs); exact either way.
        ``stream_dtype``: the residual stream's dtype (None: fp32, as the position embedding makes it;
        rollouts under bf16 autocast pass bf16, which halves the traffic between the blocks).
        """
        b, t, p, _ = z.shape
        start = cache.frames if cache is not None else 0
        if start + t > self.num_frames or p != self.num_patches:
            raise ValueError(f"predictor built for <= {self.num_frames} frames x {self.num_patches} patches, "
                             f"got {start} cached + {t} x {p}")
        x = rearrange(z, "b t p d -> b (t p) d") + self.pos_embedding[:, start * p : (start + t) * p]
        if stream_dtype is not None:
            x = x.to(stream_dtype)
        mask, last = self._mask(start, t), len(self.blocks) - 1
        for i, blk in enumerate(self.blocks):
            kv = (cache, i) if cache is not None else None
            q_from = (t - 1) * p if last_frame_only and i == last else 0
            m = None if q_from else mask
            if self.grad_checkpointing and self.training and torch.is_grad_enabled() and kv is None:
                x = checkpoint(blk, x, m, kv, q_from, use_reentrant=False)
            else:
                x = blk(x, m, kv, q_from)
        if cache is not None:
            cache.frames = start + t
        return rearrange(self.head(self.norm(x)), "b (t p) d -> b t p d", p=p)
