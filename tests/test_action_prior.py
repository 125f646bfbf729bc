"""The goal-conditioned action prior: the module, its files, and its training on hindsight goals."""

from __future__ import annotations

import json

import pytest
import torch

from models.action_prior import ActionPrior, ActionPriorConfig, load_action_prior, save_action_prior
from training.action_prior import PriorData, encode_episodes, fit_run_prior, prior_loss, train_prior

P, D, A = 3, 4, 6


def test_prior_maps_latent_goal_and_steps_to_one_chunk():
    prior = ActionPrior(ActionPriorConfig(n_patches=P, latent_dim=D, action_dim=A, max_steps=5))
    z, zg = torch.randn(2, P, D), torch.randn(2, P, D)
    out = prior(z, zg, torch.tensor([1, 5]))
    assert out.shape == (2, A)
    # the goal and the steps left are read (a different goal or step count gives a different chunk)
    assert not torch.allclose(out, prior(z, zg + 1, torch.tensor([1, 5])))
    assert not torch.allclose(out, prior(z, zg, torch.tensor([2, 4])))


def test_save_and_load_give_the_same_prior(tmp_path):
    prior = ActionPrior(ActionPriorConfig(n_patches=P, latent_dim=D, action_dim=A, max_steps=5))
    save_action_prior(prior, tmp_path / "p", {"losses": {"val_mse": 0.1}})
    again = load_action_prior(tmp_path / "p")
    z, zg, k = torch.randn(4, P, D), torch.randn(4, P, D), torch.tensor([1, 2, 3, 4])
    assert torch.equal(prior.eval()(z, zg, k), again(z, zg, k))
    assert json.loads((tmp_path / "p" / "config.json").read_text())["losses"]["val_mse"] == 0.1
    with pytest.raises(FileNotFoundError, match="no action prior"):
        load_action_prior(tmp_path / "missing")
    weights = (tmp_path / "p" / "model.safetensors").read_bytes()
    (tmp_path / "p" / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ValueError, match=r"model.safetensors does not hold this prior's weights: "):
        load_action_prior(tmp_path / "p")
    (tmp_path / "p" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config.json is not an action prior's config") as err:
        load_action_prior(tmp_path / "p")
    assert "\n" not in str(err.value)


def _toy_data(n_frames: int, seed: int) -> PriorData:
    """Chunks that a goal-conditioned policy can read off: a linear map of (z_goal - z) / k."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n_frames, P, D, generator=g)
    w = torch.randn(P * D, A, generator=torch.Generator().manual_seed(99)) / (P * D) ** 0.5
    i = torch.randint(n_frames, (n_frames * 4,), generator=g)
    goal = torch.randint(n_frames, (n_frames * 4,), generator=g)
    k = torch.randint(1, 4, (n_frames * 4,), generator=g)
    # one chunk per (frame, goal, k) row: store each row's frame as its own entry
    zz = torch.cat([z[i], z[goal]])
    chunks = torch.cat([((z[goal] - z[i]).flatten(1) @ w) / k[:, None], torch.zeros(len(i), A)])
    rows = torch.arange(len(i))
    return PriorData(z=zz, chunks=chunks, index=torch.stack([rows, rows + len(i), k], dim=1))


def test_training_fits_held_out_goal_conditioned_chunks():
    train, val = _toy_data(200, 0), _toy_data(50, 1)
    cfg = ActionPriorConfig(n_patches=P, latent_dim=D, action_dim=A, max_steps=3, hidden=64)
    with torch.no_grad():
        untrained = float(prior_loss(ActionPrior(cfg).eval(), val, torch.arange(len(val.index))))
    prior, stats = train_prior(train, val, cfg, steps=600, batch_size=128, input_noise=0.0)
    assert stats["val_mse"] < 0.25 * stats["val_mse_mean_action"], stats
    assert stats["val_mse"] < 0.25 * untrained


def test_hindsight_pairs_of_a_trained_run(tiny_trained_run, tmp_path):
    from datasets.robomimic_dset import RobomimicEpisodes
    from training.run_dir.run_loading import load_world_model

    run = load_world_model(tiny_trained_run)
    episodes = RobomimicEpisodes(run.dataset_path)
    fs, ids = run.model.frameskip, run.split["train"]
    data = encode_episodes(run, episodes, ids, max_steps=3)
    lengths = [episodes.seq_len(e) for e in ids]
    assert data.z.shape[0] == sum(lengths) and data.z.shape[2] == run.model.projected_dim
    starts = torch.tensor([0, *lengths]).cumsum(0)
    frame, goal, k = data.index.unbind(-1)
    episode_of = torch.bucketize(frame.contiguous(), starts[1:], right=True)
    # every goal is k planning steps (k * frameskip env steps) later, inside the same episode
    assert torch.equal(goal - frame, k * fs) and int(k.min()) >= 1 and int(k.max()) <= 3
    assert torch.all(goal < starts[1:][episode_of])
    # chunk t = the normalised env actions t .. t + fs - 1 of that episode
    e0 = ids[0]
    act = run.normalizer.normalize_action(episodes.actions[e0, :fs])
    assert torch.allclose(data.chunks[0], act.reshape(-1))


def test_training_writes_the_prior_and_refit_goes_where_told(tiny_trained_run, tmp_path):
    own = tiny_trained_run / "action_prior" / "model.safetensors"
    assert own.is_file()  # train_robomimic_compress.py fits it after the world model (action_prior.train)
    info = json.loads((own.parent / "config.json").read_text())
    assert info["steps"] == 50 and info["world_model_checkpoint"].startswith("step_")
    before = own.read_bytes()
    out, stats = fit_run_prior(tiny_trained_run, steps=20, max_steps=3, out=tmp_path / "prior")
    assert (out / "model.safetensors").is_file() and "val_mse" in stats
    assert own.read_bytes() == before  # the run's own prior is left alone when another output is given


def test_a_rerun_keeps_a_prior_fitted_on_the_latest_checkpoint_and_refits_otherwise(tiny_trained_run, tmp_path):
    import shutil

    from training.action_prior import fit_after_training

    run = tmp_path / "run"
    shutil.copytree(tiny_trained_run, run)
    own = run / "action_prior" / "model.safetensors"
    stamp = own.stat().st_mtime_ns
    assert fit_after_training(run, 50, "cpu") == own.parent and own.stat().st_mtime_ns == stamp  # kept
    fit_after_training(run, 20, "cpu")  # other steps: fitted again
    assert json.loads((own.parent / "config.json").read_text())["steps"] == 20


def test_planning_warns_when_the_prior_was_fitted_on_another_checkpoint(tiny_trained_run, tmp_path, caplog):
    import logging
    import shutil

    from plan_setup import load_prior

    own = tiny_trained_run / "action_prior"
    other = tmp_path / "prior_of_an_older_checkpoint"
    shutil.copytree(own, other)
    info = json.loads((other / "config.json").read_text())
    info["world_model_checkpoint"] = "step_00000001"
    (other / "config.json").write_text(json.dumps(info))
    with caplog.at_level(logging.WARNING, logger="plan"):
        prior, identity = load_prior("auto", tiny_trained_run, "cpu")  # fitted on the latest: no warning
        assert prior is not None and identity["path"] == str(own) and len(identity["sha256"]) == 64
        assert not [r for r in caplog.records if "fitted on checkpoint" in r.getMessage()]
        assert load_prior(str(other), tiny_trained_run, "cpu")[0] is not None
    latest = json.loads((own / "config.json").read_text())["world_model_checkpoint"]
    assert any(f"fitted on checkpoint step_00000001, planning uses {latest}" in r.getMessage() for r in caplog.records)
    assert load_prior(None, tiny_trained_run, "cpu") == (None, None)


def _refused(capsys, *argv) -> str:
    from training.action_prior import main

    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    return err


def test_the_command_refuses_what_cannot_give_a_prior_and_touches_nothing(tiny_trained_run, tmp_path, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("x")
    assert "other than an action prior" in _refused(capsys, tiny_trained_run, "--steps", 2, "--out", precious)
    hf_model = tmp_path / "hf_model"  # another model's config.json + model.safetensors: not replaced either
    hf_model.mkdir()
    (hf_model / "config.json").write_text('{"model_type": "dinov2"}')
    assert "other than an action prior" in _refused(capsys, tiny_trained_run, "--out", hf_model)
    assert (hf_model / "config.json").read_text() == '{"model_type": "dinov2"}'
    assert (precious / "notes.txt").read_text() == "x" and sorted(precious.iterdir()) == [precious / "notes.txt"]
    a_file = tmp_path / "a_file"
    a_file.write_text("y")
    assert "not a directory" in _refused(capsys, tiny_trained_run, "--out", a_file)
    assert a_file.read_text() == "y" and sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "hf_model", "precious"]
    assert ">= 1" in _refused(capsys, tiny_trained_run, "--steps", 0, "--out", tmp_path / "new")
    assert ">= 1" in _refused(capsys, tiny_trained_run, "--max-steps", 0, "--out", tmp_path / "new")
    assert not (tmp_path / "new").exists()
    no_ckpt = tmp_path / "no_ckpt"
    no_ckpt.mkdir()
    (no_ckpt / "run_info.json").write_text("{}")
    assert "no checkpoint" in _refused(capsys, no_ckpt)
    (no_ckpt / "run_info.json").write_text("{not json")
    assert "not readable JSON" in _refused(capsys, no_ckpt)
    assert not (no_ckpt / "action_prior").exists()
