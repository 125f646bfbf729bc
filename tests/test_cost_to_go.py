"""The learned cost-to-go: its model, its three kinds of training pairs, and planning with it."""

from __future__ import annotations

import pytest
import torch

from models.cost_to_go import CostToGo, CostToGoConfig, load_cost_to_go, save_cost_to_go
from training.cost_to_go import Trajectories, evaluate, sample_pairs, train_cost_to_go

FS = 2


def _trajectories(n_demos: int = 6, length: int = 12, seed: int = 0) -> Trajectories:
    """Demonstrations whose latent holds their scene (2 dims) and their progress t / length; one branch per demo,
    from frame 3, whose latent is flagged off the demonstrated path (dim 3) and does not progress."""
    g = torch.Generator().manual_seed(seed)
    zs, episode, t, start, lengths, branches, row = [], [], [], {}, {}, {}, 0
    scenes = torch.rand(n_demos, 2, generator=g) * 4
    for e in range(2 * n_demos):
        demo = e < n_demos
        src = e if demo else e - n_demos
        n = length if demo else 6
        tt = torch.arange(n).float()
        prog = tt / length if demo else torch.full((n,), 3 / length)
        flag = torch.zeros(n) if demo else (tt > 0).float()
        z = torch.stack([scenes[src, 0].expand(n), scenes[src, 1].expand(n), prog * 4, flag * 2], dim=-1)
        zs.append(z[:, None, :])  # [n, P=1, D=4]
        episode.append(torch.full((n,), e)), t.append(torch.arange(n))
        start[e], lengths[e] = row, n
        row += n
        if not demo:
            branches[e] = (src, 3)
    return Trajectories(z=torch.cat(zs), episode=torch.cat(episode), t=torch.cat(t), start=start, length=lengths,
                        branches=branches)


def test_pairs_are_of_the_right_kinds():
    tr = _trajectories()
    pairs = sample_pairs(tr, 200, FS, torch.Generator().manual_seed(0))
    i, j, steps = pairs["along"]
    assert torch.equal(tr.episode[i], tr.episode[j]) and torch.all(j >= i) and torch.all(tr.episode[i] < 6)
    torch.testing.assert_close(steps, (tr.t[j] - tr.t[i]).float() / FS)
    i, g = pairs["other"]
    assert torch.all(tr.episode[i] != tr.episode[g]) and torch.all(tr.episode[g] < 6)
    i, g, low = pairs["branch"]
    assert torch.all(tr.episode[i] >= 6) and torch.all(tr.episode[g] == tr.episode[i] - 6)
    assert torch.all(tr.t[i] >= 1) and torch.all(tr.t[g] >= 3)
    torch.testing.assert_close(low, (tr.t[g] - 3 + tr.t[i]).float() / FS)


def test_it_learns_the_steps_along_demonstrations_and_ranks_other_scenes_and_branches_far():
    tr = _trajectories()
    cfg = CostToGoConfig(n_patches=1, latent_dim=4, far=12.0, hidden=64)
    model = train_cost_to_go(tr, cfg, FS, steps=1500, batch_size=128, input_noise=0.0, log_every=10_000)
    stats = evaluate(model, tr, FS)
    assert stats["mae_steps"] < 0.8 and stats["other_scene_mean"] > 0.8 * cfg.far, stats
    assert stats["branch_below_bound"] < 0.2, stats
    demo_goal = tr.z[tr.start[0] + 11]
    on_path, off_path = tr.z[tr.start[0] + 4], tr.z[tr.start[6] + 3]  # same progress (4 / 12 vs 3 / 12), branch flagged
    assert model(off_path, demo_goal) > model(on_path, demo_goal) + 1.0


def test_save_and_load_round_trip_and_a_damaged_file_is_one_line(tmp_path):
    model = CostToGo(CostToGoConfig(n_patches=3, latent_dim=4, far=9.0)).eval()
    save_cost_to_go(model, tmp_path / "ctg", {"steps": 1})
    back = load_cost_to_go(tmp_path / "ctg")
    z, goal = torch.randn(5, 3, 4), torch.randn(5, 3, 4)
    torch.testing.assert_close(back(z, goal), model(z, goal))
    assert model(z, goal).shape == (5,) and torch.all(model(z, goal) >= 0)
    (tmp_path / "ctg" / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(ValueError, match="does not hold this cost-to-go's weights") as exc:
        load_cost_to_go(tmp_path / "ctg")
    assert "\n" not in str(exc.value)
    with pytest.raises(FileNotFoundError):
        load_cost_to_go(tmp_path / "none")
