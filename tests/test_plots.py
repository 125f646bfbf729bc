"""Planning plots: real PNGs that depend on the data, written atomically, every figure closed."""

from types import SimpleNamespace

import imageio.v3 as iio
import matplotlib.pyplot as plt
import numpy as np
import pytest

from planning.plots import plot_eef_paths, plot_horizon, plot_success, save_figure


def _records(success: bool):
    return [{"eval_index": i, "episode": 10 + i, "task_success": success, "goal_reached": success,
             "final_object_dist": 0.01 if success else 0.2} for i in range(3)]


def _png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return iio.imread(path)


def test_success_plot_shows_the_records(tmp_path):
    plot_success(tmp_path / "ok.png", _records(True), "all succeed")
    plot_success(tmp_path / "bad.png", _records(False), "all fail")
    ok, bad = _png(tmp_path / "ok.png"), _png(tmp_path / "bad.png")
    assert ok.ndim == 3 and ok.shape[0] > 100
    assert ok.shape != bad.shape or not np.array_equal(ok, bad)
    assert plt.get_fignums() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "ok.png"]


def test_eef_and_horizon_plots(tmp_path):
    trace = SimpleNamespace(eef=[np.array([0.0, 0.0, 1.0]), np.array([0.1, 0.05, 1.02])],
                            planned_eef=[np.array([[0.0, 0.0, 1.0], [0.12, 0.04, 1.01]])])
    plot_eef_paths(tmp_path / "plots" / "eef.png", trace, np.array([0.1, 0.05, 1.0]), "eval 0")
    rows = [{"planner": p, "goal_H": h, "success_rate": s, "mean_final_object_dist": 0.05}
            for p, s in (("cem", 0.5), ("random", 0.0)) for h in (5, 3)]
    plot_horizon(tmp_path / "h.png", rows, "study")
    assert _png(tmp_path / "plots" / "eef.png").shape[1] > _png(tmp_path / "h.png").shape[1] * 0.5
    assert plt.get_fignums() == []


def test_a_failed_save_leaves_no_file_and_closes_the_figure(tmp_path):
    fig = plt.figure()
    with pytest.raises(ValueError):
        save_figure(fig, tmp_path / "plot.notaformat")
    assert list(tmp_path.iterdir()) == [] and plt.get_fignums() == []
