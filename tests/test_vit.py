"""The frame-causal ViT predictor."""

from __future__ import annotations

import pytest
import torch

from models.vit import ViTPredictor, frame_causal_mask


def test_mask_is_block_lower_triangular_buffer():
    m = frame_causal_mask(3, 2)
    assert m.shape == (6, 6) and m.dtype == torch.bool
    frames_seen = torch.tril(torch.ones(3, 3, dtype=torch.bool))  # frame i sees frames j <= i
    assert torch.equal(m, frames_seen.repeat_interleave(2, 0).repeat_interleave(2, 1))
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


def _trained_like(vit: ViTPredictor) -> ViTPredictor:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in vit.parameters():
            p.add_(0.2 * torch.randn_like(p))  # the zero head (and small init) would hide differences
    return vit.eval()


def test_kv_cache_and_last_frame_only_equal_the_full_forward():
    torch.manual_seed(0)
    vit = _trained_like(ViTPredictor(num_frames=4, num_patches=3, in_dim=16, out_dim=8, depth=3, heads=2))
    z = torch.randn(2, 4, 3, 16)
    full = vit(z)
    cache = vit.new_cache()
    first = vit(z[:, :2], cache=cache)  # two frames at once (frame-causal mask among them)
    assert cache.frames == 2 and cache.keys[0].shape == (2, 2, 6, 8)
    torch.testing.assert_close(first, full[:, :2], atol=1e-5, rtol=1e-5)
    for t in (2, 3):  # then one frame at a time: queries see all cached keys, no mask
        torch.testing.assert_close(vit(z[:, t:t + 1], cache=cache), full[:, t:t + 1], atol=1e-5, rtol=1e-5)
    assert cache.frames == 4
    with pytest.raises(ValueError, match="4 cached"):
        vit(z[:, :1], cache=cache)  # no slot left
    last = vit(z, last_frame_only=True)
    assert last.shape == (2, 1, 3, 8)
    torch.testing.assert_close(last, full[:, -1:], atol=1e-5, rtol=1e-5)


def test_single_query_frames_get_no_mask_so_fused_kernels_can_run(monkeypatch):
    vit = ViTPredictor(num_frames=3, num_patches=2, in_dim=16, out_dim=8, depth=2, heads=2).eval()
    masks = []
    real = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda q, k, v, attn_mask=None, **kw: masks.append(attn_mask) or real(q, k, v, attn_mask, **kw))
    vit(torch.randn(1, 1, 2, 16))  # one frame
    cache = vit.new_cache()
    vit(torch.randn(1, 1, 2, 16), cache=cache)
    vit(torch.randn(1, 1, 2, 16), cache=cache)  # one new frame over a cached one
    assert masks == [None] * 6
    vit(torch.randn(1, 3, 2, 16), last_frame_only=True)  # three frames: masked, but not in the last layer
    assert masks[6].shape == (6, 6) and masks[7] is None


def test_head_dims_fused_kernels_cannot_take_are_reported(caplog):
    with caplog.at_level("WARNING"):
        ViTPredictor(num_frames=2, num_patches=3, in_dim=80, out_dim=64, depth=1, heads=16)
    assert "head dim 5" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        ViTPredictor(num_frames=2, num_patches=3, in_dim=80, out_dim=64, depth=1, heads=5)
    assert not caplog.text


def test_shipped_predictor_configs_use_fused_head_dims():
    from omegaconf import OmegaConf

    from tests.conftest import ROOT

    for f in sorted((ROOT / "conf" / "predictor").glob("*.yaml")):
        heads = int(OmegaConf.load(f).heads)
        assert 80 % heads == 0 and (80 // heads) % 8 == 0, f.name  # width 80 = projected 64 + action 16
