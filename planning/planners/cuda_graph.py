"""One step function repeated many times, replayed as a single CUDA graph (CEM's iterations on a GPU).

A CEM re-plan is ``opt_steps`` identical iterations (sample, roll out ``horizon`` steps, score, refit).
Run eagerly, each iteration issues hundreds of small kernels from Python, and with one to ten episodes
the host issuing them is slower than the GPU running them. :func:`run_steps` runs the first iteration
eagerly (on a side stream: lazy initialisation, ``torch.compile`` compilation and autotuning happen
there, outside any capture), records the second one as a CUDA graph on that stream, and replays that graph for every
later iteration: one launch per iteration instead of hundreds.

The step must be a pure function of its tensors (no host syncs, no CPU tensors, no random numbers:
pass the noise in), and every tensor it reads besides its arguments must stay alive and unchanged
until :func:`run_steps` returns. Should recording fail, or the first replay disagree with the same
iteration run eagerly (``verify``), the remaining iterations run eagerly and the reason is returned.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

State = tuple[Tensor, ...]
Step = Callable[[State, Tensor], tuple[State, Tensor]]  # (state, x) -> (next state, check tensor)


def run_eager(step: Step, state: State, xs: Sequence[Tensor] | Tensor) -> State:
    """``state`` after ``step`` over every ``x`` of ``xs`` in turn."""
    for x in xs:
        state = step(state, x)[0]
    return state


def _graphable(x: Tensor) -> bool:
    return x.is_cuda


def _warm_up(step: Step, state: State, x: Tensor) -> tuple[State, torch.cuda.Stream | None]:
    """One eager step, on a GPU on a side stream (what a capture needs before it), which it returns: the
    capture runs on the same stream, so the per-stream workspaces (cuBLAS) exist before it starts."""
    if not x.is_cuda:
        return step(state, x)[0], None
    side = torch.cuda.Stream(device=x.device)
    side.wait_stream(torch.cuda.current_stream(x.device))
    with torch.cuda.stream(side):
        state = step(state, x)[0]
    torch.cuda.current_stream(x.device).wait_stream(side)
    return state, side


def _record(step: Step, static_state: State, static_x: Tensor,
            stream: torch.cuda.Stream) -> tuple[Callable[[], None], Tensor]:
    """Record one step as a CUDA graph on ``stream`` (nothing runs yet): (replay, the check tensor each
    replay refreshes). A replay reads ``static_state`` and ``static_x`` and leaves the next state in
    ``static_state``.

    ``capture_begin`` / ``capture_end`` directly, not ``torch.cuda.graph``: that context synchronises and
    empties the caching allocators (device and pinned host) first, which every re-plan would pay for.
    ``thread_local``: only this thread's unsafe CUDA calls break the capture (plan.py writes videos in
    another thread)."""
    g = torch.cuda.CUDAGraph()
    stream.wait_stream(torch.cuda.current_stream(stream.device))
    with torch.cuda.stream(stream):
        g.capture_begin(capture_error_mode="thread_local")
        try:
            new_state, check = step(static_state, static_x)
            for s, t in zip(static_state, new_state, strict=True):
                s.copy_(t)
        except BaseException:
            with contextlib.suppress(Exception):  # an invalidated capture also fails to end: the first error counts
                g.capture_end()
            raise
        g.capture_end()
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
    state, stream = _warm_up(step, state, xs[0])
    ref = step(state, xs[1]) if verify else None
    static_state, static_x = tuple(t.clone() for t in state), xs[1].clone()
    try:
        replay, check = _record(step, static_state, static_x, stream)
    except Exception as exc:  # noqa: BLE001 - capture errors come as RuntimeError, AssertionError, ...
        return run_eager(step, state, xs[1:]), False, f"recording failed: {str(exc).strip().splitlines()[0][:200]}"
    replay()
    if ref is not None and not _agrees(check, ref[1], rtol):
        return run_eager(step, ref[0], xs[2:]), False, "the replayed iteration disagrees with the same iteration run eagerly"
    for x in xs[2:]:
        static_x.copy_(x)
        replay()
    return tuple(t.clone() for t in static_state), True, None
