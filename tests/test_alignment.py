"""InfoNCE state alignment: matched (latent, state) pairs score lower than mismatched ones; clamped temperature."""

import math

import torch

from models.alignment import StateAlignment, StateReadout


def test_matched_pairs_give_a_lower_loss_than_shuffled_ones():
    torch.manual_seed(0)
    align = StateAlignment(state_dim=5, alignment_dim=4, init_temperature=0.1)
    state = torch.randn(32, 5)
    with torch.no_grad():
        z = align.state_map(state)  # latents that point where their own state maps
    matched, shuffled = align(z, state), align(z[torch.randperm(32)], state)
    assert matched < 0.5 * shuffled
    assert matched < math.log(32) < shuffled  # chance level is log(N)


def test_loss_is_symmetric_in_its_two_directions_and_trains_the_state_map():
    torch.manual_seed(1)
    align = StateAlignment(state_dim=3, alignment_dim=3)
    z, state = torch.randn(8, 3, requires_grad=True), torch.randn(8, 3)
    loss = align(z, state)
    loss.backward()
    assert z.grad is not None and align.state_map.weight.grad.abs().sum() > 0
    assert align.log_temperature.grad is not None
    with torch.no_grad():  # the definition, written out: mean of the z -> state and state -> z InfoNCE terms
        a = z / z.norm(dim=1, keepdim=True)
        s = align.state_map(state)
        sim = a @ (s / s.norm(dim=1, keepdim=True)).T / align.temperature  # [N, N], positives on the diagonal
        z_to_state = (sim.logsumexp(dim=1) - sim.diag()).mean()
        state_to_z = (sim.logsumexp(dim=0) - sim.diag()).mean()
    assert abs(float(z_to_state) - float(state_to_z)) > 1e-3  # the two directions differ on this batch
    torch.testing.assert_close(loss.detach(), 0.5 * (z_to_state + state_to_z))


def test_temperature_is_clamped():
    assert float(StateAlignment(2, 2, init_temperature=5.0).temperature.detach()) == 1.0
    assert abs(float(StateAlignment(2, 2, init_temperature=1e-4).temperature.detach()) - 0.01) < 1e-7
    assert abs(float(StateAlignment(2, 2, init_temperature=0.2).temperature.detach()) - 0.2) < 1e-6


def test_readout_maps_aligned_dims_to_the_state_affinely():
    """Both readouts are affine in the patches' aligned dims: [B, P, a] -> [B, state_dim]."""
    torch.manual_seed(2)
    z = torch.randn(2, 3, 4)  # [B, P, alignment_dim]
    for head in (StateReadout(alignment_dim=4, state_dim=6), StateReadout(alignment_dim=4, state_dim=6, n_patches=3)):
        out = head(z)
        assert out.shape == (2, 6)
        zero = head(torch.zeros(3, 4))
        torch.testing.assert_close(head(2 * z) - zero, 2 * (out - zero))


def test_patch_readout_sees_where_the_object_is_and_the_mean_readout_does_not():
    torch.manual_seed(0)
    left, right = torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)
    left[0, 0, 0], right[0, 2, 0] = 1.0, 1.0  # the same feature on another patch: equal patch means
    mean_head, patch_head = StateReadout(4, 6), StateReadout(4, 6, n_patches=3)
    torch.testing.assert_close(mean_head(left), mean_head(right))
    assert not torch.allclose(patch_head(left), patch_head(right))
