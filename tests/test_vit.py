"""The frame-causal ViT predictor."""

from __future__ import annotations

import pytest
import torch

from models.vit import ViTPredictor, frame_causal_mask


def test_mask_is_block_lower_triangular_buffer():
    m = frame_causal_mask(3, 2)
    assert m.shape == (6, 6) and m.dtype == torch.bool
    assert m[0, 1] and not m[0, 2] and m[5, 0] and m[2, 3]
    vit = ViTPredictor(num_frames=3, num_patches=2, in_dim=16, out_dim=8, depth=1, heads=2)
    assert "mask" in dict(vit.named_buffers()) and "mask" not in vit.state_dict()


def test_changing_a_later_frame_never_changes_an_earlier_prediction():
    torch.manual_seed(0)
    vit = ViTPredictor(num_frames=4, num_patches=3, in_dim=16, out_dim=8, depth=2, heads=4).eval()
    assert (vit.head.weight == 0).all()  # zero-initialised head: starts as "no change"
    torch.nn.init.normal_(vit.head.weight)
    z = torch.randn(2, 4, 3, 16)
    out = vit(z)
    assert out.shape == (2, 4, 3, 8)
    for t in range(1, 4):
        z2 = z.clone()
        z2[:, t:] += torch.randn_like(z2[:, t:])
        out2 = vit(z2)
        torch.testing.assert_close(out2[:, :t], out[:, :t])
        assert not torch.allclose(out2[:, t], out[:, t])
    torch.testing.assert_close(vit(z[:, :2]), out[:, :2], atol=1e-5, rtol=1e-5)  # shorter history


def test_shape_checks_and_grad_checkpointing():
    vit = ViTPredictor(num_frames=2, num_patches=3, in_dim=16, out_dim=8, depth=1, heads=4, grad_checkpointing=True)
    with pytest.raises(ValueError, match="predictor built for"):
        vit(torch.randn(1, 3, 3, 16))
    with pytest.raises(ValueError, match="divisible"):
        ViTPredictor(num_frames=2, num_patches=3, in_dim=15, out_dim=8, heads=4)
    z = torch.randn(1, 2, 3, 16)
    torch.nn.init.normal_(vit.head.weight)
    vit(z).sum().backward()
    assert vit.blocks[0].attn.qkv.weight.grad is not None
