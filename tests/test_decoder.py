"""Patch decoder: a square grid of patch latents -> an RGB image in [0, 1], each patch drawn where it sits."""

import pytest
import torch

from models.decoder import PatchDecoder


def test_shape_and_range():
    torch.manual_seed(0)
    dec = PatchDecoder(in_dim=8, out_size=20, width=16)
    img = dec(torch.randn(2, 16, 8) * 10)
    assert img.shape == (2, 3, 20, 20) and img.min() >= 0 and img.max() <= 1


def test_a_patch_changes_its_own_corner_of_the_image_only():
    torch.manual_seed(0)
    dec = PatchDecoder(in_dim=4, out_size=16, width=8).eval()
    z = torch.randn(1, 16, 4)  # 4 x 4 grid
    moved = z.clone()
    moved[0, 0] += 5.0  # top-left patch
    with torch.no_grad():
        diff = (dec(moved) - dec(z)).abs()[0].sum(0)  # [16, 16]
    near, far = diff[:4, :4].mean(), diff[-3:, -3:].max()
    assert near > 1e-3 and far < 1e-2 * near  # the bottom-right corner is (almost) out of the patch's reach
    assert diff[-1, -1] == 0


def test_non_square_patch_count_is_refused():
    with pytest.raises(ValueError, match="square grid"):
        PatchDecoder(in_dim=4, out_size=8)(torch.zeros(1, 12, 4))


def test_two_views_are_drawn_side_by_side_each_from_its_own_tokens():
    torch.manual_seed(0)
    dec = PatchDecoder(in_dim=4, out_size=16, width=8, views=2).eval()
    z = torch.randn(1, 32, 4)  # two 4 x 4 grids: the first view's tokens, then the second's
    moved = z.clone()
    moved[0, 16:] += 5.0  # every token of the second view
    with torch.no_grad():
        img, diff = dec(z), (dec(moved) - dec(z)).abs()[0].sum(0)  # [16, 32]
    assert img.shape == (1, 3, 16, 32)
    assert diff[:, :16].max() == 0 and diff[:, 16:].mean() > 1e-3  # the left picture is the first view's alone
    with pytest.raises(ValueError, match="2 square grid"):
        dec(torch.zeros(1, 20, 4))  # 10 tokens a view: no square grid
