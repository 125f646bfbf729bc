"""Planning report: evaluation in batches (envs always closed), outputs per batch, results saved even when
an output cannot be written (then one-line OutputError), a CUDA out-of-memory error in a batch reported with what
the batches before it finished."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import planning.execution.report as report
from planning.execution.mpc import EpisodeTrace
from planning.reporting.outputs import OutputError


def _cfg(videos=True, plots=True):
    return OmegaConf.create({"outputs": {"videos": videos, "plots": plots, "fps": 10}, "seed": 0})


def _trace(n=3):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(n)]
    return EpisodeTrace(frames=frames, imagined=[None] * n, eef=[np.zeros(3) + 0.01 * i for i in range(n)],
                        planned_eef=[np.zeros((4, 3))])


def _record(i, success=True):
    return {"eval_index": i, "episode": 7, "success": success, "task_success": success, "goal_reached": success,
            "final_object_dist": 0.01, "goal_eef_pos": [0.0, 0.0, 0.0], "planning_seconds": 1.0, "n_replans": 2}


def test_writer_writes_videos_and_plots_and_records_their_paths(tmp_path):
    w = report.OutputWriter(tmp_path, _cfg(), "cem", 5, with_imagined=False)
    recs = [_record(0), _record(1, False)]
    seconds, failed = w.write_batch(recs, [_trace(), _trace()], [np.zeros((16, 16, 3), np.uint8)] * 2)
    assert seconds > 0 and failed == []
    w.finish(recs)
    assert recs[0]["video"] == "videos/eval_000_ep7.mp4" and recs[1]["eef_plot"] == "plots/eef_eval_001_ep7.png"
    assert (tmp_path / recs[0]["video"]).stat().st_size > 0 and (tmp_path / "plots" / "success.png").is_file()
    w.raise_if_failed()  # nothing failed
    summary = report.save_results(tmp_path, _cfg(), {"planner": "cem"}, recs, 1.5, w.errors)
    logs = json.loads((tmp_path / "logs.json").read_text())
    assert logs["timings"]["outputs_seconds"] == 1.5
    assert summary["success_rate"] == 0.5 and [e["eval_index"] for e in logs["episodes"]] == [0, 1]
    assert logs["output_errors"] == [] and json.loads((tmp_path / "summary.json").read_text()) == summary


def test_a_failed_output_skips_the_rest_saves_the_results_and_raises_one_line(tmp_path):
    (tmp_path / "videos").write_text("a file where the videos dir should be")
    w = report.OutputWriter(tmp_path, _cfg(), "cem", 5, with_imagined=False)
    recs = [_record(0), _record(1)]
    _, failed = w.write_batch(recs, [_trace(), _trace()], [np.zeros((16, 16, 3), np.uint8)] * 2)
    assert len(w.errors) == 1 and w.skipped == 3 and "video" not in recs[0] and "eef_plot" not in recs[0]
    assert failed == w.errors  # what this batch could not write (recorded with the batch)
    assert w.write_batch([_record(2)], [_trace()], [np.zeros((16, 16, 3), np.uint8)])[1] == []  # skipped, not failed
    report.save_results(tmp_path, _cfg(), {"planner": "cem"}, recs, w.seconds, w.errors)
    assert json.loads((tmp_path / "logs.json").read_text())["output_errors"] == w.errors
    with pytest.raises(OutputError) as exc:
        w.raise_if_failed()
    assert "\n" not in str(exc.value) and "5 later video(s)/plot(s) skipped" in str(exc.value)
    with pytest.raises(OutputError, match="could not write an earlier launch's video"):
        report.OutputWriter(tmp_path, _cfg(), "cem", 5, with_imagined=False).raise_if_failed(
            ["an earlier launch's video"])


class _Env:
    closed = 0

    def close(self):
        _Env.closed += 1


def test_run_batches_batches_closes_every_env_and_reports_each_batch(monkeypatch):
    sizes, seen = [], []

    def fake_evaluate(model, normalizer, data, envs, specs, mpc, settings, device):
        sizes.append(len(envs))
        if specs[0].seed == 99:
            raise RuntimeError("simulator died")
        return [_record(s.eval_index) for s in specs], SimpleNamespace(traces=[None] * len(specs)), [None] * len(specs)

    monkeypatch.setattr(report, "evaluate_batch", fake_evaluate)
    specs = [SimpleNamespace(eval_index=i, seed=i) for i in range(5)]
    _Env.closed = 0
    recs = report.run_batches(_Env, None, None, None, specs, None, None, "cpu", batch_size=2, progress=False,
                              on_batch=lambda r, t, g: seen.append([x["eval_index"] for x in r]))
    assert sizes == [2, 2, 1] and seen == [[0, 1], [2, 3], [4]] and [r["eval_index"] for r in recs] == list(range(5))
    assert _Env.closed == 5
    with pytest.raises(RuntimeError, match="simulator died"):
        report.run_batches(_Env, None, None, None, [SimpleNamespace(eval_index=0, seed=99)] * 2, None, None, "cpu",
                           batch_size=2, progress=False)
    assert _Env.closed == 7  # closed on the failure too


def test_a_cuda_out_of_memory_error_is_reported_after_the_finished_batches(monkeypatch):
    seen = []

    def fake_evaluate(model, normalizer, data, envs, specs, mpc, settings, device):
        if specs[0].eval_index == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB. GPU 0 has a total "
                                              "capacity of 79.19 GiB")
        return [_record(s.eval_index) for s in specs], SimpleNamespace(traces=[None] * len(specs)), [None] * len(specs)

    monkeypatch.setattr(report, "evaluate_batch", fake_evaluate)
    _Env.closed = 0
    with pytest.raises(report.BatchOutOfMemory) as exc:
        report.run_batches(_Env, None, None, None, [SimpleNamespace(eval_index=i, seed=i) for i in range(4)], None,
                           None, "cpu", batch_size=2, progress=False,
                           on_batch=lambda r, t, g: seen.append([x["eval_index"] for x in r]))
    assert seen == [[0, 1]] and _Env.closed == 4  # the first batch went through on_batch; every env closed
    e = exc.value
    assert (e.size, e.finished, e.wanted) == (2, 2, int(1.5 * 2 ** 30))
    assert e.base is None and e.peak is None  # no CUDA statistics on a CPU device
