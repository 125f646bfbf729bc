"""VWorldModel: shapes through encode / predict / rollout, gradients, saved parameters."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from training.model_config import world_model_from_cfg

CFG = OmegaConf.create({
    "projected_dim": 16, "alignment_dim": 4, "action_emb_dim": 8, "proprio_emb_dim": 8, "num_hist": 3,
    "num_pred": 1, "frameskip": 2, "img_size": 28,
    "encoder": {"pretrained": False, "weights_path": None, "seed": 0, "feature_key": "x_norm_patchtokens",
                "num_layers": 1},
    "predictor": {"depth": 1, "heads": 4, "mlp_ratio": 2.0, "dropout": 0.0},
    "model": {"projection_hidden": 32, "align_weight": 1.0, "init_temperature": 0.1, "dyn_weight": 0.5,
              "decoder": True, "decoder_weight": 1.0, "target_stop_grad": True},
    "training": {"grad_checkpointing": False},
})
B, PD, SD = 2, 5, 6


def make(cfg=CFG, **over):
    torch.manual_seed(0)
    c = OmegaConf.merge(cfg, OmegaConf.create(over))
    return world_model_from_cfg(c, proprio_dim=PD, state_dim=SD, action_dim=7)


@torch.no_grad()
def rollout_model(num_hist: int):
    """A 2-block model in eval mode whose learned weights are perturbed, as after training (the
    zero-initialised head would hide rollout errors)."""
    m = make(num_hist=num_hist, predictor={"depth": 2, "heads": 2}).eval()
    torch.manual_seed(1)
    for name, p in m.named_parameters():
        if not name.startswith("encoder."):
            p.add_(0.2 * torch.randn_like(p))
    return m


def batch(model, t=4, visual=True):
    b = {"proprio": torch.randn(B, t, PD), "action": torch.randn(B, t, 7 * model.frameskip),
         "state": torch.randn(B, t, SD)}
    if visual:
        b["visual"] = torch.rand(B, t, 3, 32, 32)
    else:
        b["features"] = torch.randn(B, t, 4, 384)
    return b


def test_contract_attributes_and_shapes():
    m = make()
    assert (m.num_hist, m.frameskip, m.action_dim, m.projected_dim, m.alignment_dim, m.proprio_dim, m.img_size) \
        == (3, 2, 7, 16, 4, PD, 28)
    b = batch(m)
    z_obs = m.encode_obs(b)
    assert z_obs.shape == (B, 4, 4, 16)
    z = m.encode(b, b["action"])
    assert z.shape == (B, 4, 4, 24)
    assert m.predict(z[:, :3]).shape == (B, 3, 4, 16)
    feats = m.encoder(b["visual"].flatten(0, 1)).unflatten(0, (B, 4))
    torch.testing.assert_close(m.encode_obs({"features": feats, "proprio": b["proprio"]}), z_obs)
    assert m.decode(z_obs).shape == (B, 4, 3, 28, 28)
    assert not make(model={"decoder": False}).has_decoder


def test_rollout_semantics():
    m = rollout_model(num_hist=3)  # perturbed weights: predictions depend on the window and the actions
    b = batch(m, t=2)
    act = torch.randn(B, 2 + 3, 14)
    obs0 = {"visual": b["visual"], "proprio": b["proprio"]}
    out = m.rollout(obs0, act)
    assert out.shape == (B, 2 + 3 + 1, 4, 16)
    torch.testing.assert_close(out[:, :2], m.encode_obs(obs0))
    first = m.predict(m.replace_actions_from_z(out[:, :2], act[:, :2]))[:, -1]
    torch.testing.assert_close(out[:, 2], first)
    last = m.predict(m.replace_actions_from_z(out[:, 2:5], act[:, 2:5]))[:, -1]  # window of num_hist=3
    torch.testing.assert_close(out[:, 5], last)
    other = act.clone()
    other[:, 3] += 1.0  # the action that leads to frame 4 only: frames up to 3 stay, 4 and 5 change
    out2 = m.rollout(obs0, other)
    torch.testing.assert_close(out2[:, :4], out[:, :4])
    assert (out2[:, 4:] - out[:, 4:]).abs().amax(dim=(0, 2, 3)).min() > 1e-4
    z = m.replace_actions_from_z(torch.randn(B, 2, 4, 24), act[:, :2])
    torch.testing.assert_close(z[..., 16:], m.encode_act(act[:, :2])[:, :, None].expand(-1, -1, 4, -1))


def test_gradients_reach_every_learned_part_and_never_the_encoder():
    m = make().train()
    torch.nn.init.normal_(m.predictor.head.weight, std=0.1)  # as after some training (it starts at zero)
    out = m(batch(m))
    assert set(out) >= {"loss", "pred_loss", "copy_loss", "align_loss", "dyn_loss", "decoder_loss"}
    out["loss"].backward()
    for name in ("projection", "predictor", "action_encoder", "proprio_encoder", "alignment", "state_readout",
                 "decoder"):
        grads = [p.grad for p in getattr(m, name).parameters()]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert any(g.abs().sum() > 0 for g in grads), name
    assert m.alignment.log_temperature.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in m.encoder.parameters())
    assert not out["copy_loss"].requires_grad


def test_every_trainable_parameter_is_in_the_checkpoint_state():
    m = make()
    sd = m.trainable_state_dict()
    names = {n for n, p in m.named_parameters() if p.requires_grad}
    assert names and names <= set(sd)
    assert not any(k.startswith("encoder.") for k in sd)


def test_prediction_targets_are_the_next_frames():
    """With a predictor that copies its input, pred_loss equals the copy-last-frame baseline."""
    m = make(model={"decoder": False, "dyn_weight": 0.0})
    m.predict = lambda z: z[..., : m.projected_dim]
    out = m(batch(m, visual=False))
    torch.testing.assert_close(out["pred_loss"], out["copy_loss"])


@pytest.mark.parametrize("num_pred", [2, 3])
def test_multi_step_prediction_rolls_out_on_its_own_predictions(num_pred):
    """With a predictor that copies its input, step k > 1 predicts from predicted frames (open loop): every
    later prediction is the last observed frame, and pred_loss is the mean over the num_pred steps."""
    m = make(num_pred=num_pred, model={"decoder": False, "dyn_weight": 0.0})
    m.predict = lambda z: z[..., : m.projected_dim]
    b = batch(m, t=3 + num_pred, visual=False)
    out = m(b)
    z = m.encode_obs(b)  # [B, 3 + num_pred, P, 16]
    h = m.num_hist
    first = F.mse_loss(z[:, :h], z[:, 1:h + 1])  # teacher-forced step: frames 1..h from 0..h-1
    later = [F.mse_loss(z[:, h - 1], z[:, h + k]) for k in range(1, num_pred)]  # open loop: frame h-1 copied on
    torch.testing.assert_close(out["pred_loss"], (first + sum(later)) / num_pred)
    torch.testing.assert_close(out["loss"], out["pred_loss"] + m.align_weight * out["align_loss"])


def reference_rollout(m, z_obs, act):
    """The plain DINO-WM rollout: the last num_hist frames through the full predictor at every step."""
    frames = list(z_obs.unbind(1))
    for t in range(z_obs.shape[1], act.shape[1] + 1):
        lo = max(0, t - m.num_hist)
        frames.append(m.predict(m.replace_actions_from_z(torch.stack(frames[lo:t], 1), act[:, lo:t]))[:, -1])
    return torch.stack(frames, 1)


@pytest.mark.parametrize("num_hist,t0", [(1, 1), (3, 1), (3, 2), (3, 3), (3, 4), (4, 2)])
@torch.no_grad()
def test_rollout_with_key_value_cache_equals_the_full_window_rollout(num_hist, t0):
    m = rollout_model(num_hist)
    z_obs, act = torch.randn(B, t0, 4, 16), torch.randn(B, t0 + 5, 14)  # 6 predicted frames: the window slides
    fed = []
    real = m.predictor.forward
    m.predictor.forward = lambda z, cache=None, **kw: fed.append((z.shape[1], cache is not None)) or real(z, cache, **kw)
    out = m.rollout_latents(z_obs, act)
    del m.predictor.forward
    torch.testing.assert_close(out, reference_rollout(m, z_obs, act), atol=1e-5, rtol=1e-5)
    # while the window grows only the new frame is fed (the others' keys / values are cached); after it, all of it
    grow = max(0, num_hist - t0 + 1) if 1 < num_hist and t0 <= num_hist else 0  # one frame: nothing to reuse
    expect = [(t0, True)] + [(1, True)] * (grow - 1) if grow else []
    expect += [(min(num_hist, t), False) for t in range(t0 + grow, t0 + 6)]
    assert fed == expect


@torch.no_grad()
def test_runs_saved_with_another_head_layout_load_with_their_own(tmp_path, caplog):
    """Heads change no parameter shape: a run keeps the heads of its saved config (here 4 heads of 6,
    a layout fused kernels cannot take), whatever the shipped predictor configs say now."""
    from test_checkpoint import make_run

    from training.run_dir.run_loading import load_world_model

    _, model = make_run(tmp_path)
    with caplog.at_level("WARNING"):
        run = load_world_model(tmp_path)
    assert run.model.predictor.blocks[0].attn.heads == 4 and "head dim 6" in caplog.text
    obs = {"features": torch.randn(2, 1, 4, 384), "proprio": torch.randn(2, 1, 5)}
    act = torch.randn(2, 4, 14)
    torch.testing.assert_close(run.model.rollout(obs, act), model.eval().rollout(obs, act), rtol=0, atol=0)


def test_cached_rollout_stays_differentiable():
    """Gradient-based planners may differentiate through rollouts (cache and in-place buffer included)."""
    m = make(num_hist=3).eval()
    torch.nn.init.normal_(m.predictor.head.weight)
    z, act = torch.randn(B, 1, 4, 16, requires_grad=True), torch.randn(B, 6, 14, requires_grad=True)
    m.rollout_latents(z, act)[:, -1].sum().backward()
    assert z.grad.abs().sum() > 0 and act.grad[:, 0].abs().sum() > 0 and m.predictor.head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("num_hist,t0", [(1, 1), (3, 1), (3, 4)])
@torch.no_grad()
def test_compiled_rollouts_equal_eager_rollouts_without_a_cache(num_hist, t0):
    """``compile_for_rollouts`` (here with dynamo's eager backend: the tracing, guards and graph breaks, not
    the code generation) gives the eager rollout; the window is fed whole (no cache: a compiled graph's
    outputs may be overwritten by its next replay); parameters and state_dict keys are unchanged."""
    m = rollout_model(num_hist)
    z_obs, act = torch.randn(B, t0, 4, 16), torch.randn(B, t0 + 4, 14)
    expected, keys = m.rollout_latents(z_obs, act), list(m.state_dict())
    torch._dynamo.reset()
    m.compile_for_rollouts(mode="default", backend="eager")
    fed = []
    real = m.predictor.forward
    m.predictor.forward = lambda z, cache=None, **kw: fed.append(cache is not None) or real(z, cache, **kw)
    out = m.rollout_latents(z_obs, act)
    del m.predictor.forward
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert fed and not any(fed) and list(m.state_dict()) == keys and m.rollout_compiled
    torch.testing.assert_close(m.rollout_latents(z_obs[:1], act[:1]), expected[:1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("num_hist,t0", [(1, 1), (3, 1)])
@torch.no_grad()
def test_rollouts_under_bf16_autocast_keep_a_bf16_residual_stream_and_fp32_latents(num_hist, t0):
    """Under autocast (planning on a GPU) the blocks pass bf16 between them, the rollout's latents stay
    fp32 and close to the fp32 rollout; without autocast (CPU planning, training) nothing changes."""
    m = rollout_model(num_hist)
    z_obs, act = torch.randn(B, t0, 4, 16), torch.randn(B, t0 + 4, 14)
    stream = []
    hook = m.predictor.blocks[1].register_forward_pre_hook(lambda mod, args: stream.append(args[0].dtype))
    fp32 = m.rollout_latents(z_obs, act)
    assert set(stream) == {torch.float32}
    stream.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = m.rollout_latents(z_obs, act)
    hook.remove()
    assert set(stream) == {torch.bfloat16} and bf16.dtype == torch.float32
    assert (bf16 - fp32).abs().max() < 0.05 * fp32.abs().max()
    # the training forward under autocast keeps its fp32 stream (its numerics do not change)
    z = m.replace_actions_from_z(torch.randn(B, num_hist, 4, 16), torch.randn(B, num_hist, 14))
    stream.clear()
    hook = m.predictor.blocks[1].register_forward_pre_hook(lambda mod, args: stream.append(args[0].dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m.predict(z)
    hook.remove()
    assert set(stream) == {torch.float32}


def test_compiled_training_forward_keeps_the_frozen_encoder_eager():
    """Under torch.compile the frozen encoder runs outside the graph (``torch.compiler.disable``): the
    losses equal the eager ones, with frames (re-encoded) as with cached features."""
    m = make()
    torch.manual_seed(2)
    data = batch(m)
    eager = m(data)
    torch._dynamo.reset()
    graphs = []

    def recording_backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    out = torch.compile(m, backend=recording_backend)(data)
    traced = " ".join(str(n.target) + " " + n.name for g in graphs for n in g.graph.nodes)
    assert graphs and "predictor" in traced and "modules_encoder_" not in traced
    for k in eager:
        torch.testing.assert_close(out[k], eager[k], atol=1e-5, rtol=1e-5)
