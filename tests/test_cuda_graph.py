"""planning.planners.cuda_graph: the iterations of a step function, eager or as one recorded graph.

A CPU has no CUDA graphs, so these tests record with a stand-in of ``torch.cuda.graph`` that keeps its
contract (recording runs nothing; each replay runs the recorded step on the static buffers and leaves
the next state there); the real recording runs in ``benchmarks/gpu_check.sh``.
"""

from __future__ import annotations

import pytest
import torch

from planning.planners import cuda_graph
from planning.planners.cuda_graph import run_eager, run_steps


def decay_step(state, x):
    """A toy iteration: (a, b) -> (a * 0.5 + x, a + b), check = the new a."""
    a, b = state
    a2 = a * 0.5 + x
    return (a2, a + b), a2


class Recorder:
    """Stand-in for the CUDA recording: counts recordings and replays, can fail or corrupt."""

    def __init__(self, fail: bool = False, corrupt: bool = False):
        self.fail, self.corrupt, self.records, self.replays = fail, corrupt, 0, 0

    def __call__(self, step, static_state, static_x, stream=None):
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing\nmore")
        self.records += 1
        self.static_state, self.static_x = static_state, static_x  # what a later replay overwrites
        shape_probe = step(tuple(s.clone() for s in static_state), static_x.clone())[1]
        check = torch.empty_like(shape_probe)

        def replay():
            self.replays += 1
            new_state, c = step(static_state, static_x)
            for s, t in zip(static_state, new_state):
                s.copy_(t)
            check.copy_(c + 1.0 if self.corrupt else c)

        return replay, check


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(cuda_graph, "_record", rec)
    monkeypatch.setattr(cuda_graph, "_graphable", lambda x: True)
    return rec


def start():
    return torch.tensor([1.0, -2.0]), torch.zeros(2)


def test_replayed_iterations_equal_the_eager_loop(recorder):
    xs = torch.arange(12.0).reshape(6, 2)
    want = run_eager(decay_step, start(), xs)
    got, graphed, why = run_steps(decay_step, start(), xs, graph=True, verify=True)
    assert graphed and why is None
    assert recorder.records == 1 and recorder.replays == 5  # iteration 1 eager, 2..6 replayed
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_the_result_is_not_a_view_of_the_static_buffers(recorder):
    got, graphed, _ = run_steps(decay_step, start(), torch.ones(3, 2), graph=True)
    assert graphed
    before = tuple(t.clone() for t in got)
    for buf in recorder.static_state:  # the graph's buffers change after the call (another replay)
        buf.add_(100.0)
    for g, b, buf in zip(got, before, recorder.static_state):
        assert torch.equal(g, b) and g.data_ptr() != buf.data_ptr()


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_few_iterations_or_no_graph_run_eagerly(recorder, n):
    xs = torch.ones(n, 2)
    got, graphed, why = run_steps(decay_step, start(), xs, graph=True)
    assert not graphed and why is None and recorder.records == 0
    for g, w in zip(got, run_eager(decay_step, start(), xs)):
        torch.testing.assert_close(g, w)


def test_a_failed_recording_runs_the_rest_eagerly_and_says_why(monkeypatch):
    monkeypatch.setattr(cuda_graph, "_record", Recorder(fail=True))
    monkeypatch.setattr(cuda_graph, "_graphable", lambda x: True)
    xs = torch.arange(8.0).reshape(4, 2)
    got, graphed, why = run_steps(decay_step, start(), xs, graph=True)
    assert not graphed and why.startswith("recording failed: operation not permitted") and "\n" not in why
    for g, w in zip(got, run_eager(decay_step, start(), xs)):
        torch.testing.assert_close(g, w)


def test_a_replay_that_disagrees_with_the_eager_iteration_is_not_trusted(monkeypatch):
    rec = Recorder(corrupt=True)
    monkeypatch.setattr(cuda_graph, "_record", rec)
    monkeypatch.setattr(cuda_graph, "_graphable", lambda x: True)
    xs = torch.arange(10.0).reshape(5, 2)
    got, graphed, why = run_steps(decay_step, start(), xs, graph=True, verify=True)
    assert not graphed and "disagrees" in why and rec.replays == 1
    for g, w in zip(got, run_eager(decay_step, start(), xs)):  # every iteration counted once, eagerly
        torch.testing.assert_close(g, w)


def test_cpu_tensors_are_never_recorded():
    got, graphed, why = run_steps(decay_step, start(), torch.ones(4, 2), graph=True)
    assert not graphed and why is None


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs it)")
def test_a_real_cuda_graph_replays_the_eager_iterations():
    xs = torch.arange(12.0, device="cuda").reshape(6, 2)
    state = tuple(t.cuda() for t in start())
    want = run_eager(decay_step, state, xs)
    got, graphed, why = run_steps(decay_step, state, xs, graph=True, verify=True)
    assert graphed and why is None
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
