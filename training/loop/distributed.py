"""What the processes of one run (on one or several nodes) must agree on.

* the run dir: every process must see the same directory (checkpoints, ``run_info.json`` and the
  normalizer are written by the main process and read by all on resume), checked once at start;
* the feature cache: built by the main process, then by the local main process of every other node
  whose copy of the dataset has none (nodes without a shared filesystem), never read before it exists;
* RNG states: each rank saves and restores its own;
* the end of a run: every rank drops its model and meets the others before the process group goes.

:func:`is_multiprocess` and :func:`is_main_process` answer from the launcher's environment, before any
Accelerator exists (GPU selection happens before CUDA starts, and a refused launch is cleaned up by rank 0 alone).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np
from accelerate.utils import broadcast_object_list, gather_object

from datasets.feature_cache import build_feature_cache, cache_dir, load_feature_cache
from training.run_dir.checkpoint import rng_state

log = logging.getLogger(__name__)


def is_multiprocess() -> bool:
    """Whether this process is one of several of a launch (``WORLD_SIZE`` > 1, set by ``accelerate launch``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Whether this process is the launch's rank 0 (``RANK``; a single process is)."""
    return int(os.environ.get("RANK", "0")) == 0


class NotSharedError(RuntimeError):
    """A path every process must see is not visible to some of them (the message is one line)."""


def check_shared_run_dir(run_dir: Path, accelerator) -> None:
    """Raise NotSharedError on every process when some process cannot see the main process's run dir."""
    if accelerator.num_processes == 1:
        return
    token = [secrets.token_hex(8) if accelerator.is_main_process else None]
    broadcast_object_list(token)
    marker = Path(run_dir) / f".shared-check-{token[0]}"
    if accelerator.is_main_process:
        marker.parent.mkdir(parents=True, exist_ok=True)
        for old in marker.parent.glob(".shared-check-*"):  # left by a run killed during this check
            old.unlink(missing_ok=True)
        marker.write_text("")
    accelerator.wait_for_everyone()
    seen = gather_object([marker.is_file()])
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        marker.unlink(missing_ok=True)
    blind = [rank for rank, ok in enumerate(seen) if not ok]
    if blind:
        raise NotSharedError(f"hydra.run.dir={run_dir} is not on a filesystem shared by every node (rank(s) "
                             f"{','.join(map(str, blind))} cannot see it): checkpoints and resume need one shared "
                             "run dir; put it on shared storage")


def node_feature_cache(data_path: Path, encoder, accelerator) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's feature cache on this process, built once per node where it is missing.

    The main process builds (or validates) it first; then the local main process of every other node
    builds it if its own ``data_path`` has none (a node-local copy of the data), which on a shared
    filesystem is a quick "up to date" check; then the other processes of the node load it.
    """
    with accelerator.main_process_first():
        if accelerator.is_main_process:
            build_feature_cache(data_path, encoder, device=accelerator.device,
                                progress=accelerator.is_local_main_process)
    with accelerator.local_main_process_first():
        if accelerator.is_local_main_process and not accelerator.is_main_process:
            build_feature_cache(data_path, encoder, device=accelerator.device, progress=True)
        cache = load_feature_cache(data_path, encoder)
    if cache is None:
        raise NotSharedError(f"rank {accelerator.process_index} finds no valid feature cache at "
                             f"{cache_dir(data_path, encoder)} after its node built it: is the dataset being "
                             "changed by another job?")
    return cache


def gather_rng_states(accelerator) -> dict[str, Any]:
    """Every rank's RNG state, keyed by rank number (a collective: call it on every process)."""
    if accelerator.num_processes == 1:
        return {"0": rng_state()}
    return {str(rank): st for rank, st in enumerate(gather_object([rng_state()]))}


def leave_together(accelerator) -> None:
    """End a finished run on every rank in the same order: drop accelerate's references to the model and
    optimizer (and collect them), wait for every rank, then destroy the process group.

    Before, the process group was shut down while DDP's reducer still held it, and it was freed only when
    ``training.loop.trainer.train``'s frame went away, each rank on its own schedule; a rank of the two-machine
    CPU test was seen blocked in that teardown after its peer had exited.
    """
    accelerator.free_memory()
    accelerator.wait_for_everyone()
    accelerator.end_training()
