"""planning/execution/memory.py: batch_size from the memory available, refusal of a batch that cannot fit."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import psutil
import pytest

from planning.execution import memory
from planning.execution.memory import AUTO_MAX_BATCH, ENV_BYTES, GiB, MiB, choose_batch_size, estimator
from tests.conftest import ROOT


def _estimate(rollout: int = 0, samples: int = 300, chunk: int = 4096):
    return estimator(resident=1 * GiB, episode_bytes=2 * MiB, rollout=rollout, num_samples=samples, chunk_size=chunk)


def test_auto_does_not_grow_with_n_evals():
    est = _estimate()
    assert choose_batch_size("auto", 1, est, 64 * GiB) == 1
    assert choose_batch_size("auto", 50, est, 64 * GiB) == AUTO_MAX_BATCH
    assert choose_batch_size(None, 5000, est, 64 * GiB) == AUTO_MAX_BATCH  # null (old configs) = auto


def test_auto_shrinks_to_what_fits():
    est = _estimate()
    avail = 4 * GiB  # budget 0.8 x 4 GiB = 3.2 GiB: 1 GiB resident + 1 GiB render setup + 3 envs of 402 MiB
    b = choose_batch_size("auto", 50, est, avail)
    assert b == 3 and est(b) <= memory.HEADROOM * avail < est(b + 1)
    assert choose_batch_size("auto", 50, est, 1 * GiB) == 1  # nothing fits: one at a time, with a warning


def test_explicit_batch_that_cannot_fit_is_one_line_saying_what_fits():
    est = _estimate()
    with pytest.raises(ValueError) as err:
        choose_batch_size(20, 50, est, 8 * GiB)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("batch_size=20 needs about ")
    fits = int(msg.split("batch_size=")[2].split(" fits")[0])
    assert est(fits) <= memory.HEADROOM * 8 * GiB < est(fits + 1)
    assert choose_batch_size(fits, 50, est, 8 * GiB) == fits
    assert choose_batch_size(20, 3, est, 8 * GiB) == 3  # never more envs than evaluations
    for bad in (0, -1, "lots", 2.5):
        with pytest.raises(ValueError, match="positive integer"):
            choose_batch_size(bad, 10, est, 8 * GiB)


def test_rollout_workspace_is_bounded_by_chunk_size():
    est = _estimate(rollout=2 * MiB, samples=300, chunk=1024)
    per_env = ENV_BYTES + 2 * MiB
    assert est(2) - est(1) == per_env + 300 * 2 * MiB  # 600 rollouts in flight, below the chunk
    assert est(10) - est(9) == per_env  # 1024 in flight either way


def test_available_memory_is_plausible():
    avail = memory.available_bytes()
    assert 0 < avail <= psutil.virtual_memory().total


@pytest.mark.slow
def test_rollout_bytes_bounds_a_real_rollout():
    """The estimate of one latent rollout is an upper bound of what a real no-grad rollout adds to the
    peak RSS (the high-water mark is reset to the current RSS first: /proc/self/clear_refs, Linux)."""
    code = textwrap.dedent("""
        import torch
        from pathlib import Path
        from benchmarks.plan_latency import build_model
        from planning.execution.memory import rollout_bytes
        def hwm():
            line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM"))
            return int(line.split()[1]) * 1024
        model, _ = build_model(["img_size=56"], "cpu")
        n, h = 512, 8
        z = torch.randn(n, model.num_hist, model.encoder.num_patches, model.projected_dim)
        act = torch.randn(n, model.num_hist + h - 1, model.action_dim * model.frameskip)
        Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
        before = hwm()
        with torch.no_grad():
            model.rollout_latents(z, act)
        print(hwm() - before, n * rollout_bytes(model, h), 4 * n * (h + 1) * z[0].numel())
    """)
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300)
    used, estimate, frames_only = map(int, out.stdout.split()[-3:])
    assert used <= estimate  # an upper bound ...
    assert estimate < 4 * max(used, frames_only)  # ... and not a wild one
