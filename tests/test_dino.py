"""The frozen DINOv2 encoder: official-key weights, HF-layout conversion, freezing, weight sources."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.dino import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    UnreadableWeightsError,
    build_dino_encoder,
    hf_to_official,
    official_to_hf,
    vits14_config,
)

OFFICIAL_TOP = {"cls_token", "pos_embed", "mask_token", "patch_embed.proj.weight", "patch_embed.proj.bias",
                "norm.weight", "norm.bias"}
BLOCK_PARTS = {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
               "attn.proj.bias", "ls1.gamma", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
               "mlp.fc2.weight", "mlp.fc2.bias", "ls2.gamma"}


def reference_dinov2(sd: dict[str, torch.Tensor], img: torch.Tensor, heads: int = 6) -> torch.Tensor:
    """Independent ViT-S/14 forward written from the official key layout (518-px input, no pos interp).

    img [B, 3, 518, 518] normalised -> patch tokens after the final norm [B, 1369, 384].
    """
    x = F.conv2d(img, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=14)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([sd["cls_token"].expand(len(x), -1, -1), x], 1) + sd["pos_embed"]
    n_blocks = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    for i in range(n_blocks):
        p = lambda n, i=i: sd[f"blocks.{i}.{n}"]  # noqa: E731
        h = F.layer_norm(x, (384,), p("norm1.weight"), p("norm1.bias"), eps=1e-6)
        b, n, d = h.shape
        qkv = (h @ p("attn.qkv.weight").T + p("attn.qkv.bias")).reshape(b, n, 3, heads, d // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1) / math.sqrt(d // heads)).softmax(-1)
        h = (att @ v).transpose(1, 2).reshape(b, n, d) @ p("attn.proj.weight").T + p("attn.proj.bias")
        x = x + p("ls1.gamma") * h
        h = F.layer_norm(x, (384,), p("norm2.weight"), p("norm2.bias"), eps=1e-6)
        h = F.gelu(h @ p("mlp.fc1.weight").T + p("mlp.fc1.bias")) @ p("mlp.fc2.weight").T + p("mlp.fc2.bias")
        x = x + p("ls2.gamma") * h
    x = F.layer_norm(x, (384,), sd["norm.weight"], sd["norm.bias"], eps=1e-6)
    return x[:, 1:]


@pytest.fixture(scope="module")
def official_sd() -> dict[str, torch.Tensor]:
    """A 2-block official-format DINOv2 state dict with non-trivial layerscale / norms."""
    g = torch.Generator().manual_seed(1)
    enc = build_dino_encoder(pretrained=False, img_size=28, seed=3, num_layers=2)
    sd = hf_to_official(enc.model.state_dict())
    return {k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in sd.items()}


def test_official_keys_load_strictly_and_match_reference_features(official_sd):
    assert OFFICIAL_TOP <= set(official_sd)
    assert {k.split(".", 2)[2] for k in official_sd if k.startswith("blocks.")} == BLOCK_PARTS
    from transformers import Dinov2Model

    model = Dinov2Model(vits14_config(num_layers=2)).eval()
    model.load_state_dict(official_to_hf(official_sd, set(model.state_dict())), strict=True)
    img = torch.rand(1, 3, 518, 518)
    norm = (img - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = reference_dinov2(official_sd, norm)
        hf = model(pixel_values=norm).last_hidden_state[:, 1:]
    assert hf.shape == (1, 37 * 37, 384)
    torch.testing.assert_close(hf, ref, atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(hf_to_official(model.state_dict())["blocks.1.attn.qkv.weight"],
                               official_sd["blocks.1.attn.qkv.weight"])


def test_unknown_official_key_is_refused(official_sd):
    with pytest.raises(KeyError, match="unexpected"):
        official_to_hf({**official_sd, "head.weight": torch.zeros(1)}, set())


def test_weights_path_loads_official_file(tmp_path):
    enc = build_dino_encoder(pretrained=False, img_size=28, seed=5)
    torch.save(hf_to_official(enc.model.state_dict()), tmp_path / "dinov2_vits14_pretrain.pth")
    loaded = build_dino_encoder(pretrained=True, weights_path=tmp_path / "dinov2_vits14_pretrain.pth", img_size=28)
    assert loaded.pretrained and loaded.weights_hash == enc.weights_hash
    x = torch.rand(2, 3, 40, 40)
    torch.testing.assert_close(loaded(x), enc(x))


def test_an_unreadable_weights_file_is_one_line_naming_it(tmp_path, official_sd):
    empty, tensor, partial = tmp_path / "empty.pth", tmp_path / "tensor.pth", tmp_path / "partial.pth"
    empty.write_bytes(b"")
    torch.save(torch.zeros(3), tensor)
    torch.save({k: v for i, (k, v) in enumerate(official_sd.items()) if i}, partial)  # one key missing
    for path in (empty, tensor, partial):
        with pytest.raises(UnreadableWeightsError) as err:  # a FileNotFoundError: callers exit 2 with it
            build_dino_encoder(pretrained=True, weights_path=path, img_size=28)
        assert str(err.value).startswith(f"{path} is not a readable DINOv2 ViT-S/14 checkpoint: ")
        assert "\n" not in str(err.value) and isinstance(err.value, FileNotFoundError)


def test_no_weights_reachable_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(FileNotFoundError, match="dinov2_vits14_pretrain.pth.*weights_path"):
        build_dino_encoder(pretrained=True, img_size=28)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_dino_encoder(pretrained=True, weights_path=tmp_path / "missing.pth")


def test_random_encoder_is_seeded_frozen_and_shaped(caplog):
    a = build_dino_encoder(pretrained=False, img_size=28, seed=0, num_layers=1)
    b = build_dino_encoder(pretrained=False, img_size=28, seed=0, num_layers=1)
    c = build_dino_encoder(pretrained=False, img_size=28, seed=1, num_layers=1)
    assert "RANDOM WEIGHTS" in caplog.text
    assert a.weights_hash == b.weights_hash != c.weights_hash
    assert not a.pretrained and a.weights_source.startswith("random")
    assert all(not p.requires_grad for p in a.parameters())
    a.train()
    assert not a.training and not a.model.training
    x = torch.rand(2, 3, 50, 70, requires_grad=True)
    out = a(x)
    assert out.shape == (2, 4, 384) and not out.requires_grad
    cls = build_dino_encoder(pretrained=False, img_size=42, feature_key="cls", num_layers=1)
    assert cls(x).shape == (2, 1, 384) and cls.num_patches == 1
    assert a.cache_key() != cls.cache_key()
    with pytest.raises(ValueError, match="multiple of 14"):
        build_dino_encoder(pretrained=False, img_size=30, num_layers=1)


def test_views_side_by_side_are_encoded_each_on_its_own():
    one = build_dino_encoder(pretrained=False, img_size=28, seed=2, num_layers=1)
    two = build_dino_encoder(pretrained=False, img_size=28, seed=2, num_layers=1, views=2)
    assert two.num_patches == 2 * one.num_patches == 8 and two.weights_hash == one.weights_hash
    assert two.cache_key() != one.cache_key() and one.cache_key().endswith("x_norm_patchtokens")
    left, right = torch.rand(3, 3, 40, 40), torch.rand(3, 3, 40, 40)
    out = two(torch.cat([left, right], dim=-1))  # [B, 3, 40, 80]: two 40 x 40 views
    assert out.shape == (3, 8, 384)
    torch.testing.assert_close(out[:, :4], one(left))  # no attention across views, each resized alone
    torch.testing.assert_close(out[:, 4:], one(right))
    with pytest.raises(ValueError, match="does not hold 2 views"):
        two(torch.rand(1, 3, 40, 81))
