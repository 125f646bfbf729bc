"""training.loop.distributed in-process: the order in which a finished run leaves the process group."""

from __future__ import annotations

import weakref

import torch
from accelerate import Accelerator

from training.loop.distributed import leave_together


def test_a_finished_run_drops_its_model_and_meets_the_other_ranks_before_the_process_group_goes(monkeypatch):
    acc = Accelerator(cpu=True)
    model = acc.prepare(torch.nn.Linear(2, 2))  # accelerate keeps a reference, as DDP's reducer keeps the group
    alive = weakref.ref(model)
    del model
    seen = []
    monkeypatch.setattr(acc, "wait_for_everyone", lambda: seen.append(("barrier", alive() is None)))
    monkeypatch.setattr(acc, "end_training", lambda: seen.append(("destroy", alive() is None)))
    leave_together(acc)
    assert seen == [("barrier", True), ("destroy", True)]
