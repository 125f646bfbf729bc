"""One step function repeated many times, replayed as a single CUDA graph (CEM's iterations on a GPU).

A CEM re-plan is ``opt_steps`` identical iterations (sample, roll out ``horizon`` steps, score, refit).
Run eagerly, each iteration issues hundreds of small kernels from Python, and with one to ten episodes
the host issuing them is slower than the GPU running them. :func:`run_steps` runs the first iteration
eagerly (on a side stream: lazy initialisation, ``torch.compile`` compilation and autotuning happen
there, outside any capture), records the second one as a CUDA graph, and replays that graph for every
later iteration: one launch per iteration instead of hundreds.

The step must be a pure function of its tensors (no host syncs, no CPU tensors, no random numbers:
pass the noise in), and every tensor it reads besides its arguments must stay alive and unchanged
until :func:`run_steps` returns. Should recording fail, or the first replay disagree with the same
iteration run eagerly (``verify``), the remaining iterations run eagerly and the reason is returned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

log = logging.getLogger(__name__)

State = tuple[Tensor, ...]
Step = Callable[[State, Tensor], tuple[State, Tensor]]  # (state, x) -> (next state, check tensor)


def run_eager(step: Step, state: State, xs: Sequence[Tensor] | Tensor) -> State:
    """``state`` after ``step`` over every ``x`` of ``xs`` in turn."""
    for x in xs:
        state = step(state, x)[0]
    return state


def _graphable(x: Tensor) -> bool:
    return x.is_cuda


def _warm_up(step: Step, state: State, x: Tensor) -> State:
    """One eager step, on a side stream on a GPU (what ``torch.cuda.graph`` needs before a capture)."""
    if not x.is_cuda:
        return step(state, x)[0]
    side = torch.cuda.Stream(device=x.device)
    side.wait_stream(torch.cuda.current_stream(x.device))
    with torch.cuda.stream(side):
        state = step(state, x)[0]
    torch.cuda.current_stream(x.device).wait_stream(side)
    return state


def _record(step: Step, static_state: State, static_x: Tensor) -> tuple[Callable[[], None], Tensor]:
    """Record one step as a CUDA graph (nothing runs yet): (replay, the check tensor each replay refreshes).
    A replay reads ``static_state`` and ``static_x`` and leaves the next state in ``static_state``."""
    g = torch.cuda.CUDAGraph()
    # thread_local: only this thread's unsafe CUDA calls break the capture (plan.py writes videos in another)
    with torch.cuda.graph(g, capture_error_mode="thread_local"):
        new_state, check = step(static_state, static_x)
        for s, t in zip(static_state, new_state, strict=True):
            s.copy_(t)
    return g.replay, check


def _agrees(got: Tensor, want: Tensor, rtol: float) -> bool:
    """The check tensors of a replay and of the eager run agree (bf16 rounding tolerated)."""
    return bool(torch.isfinite(got).all()) and torch.allclose(got.float(), want.float(), rtol=rtol, atol=rtol)


def run_steps(step: Step, state: State, xs: Tensor, graph: bool, verify: bool = False,
              rtol: float = 2e-2) -> tuple[State, bool, str | None]:
    """(``state`` after ``step`` over ``xs`` [n, ...] (one ``x`` per iteration), whether a CUDA graph ran
    them, why recording one was given up (None unless it was tried and failed)).

    ``graph``: record iteration 2 and replay it for iterations 2..n (CUDA tensors only; n >= 3).
    ``verify``: also run iteration 2 eagerly and compare its check tensor with the first replay's.
    """
    if not graph or xs.shape[0] < 3 or not _graphable(xs):
        return run_eager(step, state, xs), False, None
    state = _warm_up(step, state, xs[0])
    ref = step(state, xs[1]) if verify else None
    static_state, static_x = tuple(t.clone() for t in state), xs[1].clone()
    try:
        replay, check = _record(step, static_state, static_x)
    except Exception as exc:  # noqa: BLE001 - capture errors come as RuntimeError, AssertionError, ...
        return run_eager(step, state, xs[1:]), False, f"recording failed: {str(exc).strip().splitlines()[0][:200]}"
    replay()
    if ref is not None and not _agrees(check, ref[1], rtol):
        return run_eager(step, ref[0], xs[2:]), False, "the replayed iteration disagrees with the same iteration run eagerly"
    for x in xs[2:]:
        static_x.copy_(x)
        replay()
    return tuple(t.clone() for t in static_state), True, None
