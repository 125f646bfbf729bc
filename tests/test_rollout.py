"""The planners' shared rollout: latent rollouts equal the model's own rollout (real VWorldModel)."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir

from planning.objectives import LatentGoalObjective
from planning.planners.protocol import PlanContext
from planning.planners.rollout import (
    encode_context,
    evaluate_candidates,
    rollout_autocast,
    rollout_dtype,
    rollout_predictions,
)
from tests.conftest import ROOT


def _tiny_model(num_hist: int = 2):
    from training.model_config import world_model_from_cfg

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train_robomimic_compress",
                      overrides=["env=demo", "encoder.pretrained=false", "encoder.num_layers=1", "img_size=28",
                                 f"num_hist={num_hist}", "frameskip=2"])
    torch.manual_seed(0)
    model = world_model_from_cfg(cfg, proprio_dim=5, state_dim=6, action_dim=7).eval()
    with torch.no_grad():  # fresh models may zero-init output layers: make every part matter
        for name, p in model.named_parameters():
            if not name.startswith("encoder."):
                p.add_(0.2 * torch.randn_like(p))
    return model


@torch.no_grad()
def test_latent_rollout_matches_model_rollout_and_chunking():
    model = _tiny_model()
    b, t0, h = 3, 2, 4
    obs = {"visual": torch.rand(b, t0, 3, 28, 28), "proprio": torch.randn(b, t0, 5)}
    act = torch.randn(b, t0 - 1 + h, 14)
    ref = model.rollout(obs, act)
    torch.testing.assert_close(model.rollout_latents(model.encode_obs(obs), act), ref)
    pred = rollout_predictions(model, obs, act[:, : t0 - 1], act[:, t0 - 1:], z_obs=model.encode_obs(obs))
    torch.testing.assert_close(pred, ref[:, t0:])
    assert pred.shape[1] == h

    ctx = PlanContext(obs_0=obs, past_actions=act[:, : t0 - 1], z_goal=ref[:, -1:], horizon=h,
                      generators=[torch.Generator() for _ in range(b)], action_low=-torch.ones(14),
                      action_high=torch.ones(14))
    assert encode_context(model, ctx).shape == ref[:, :t0].shape
    cands = torch.randn(b, 5, h, 14)
    cands[:, 2] = act[:, t0 - 1:]  # candidate 2 of each episode is the goal's own action sequence
    obj = LatentGoalObjective()
    big = evaluate_candidates(model, obj, ctx, cands, chunk_size=1000)
    small = evaluate_candidates(model, obj, ctx, cands, chunk_size=4)
    torch.testing.assert_close(big, small)
    assert torch.all(big[:, 2] < 1e-8)  # reaching the goal latent exactly costs 0
    assert torch.all(big.std(dim=1) > 0)


@torch.no_grad()
def test_rollouts_run_in_fp32_on_cpu_and_return_fp32_latents():
    model = _tiny_model(num_hist=1)
    obs = {"visual": torch.rand(2, 1, 3, 28, 28), "proprio": torch.randn(2, 1, 5)}
    act = torch.randn(2, 3, 14)
    pred = rollout_predictions(model, obs, act[:, :0], act)  # encodes the observation itself
    assert pred.dtype == torch.float32
    torch.testing.assert_close(pred, model.rollout(obs, act)[:, 1:], rtol=0, atol=0)  # no autocast on a CPU


def test_autocast_is_bf16_on_cuda_only(monkeypatch):
    assert rollout_dtype("cpu") is None and rollout_dtype(torch.device("cpu")) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: not including_emulation)
    assert rollout_dtype("cuda:0") is torch.bfloat16
    with pytest.warns(UserWarning, match="CUDA is not available"):  # torch's warning on a CPU-only machine
        ctx = rollout_autocast("cuda")
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16 and ctx.device == "cuda"
    assert not ctx._cache_enabled  # no cast-weight cache across a recorded CUDA graph
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert rollout_dtype("cuda:0") is None  # emulated bf16 (pre-Ampere GPUs) is slower than fp32


def test_the_trained_model_satisfies_the_planning_world_model_protocol():
    from planning.planners.protocol import WorldModel
    from planning.planners.rollout import supports_latent_rollout

    model = _tiny_model()
    assert isinstance(model, WorldModel) and supports_latent_rollout(model)
    assert not isinstance(object(), WorldModel)
