"""Planning plots: real PNGs that depend on the data, written atomically, every figure closed."""

from types import SimpleNamespace

import imageio.v3 as iio
import matplotlib.pyplot as plt
import numpy as np
import pytest

from planning.reporting.plots import plot_eef_paths, plot_horizon, plot_success, save_figure


def _records(success: bool):
    return [{"eval_index": i, "episode": 10 + i, "task_success": success, "goal_reached": success,
             "final_object_dist": 0.01 if success else 0.2} for i in range(3)]


def _png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return iio.imread(path)


@pytest.fixture
def drawn(monkeypatch):
    """What each figure holds when it is saved: per axes, its bar heights and its lines' (x, y) data."""
    import planning.reporting.plots as plots

    figures, save = [], plots.save_figure

    def record(fig, path):
        figures.append([{"bars": [float(b.get_height()) for b in ax.patches],
                         "lines": [(list(ln.get_xdata()), list(ln.get_ydata())) for ln in ax.get_lines()]}
                        for ax in fig.axes])
        save(fig, path)

    monkeypatch.setattr(plots, "save_figure", record)
    return figures


def test_success_plot_shows_the_records(tmp_path, drawn):
    records = _records(True)
    records[1].update(task_success=False, final_object_dist=0.3)
    plot_success(tmp_path / "ok.png", records, "episodes")
    plot_success(tmp_path / "bad.png", _records(False), "episodes")
    ok, bad = _png(tmp_path / "ok.png"), _png(tmp_path / "bad.png")
    assert ok.ndim == 3 and ok.shape[0] > 100
    assert ok.shape != bad.shape or not np.array_equal(ok, bad)  # same title: only the records differ
    success, dist = drawn[0][0]["bars"], drawn[0][1]["bars"]
    assert success == [1.0, 0.0, 1.0, 1.0, 1.0, 1.0]  # task success per episode, then goal reached
    assert dist == pytest.approx([0.01, 0.3, 0.01])
    assert plt.get_fignums() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "ok.png"]


def test_eef_and_horizon_plots(tmp_path, drawn):
    trace = SimpleNamespace(eef=[np.array([0.0, 0.0, 1.0]), np.array([0.1, 0.05, 1.02])],
                            planned_eef=[np.array([[0.0, 0.0, 1.0], [0.12, 0.04, 1.01]])])
    plot_eef_paths(tmp_path / "plots" / "eef.png", trace, np.array([0.1, 0.05, 1.0]), "eval 0")
    rows = [{"planner": p, "goal_H": h, "success_rate": s, "mean_final_object_dist": d}
            for p, s, d in (("cem", 0.5, 0.05), ("random", 0.0, 0.2)) for h in (5, 3)]
    plot_horizon(tmp_path / "h.png", rows, "study")
    assert _png(tmp_path / "plots" / "eef.png").shape[1] > _png(tmp_path / "h.png").shape[1] * 0.5
    xz = drawn[0][1]["lines"]  # x-z view: planned, executed, start, goal
    assert xz[0] == ([0.0, 0.12], [1.0, 1.01]) and xz[1] == ([0.0, 0.1], [1.0, 1.02])
    assert xz[3] == ([0.1], [1.0])
    success_axes, dist_axes = drawn[1]
    assert [ln[1] for ln in success_axes["lines"]] == [[0.5, 0.5], [0.0, 0.0]]
    assert [ln[0] for ln in success_axes["lines"]] == [[3, 5], [3, 5]]  # sorted by goal_H
    assert [ln[1] for ln in dist_axes["lines"]] == [[0.05, 0.05], [0.2, 0.2]]
    assert plt.get_fignums() == []


def test_a_failed_save_leaves_no_file_and_closes_the_figure(tmp_path):
    fig = plt.figure()
    with pytest.raises(ValueError):
        save_figure(fig, tmp_path / "plot.notaformat")
    assert list(tmp_path.iterdir()) == [] and plt.get_fignums() == []
