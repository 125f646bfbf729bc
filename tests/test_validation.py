"""training.validation: every validation window counted once, whatever the process count; the mean over windows."""

from __future__ import annotations

import pytest
from _windows import MeanModel, Windows
from accelerate import Accelerator

from training.data import epoch_loader, validation_loader
from training.validation import validate


@pytest.mark.parametrize("n", [7, 8, 1])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_validation_covers_every_window_once_whatever_the_process_count(n, world):
    ds = Windows(n)
    seen = [int(b["x"][j]) for rank in range(world)
            for b in validation_loader(ds, 2, rank, world, 0) for j in range(len(b["x"]))]
    assert sorted(seen) == list(range(n))
    if n % world:  # what the training sharding does (equal shares for DDP) would drop or repeat windows
        train_seen = [int(i) for rank in range(world) for b in epoch_loader(ds, 2, 0, 0, rank, world, False, 0)
                      for i in b["x"].squeeze(-1)]
        assert sorted(train_seen) != list(range(n))


def test_validate_is_the_mean_over_windows_not_over_batches():
    acc = Accelerator(cpu=True)
    metrics = validate(MeanModel(), validation_loader(Windows(7), 3, 0, 1, 0), acc)  # batches of 3, 3, 1
    assert metrics["val/loss"] == pytest.approx(3.0)            # mean of 0..6 (the mean of batch means: 3.67)
    assert metrics["val/pred_loss"] == pytest.approx(sum(i * i for i in range(7)) / 7)
