"""The rollout readout: its start frames, its fit (a bias of the rollouts learned, real frames still read), its files,
and planning with it (objective.state_readout=rollout)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from models.alignment import StateReadout
from models.rollout_readout import LatentStateReader, load_rollout_readout, save_rollout_readout
from training.rollout_readout import ReadoutPairs, fit_readout, start_frames

P, A, S = 3, 3, 4  # patches, aligned dims per patch (2 hold the state, 1 how far ahead it was predicted)


def test_start_frames_are_a_planning_step_apart_and_evenly_spread():
    assert start_frames(12, 5, 6) == [0, 5]  # frame 10 has no planning step after it inside 12 frames
    assert start_frames(46, 5, 3) == [0, 20, 40]
    assert start_frames(46, 5, 20) == list(range(0, 41, 5))
    assert start_frames(5, 5, 6) == []


def _pairs(n: int = 600, seed: int = 0) -> tuple[ReadoutPairs, torch.Tensor]:
    """Latents whose first 2 aligned dims hold the state linearly; predicted ones (steps > 0) overstate state dim 0 by
    0.5 per step ahead (the model believes it went further than it did) and, as predictions do, look unlike encoded
    frames (the third aligned dim grows with the steps ahead); encoded ones (steps 0) hold the state exactly."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(P * 2, S, generator=g)
    state = torch.randn(n, S, generator=g)
    steps = torch.randint(0, 4, (n,), generator=g)
    believed = state.clone()
    believed[:, 0] += 0.5 * steps
    held = (believed @ torch.linalg.pinv(mix)).reshape(n, P, 2)
    z = torch.cat([held, 0.3 * steps.float()[:, None, None].expand(n, P, 1)], dim=-1)
    return ReadoutPairs(z=z, state=state, steps=steps), mix


def test_the_fit_learns_what_the_rollouts_overstate_and_still_reads_real_frames():
    pairs, mix = _pairs()
    start = StateReadout(A, S, P)
    with torch.no_grad():  # the run's own readout: exact on encoded frames, blind to the rollouts' bias
        start.linear.weight.zero_()
        start.linear.weight.view(S, P, A)[..., :2].copy_(mix.T.reshape(S, P, 2))
        start.linear.bias.zero_()
    rollouts, frames = pairs.rollouts(), pairs.frames()

    def err(readout, part):
        with torch.no_grad():
            return torch.nn.functional.mse_loss(readout(part.z), part.state).item()

    assert err(start, frames) < 1e-6 and err(start, rollouts) > 0.2
    fitted = fit_readout(start, pairs, steps=300, batch_size=128, lr=1e-2, log_every=0)
    assert err(fitted, rollouts) < 0.01 * err(start, rollouts)  # it reads where a rollout truly ends
    assert err(fitted, frames) < 0.01 * err(start, rollouts)
    assert start.linear.bias.abs().max() == 0  # the run's own readout is left as it was
    with pytest.raises(ValueError, match="no rollout fits"):
        fit_readout(start, pairs.frames(), steps=1)


def test_files_round_trip_and_damage_is_one_line(tmp_path):
    readout = StateReadout(A, S, P)
    save_rollout_readout(readout, tmp_path / "rr", {"world_model_checkpoint": "step_00000010"})
    reader = load_rollout_readout(tmp_path / "rr")
    assert isinstance(reader, LatentStateReader) and not reader.training
    z = torch.randn(5, P, A + 3)  # the reader takes full latents and reads their aligned dims
    torch.testing.assert_close(reader(z), readout(z[..., :A]))
    assert json.loads((tmp_path / "rr" / "config.json").read_text())["world_model_checkpoint"] == "step_00000010"
    with pytest.raises(FileNotFoundError, match="holds no rollout readout"):
        load_rollout_readout(tmp_path / "none")
    (tmp_path / "rr" / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ValueError, match="does not hold this rollout readout's weights") as exc:
        load_rollout_readout(tmp_path / "rr")
    assert "\n" not in str(exc.value)


def test_fit_on_a_run_then_plan_with_it(tiny_trained_run, tmp_path):
    """On a tiny trained run: training fitted one (a rerun keeps it); the CLI writes RUN/rollout_readout with held-out figures of both readouts; plan.py scores
    the later re-plans with it and names it; asking for it on a run without one, or an unknown readout, is one line."""
    import plan
    from tests.conftest import run_cli
    from tests.test_plan import SMALL_CEM, plan_inprocess
    from training.rollout_readout import fit_after_training

    fitted = tiny_trained_run / "rollout_readout" / "config.json"
    assert fitted.is_file()  # fitted after training (rollout_readout.train, the default)
    run = tmp_path / "run"
    shutil.copytree(tiny_trained_run, run)
    stamp = (run / "rollout_readout" / "model.safetensors").stat().st_mtime_ns
    steps = json.loads(fitted.read_text())["steps"]
    assert fit_after_training(run, steps, 9, 6, "cpu") == run / "rollout_readout"  # kept: fitted on the latest
    assert (run / "rollout_readout" / "model.safetensors").stat().st_mtime_ns == stamp
    fit_after_training(run, steps, 4, 6, "cpu")  # other rollouts (horizon 4): fitted again
    assert json.loads((run / "rollout_readout" / "config.json").read_text())["horizon"] == 4
    shutil.rmtree(run / "rollout_readout")
    later = ["mpc.n_taken_actions=[3,1,1]", "mpc.later_objective.state_weight=0.1",
             "mpc.later_objective.state_readout=rollout", "n_evals=1", "outputs.videos=false", "outputs.plots=false",
             "wandb.mode=disabled"]
    with pytest.raises(plan.PlanError, match="objective.state_readout=rollout: .* holds no rollout readout") as exc:
        plan_inprocess(run, tmp_path / "o1", [*SMALL_CEM, *later])
    assert "\n" not in str(exc.value) and not (tmp_path / "o1" / "summary.json").exists()
    proc = run_cli(["-m", "training.rollout_readout", str(run), "--horizon", "3", "--max-starts", "2", "--steps", "20"])
    assert "rollout_mse_refit" in proc.stdout
    saved = json.loads((run / "rollout_readout" / "config.json").read_text())
    assert {"rollout_mse_model", "rollout_mse_refit", "frame_mse_refit"} <= set(saved["held_out"])
    assert saved["horizon"] == 3 and saved["world_model_checkpoint"].startswith("step_")
    summary = plan_inprocess(run, tmp_path / "o2", [*SMALL_CEM, *later])
    assert summary["planner_settings"]["later_objective"]["state_readout"] == "rollout"
    assert summary["planner_settings"]["objective"]["state_readout"] == "model"
    assert summary["rollout_readout"]["path"] == str((run / "rollout_readout").resolve())
    with pytest.raises(plan.PlanError, match="state_readout='mine' is not one of model"):
        plan_inprocess(run, tmp_path / "o3", [*SMALL_CEM, "objective.state_readout=mine"])
