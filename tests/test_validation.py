"""training.loop.validation: every validation window counted once, whatever the process count; the mean over windows.

The windows are served as training serves them: a ``BatchSource`` of ``WindowTables`` and ``validation_batches``."""

from __future__ import annotations

import pytest
import torch
from _windows import MeanModel
from accelerate import Accelerator

from training.loop.batches import BatchSource, WindowTables, epoch_indices, validation_batches
from training.loop.validation import validate


def _source(n: int, batch_size: int, placement: str = "device") -> BatchSource:
    """``n`` one-frame windows, one per episode; window ``i``'s proprio (and state) is the value ``i``."""
    values = torch.arange(n, dtype=torch.float32)[:, None, None]  # [N, T_max = 1, 1]
    tables = WindowTables(episode=torch.arange(n), start=torch.zeros(n, dtype=torch.long),
                          seq_len=torch.ones(n, dtype=torch.long), proprio=values, state=values,
                          action=torch.zeros(n, 1, 7), num_frames=1, frameskip=1)
    return BatchSource(tables, torch.device("cpu"), placement, batch_size)


def _values(batches) -> list[int]:
    return [int(v) for b in batches for v in b["proprio"].flatten()]


@pytest.mark.parametrize("n", [7, 8, 1])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_validation_covers_every_window_once_whatever_the_process_count(n, world):
    seen = [v for rank in range(world) for v in _values(validation_batches(_source(n, 2), rank, world))]
    assert sorted(seen) == list(range(n))
    if n % world:  # what the training sharding does (equal shares for DDP) would drop or repeat windows
        train_seen = [int(i) for rank in range(world) for i in epoch_indices(n, 0, 0, rank, world, False)]
        assert sorted(train_seen) != list(range(n))


@pytest.mark.parametrize("placement", ["device", "host"])
def test_validate_is_the_mean_over_windows_not_over_batches(placement):
    batches = validation_batches(_source(7, 3, placement), 0, 1)  # batches of 3, 3, 1
    assert [len(b["proprio"]) for b in batches] == [3, 3, 1]
    metrics = validate(MeanModel(), batches, Accelerator(cpu=True))
    assert metrics["val/loss"] == pytest.approx(3.0)            # mean of 0..6 (the mean of batch means: 3.67)
    assert metrics["val/pred_loss"] == pytest.approx(sum(i * i for i in range(7)) / 7)
