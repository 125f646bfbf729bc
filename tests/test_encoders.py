"""Proprio / action encoders embed each time step on its own: [B, T, in] -> [B, T, emb]."""

import pytest
import torch

from models.encoders import ActionEncoder, ProprioEncoder


@pytest.mark.parametrize("cls", [ProprioEncoder, ActionEncoder])
def test_each_time_step_is_embedded_on_its_own(cls):
    torch.manual_seed(0)
    enc = cls(in_dim=6, emb_dim=4)
    x = torch.randn(2, 5, 6)
    out = enc(x)
    assert out.shape == (2, 5, 4) and (enc.in_dim, enc.emb_dim) == (6, 4)
    y = x.clone()
    y[:, 2] += 1.0  # change one step
    changed = (enc(y) - out).abs().sum(-1)
    assert (changed[:, 2] > 0).all() and changed[:, [0, 1, 3, 4]].max() == 0


def test_action_chunks_of_frameskip_steps_need_the_matching_width():
    enc = ActionEncoder(in_dim=7 * 5, emb_dim=16)  # 7-D env actions, frameskip 5, concatenated
    assert enc(torch.zeros(1, 3, 35)).shape == (1, 3, 16)
    with pytest.raises(RuntimeError):
        enc(torch.zeros(1, 3, 7))
