"""Normalizer: statistics from the training episodes only, round trips, frameskip tiling, save / load."""

from __future__ import annotations

import pytest
import torch

from datasets.normalizer import Normalizer


def data():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 6, 7, generator=g) * 3 + 1
    p = torch.randn(4, 6, 5, generator=g)
    s = torch.randn(4, 6, 3, generator=g)
    lengths = torch.tensor([6, 4, 6, 5])
    a[1, 4:] = 1000.0  # padding: must not enter the statistics
    a[3] = -50.0       # a validation episode: must not enter the statistics
    return a, p, s, lengths


def test_fit_on_train_valid_frames_only():
    a, p, s, n = data()
    norm = Normalizer.fit(a, p, s, n, episodes=[0, 1, 2])
    valid = torch.cat([a[0], a[1, :4], a[2]])
    torch.testing.assert_close(norm.action_mean, valid.mean(0))
    torch.testing.assert_close(norm.action_std, valid.std(0, unbiased=False))
    x = norm.normalize_action(valid)
    torch.testing.assert_close(x.mean(0), torch.zeros(7), atol=1e-5, rtol=0)


def test_round_trips_and_frameskip_tiling(tmp_path):
    a, p, s, n = data()
    norm = Normalizer.fit(a, p, s, n, episodes=[0, 2])
    x = torch.randn(2, 3, 7 * 5, dtype=torch.float64)
    torch.testing.assert_close(norm.denormalize_action(norm.normalize_action(x)), x)
    torch.testing.assert_close(norm.normalize_action(x)[..., 7:14], norm.normalize_action(x[..., 7:14]))
    torch.testing.assert_close(norm.denormalize_proprio(norm.normalize_proprio(p)), p, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(norm.denormalize_state(norm.normalize_state(s)), s, atol=1e-5, rtol=1e-5)
    norm.save(tmp_path)
    back = Normalizer.load(tmp_path)
    torch.testing.assert_close(back.normalize_state(s), norm.normalize_state(s))


def test_constant_dimension_does_not_divide_by_zero():
    a, p, s, n = data()
    s[..., 0] = 2.0
    norm = Normalizer.fit(a, p, s, n, episodes=[0])
    out = norm.normalize_state(s)
    assert torch.isfinite(out).all()
    assert float(norm.state_std[0]) == pytest.approx(1e-6)  # the floor, not 0 and not a unit std
    assert (out[..., 0] == 0).all()  # the constant itself normalises to 0 (mean subtracted first)
