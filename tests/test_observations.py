"""Env observations <-> model inputs: image layout and range, normalised proprio, normalised action bounds."""

import numpy as np
import torch

from datasets.normalizer import Normalizer
from planning.execution.observations import (
    action_bounds,
    constant_action_dims,
    images_to_uint8,
    precompute_features,
    to_model_obs,
)


def _norm(action_std=None):
    std = torch.tensor([0.5, 2.0, 1e-6]) if action_std is None else action_std
    return Normalizer(action_mean=torch.tensor([1.0, 0.0, 0.0]), action_std=std,
                      proprio_mean=torch.tensor([1.0, -1.0]), proprio_std=torch.tensor([2.0, 0.5]),
                      state_mean=torch.zeros(1), state_std=torch.ones(1))


def test_to_model_obs_layout_range_and_normalisation_and_back():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (2, 3, 5, 4, 3), dtype=np.uint8)  # [B, T, H, W, 3]
    props = np.array([[[3.0, -1.0]] * 3] * 2)
    obs = to_model_obs(imgs, props, _norm(), "cpu")
    assert obs["visual"].shape == (2, 3, 3, 5, 4) and obs["visual"].dtype == torch.float32
    assert float(obs["visual"].max()) <= 1.0 and float(obs["visual"].min()) >= 0.0
    torch.testing.assert_close(obs["proprio"], torch.tensor([1.0, 0.0]).expand(2, 3, 2))
    np.testing.assert_array_equal(images_to_uint8(obs["visual"]), imgs)  # exact round trip


def test_action_bounds_are_normalised_tiled_and_ordered():
    lo, hi = action_bounds(_norm(torch.tensor([0.5, -2.0, 1.0])), np.array([-1.0, -1.0, -1.0]),
                           np.array([1.0, 1.0, 1.0]), frameskip=2)
    assert lo.shape == (6,) and (lo <= hi).all()  # a negative std flips a dim: still low <= high
    torch.testing.assert_close(lo, torch.tensor([-4.0, -0.5, -1.0] * 2))  # tiled over the frameskip
    torch.testing.assert_close(hi, torch.tensor([0.0, 0.5, 1.0] * 2))


def test_constant_dims_are_those_at_the_std_floor():
    assert constant_action_dims(_norm(), frameskip=2).tolist() == [False, False, True] * 2


class _Encoder:
    def __call__(self, x):  # [N, 3, H, W] -> [N, P=2, E=1]: the mean of each half of the image
        return torch.stack([x[..., :2].mean((1, 2, 3)), x[..., 2:].mean((1, 2, 3))], -1)[..., None]


def test_precompute_features_replaces_images_by_encoder_features():
    visual = torch.zeros(2, 3, 3, 5, 4)
    visual[1, 2, :, :, 2:] = 1.0
    model = type("M", (), {"encoder": _Encoder()})()
    out = precompute_features(model, {"visual": visual, "proprio": torch.ones(2, 3, 2)})
    assert set(out) == {"features", "proprio"} and out["features"].shape == (2, 3, 2, 1)
    assert out["features"][1, 2, 1, 0] == 1.0 and out["features"].sum() == 1.0
    plain = {"visual": visual, "proprio": torch.ones(2, 3, 2)}
    assert precompute_features(object(), plain) is plain  # no encoder: unchanged
