"""benchmarks/rollout_error.py on the tiny trained run: the curves' anchors, the table, the JSON and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmarks.rollout_error import RolloutErrorError, demo_curves, main, measure
from datasets.robomimic_dset import RobomimicEpisodes
from training.run_dir.run_loading import load_world_model


def test_curves_start_at_the_encoded_start_and_end_at_the_goal(tiny_trained_run):
    res = measure(tiny_trained_run, goal_h=3, split="train")
    assert res["n_demonstrations"] >= 1 and res["steps"] == [0, 1, 2, 3]
    assert res["true"][-1] == 0.0  # the goal against itself
    assert res["error"][0] == 0.0 and res["predicted"][0] == pytest.approx(res["true"][0])  # step 0 is not predicted
    assert res["demo_predicted_cost"] == res["predicted"][-1] > 0.0
    assert all(e > 0 for e in res["error"][1:])  # a two-epoch model does not predict exactly


def test_the_demonstrations_cost_is_the_planners_objective_on_its_rollout(tiny_trained_run):
    """The last 'predicted' value is the latent cost of the model's rollout of the demonstration's actions: the one
    the ranking diagnostic reads (LatentGoalObjective on rollout_latents), recomputed here independently."""
    from planning.objectives import LatentGoalObjective

    run = load_world_model(tiny_trained_run)
    data = RobomimicEpisodes(run.dataset_path)
    e, fs, h = run.split["train"][0], run.model.frameskip, 2
    curves = demo_curves(run.model, run.normalizer, data, e, h, torch.device("cpu"))
    last = data.seq_len(e) - 1
    ts = [last - fs * k for k in range(h, -1, -1)]
    frames = torch.as_tensor(data.frames(e)[ts]).permute(0, 3, 1, 2).float()[None] / 255.0
    with torch.no_grad():
        z = run.model.encode_obs({"visual": frames, "proprio": run.normalizer.normalize_proprio(data.proprios[e, ts])[None]})
        acts = run.normalizer.normalize_action(torch.stack([data.actions[e, t:t + fs].reshape(-1) for t in ts[:-1]]))
        zp = run.model.rollout_latents(z[:, :1], acts[None])
        want = LatentGoalObjective()(zp, z[:, -1:]).item()
    assert curves["predicted"][-1] == pytest.approx(want, rel=1e-4)
    assert np.all(np.isfinite(curves["true"])) and curves["true"].shape == (h + 1,)


def test_cli_prints_the_table_and_writes_json(tiny_trained_run, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main([str(tiny_trained_run), "--goal-h", "2", "--split", "train", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "rollout error" in text and "first_reference_cost" in text
    assert json.loads(out.read_text())["goal_H"] == 2


def test_bad_input_is_one_line_and_writes_nothing(tiny_trained_run, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main([str(tiny_trained_run), "--goal-h", "500", "--split", "train", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no train demonstration") and err.count("\n") == 1 and not out.exists()
    assert main([str(tmp_path), "--json", str(out)]) == 2
    assert "cannot load" in capsys.readouterr().err and not out.exists()
    assert main([str(tiny_trained_run), "--split", "nope"]) == 2
    with pytest.raises(RolloutErrorError, match="goal-h must be >= 1"):
        measure(tiny_trained_run, goal_h=0)


def test_object_readout_rows_read_the_true_position_in_centimetres(tiny_trained_run, capsys):
    """A run with a state readout gets the object rows: the rise is the true height above the start (0 at step 0, in
    cm from the dataset's states) and the readout error is the distance of the rollout's read position from it."""
    run = load_world_model(tiny_trained_run)
    assert run.model.reads_state
    data = RobomimicEpisodes(run.dataset_path)
    e, fs, h = run.split["train"][0], run.model.frameskip, 2
    curves = demo_curves(run.model, run.normalizer, data, e, h, torch.device("cpu"))
    last = data.seq_len(e) - 1
    ts = [last - fs * k for k in range(h, -1, -1)]
    z_true = data.states[e, ts, 2].numpy()
    np.testing.assert_allclose(curves["object_rise_cm"], 100 * (z_true - z_true[0]), atol=1e-4)
    assert curves["object_readout_error_cm"].shape == (h + 1,) and np.all(curves["object_readout_error_cm"] >= 0)
    assert main([str(tiny_trained_run), "--goal-h", "2", "--split", "train"]) == 0
    assert "object readout error (cm)" in capsys.readouterr().out
