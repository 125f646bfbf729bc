"""Step losses summed on the device; one host read per flush; non-finite losses counted."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator
from torch.utils._python_dispatch import TorchDispatchMode

from training.loop.loss_meter import LossMeter


@pytest.fixture(scope="module")
def accelerator():
    return Accelerator(cpu=True)


def test_means_since_the_last_flush(accelerator):
    m = LossMeter()
    assert m.flush(accelerator) == {}
    for v in (1.0, 2.0, 6.0):
        m.add({"loss": torch.tensor(v), "pred_loss": torch.tensor(v / 2, dtype=torch.bfloat16)})
    assert m.flush(accelerator) == {"loss": 3.0, "pred_loss": 1.5, "nonfinite": 0.0}
    m.add({"loss": torch.tensor(4.0), "pred_loss": torch.tensor(0.0)})
    assert m.flush(accelerator)["loss"] == 4.0  # the sums restart after a flush


def test_non_finite_losses_are_counted(accelerator):
    m = LossMeter()
    for v in (1.0, float("nan"), float("inf"), 2.0):
        m.add({"loss": torch.tensor(v)})
    assert m.flush(accelerator)["nonfinite"] == 2.0
    m.add({"loss": torch.tensor(1.0)})
    assert m.flush(accelerator)["nonfinite"] == 0.0


class HostReads(TorchDispatchMode):
    """Records every op that copies a tensor's value to Python (``item``, ``bool``, ``float``, ``int``)."""

    def __init__(self):
        super().__init__()
        self.reads = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.reads.append(func)
        return func(*args, **(kwargs or {}))


def test_add_does_not_read_the_device(accelerator, monkeypatch):
    m = LossMeter()
    calls = []
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: calls.append(2) or [])
    with HostReads() as mode:
        m.add({"loss": torch.tensor(1.0, requires_grad=True) * 2, "pred_loss": torch.tensor(0.5)})
        m.add({"loss": torch.tensor(float("nan")), "pred_loss": torch.tensor(0.5)})
        assert not mode.reads and not calls
        bool(m.sums[-1])  # what the mode catches: a read of the value, as a host sync would be
        assert mode.reads
