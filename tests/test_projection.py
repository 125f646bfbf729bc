"""Projection [visual | proprio] -> projected_dim: the output's scale is fixed (parameter-free LayerNorm)."""

import torch

from models.projection import Projection


def test_output_is_normalised_per_token_and_has_the_projected_width():
    torch.manual_seed(0)
    proj = Projection(in_dim=12, out_dim=6, hidden_dim=8)
    out = proj(torch.randn(3, 5, 12) * 7 + 2)
    assert out.shape == (3, 5, 6)
    torch.testing.assert_close(out.mean(-1), torch.zeros(3, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(3, 5), atol=1e-3, rtol=0)
    assert not list(proj.out_norm.parameters())  # nothing can learn to inflate the scale


def test_input_scale_does_not_change_the_latent():
    torch.manual_seed(1)
    proj = Projection(in_dim=10, out_dim=4, hidden_dim=8)
    x = torch.randn(4, 10)
    torch.testing.assert_close(proj(10 * x), proj(x), atol=1e-4, rtol=0)
    assert not torch.allclose(proj(x), proj(torch.randn(4, 10)))
