"""benchmarks/plan_memory.py: one real plan.py job per point, its peak RSS read from the kernel."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_prints_peak_rss_per_point(tiny_trained_run, capsys, tmp_path):
    from benchmarks.plan_memory import main

    assert main(["--run", str(tiny_trained_run), "--n-evals", "1", "3", "--planner", "replay", "--goal-h", "2",
                 "--override", "batch_size=2"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("| demo |")]
    assert len(rows) == 2
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in rows]
    assert [c[2] for c in cells] == ["1", "3"] and [c[3] for c in cells] == ["1", "2"]  # n_evals, batch
    assert all(300 < float(c[4]) < 8000 and c[6] == "0" for c in cells)  # peak RSS (MiB) of a real job, exit 0
    assert main(["--run", str(tmp_path)]) == 2
