"""What a ``compile`` setting (training, planning, benchmarks) asks of ``torch.compile`` on a device.

Settings: ``auto`` (compile on a CUDA device with the caller's mode, stay eager on a CPU: there
compiling costs minutes of a short job and gains little), ``true`` (compile on any device),
``false`` / ``none`` / ``off`` (eager), or a ``torch.compile`` mode name (compile with that mode).
"""

from __future__ import annotations

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# planning's auto mode: fused kernels without CUDA graphs of their own, because CEM records each re-plan's
# iterations as one CUDA graph (planning.planners.cuda_graph), which a predictor replaying its own graphs would forbid
PLANNING_AUTO_MODE = "default"
_OFF = ("false", "none", "off", "no", "0")
_ON = ("true", "yes", "on", "1")


def compile_mode(setting: str | bool | None, device_type: str, auto_mode: str) -> str | None:
    """The ``torch.compile`` mode for ``setting`` on a device of type ``device_type`` ("cuda" / "cpu"),
    or None for eager. ``auto_mode``: the mode ``auto`` and ``true`` use. ValueError (one line) for
    anything else. ``reduce-overhead`` (CUDA graphs) falls back to ``default`` off CUDA."""
    s = "false" if setting is None else str(setting).strip().lower()
    if s in _OFF:
        return None
    if s == "auto":
        mode = auto_mode if device_type == "cuda" else None
    elif s in _ON:
        mode = auto_mode
    elif s in MODES:
        mode = s
    else:
        raise ValueError(f"compile setting must be auto, true, false or one of {', '.join(MODES)}; got {setting!r}")
    if mode == "reduce-overhead" and device_type != "cuda":
        mode = "default"  # CUDA graphs need CUDA
    return mode


CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # the modes that replay CUDA graphs
_NO_GRAPHS = {"reduce-overhead": "default", "max-autotune": "max-autotune-no-cudagraphs"}


def training_compile_mode(setting: str | bool | None, device_type: str, grad_accum: int = 1,
                          num_processes: int = 1) -> tuple[str | None, str | None]:
    """(mode, note) for the training step: ``auto`` on CUDA replays forward + backward as CUDA graphs
    (``reduce-overhead``: the small model's step is bound by the host launching ~1,500 kernels) when
    each step's gradients are used at once by one process. With gradient accumulation (a replay would
    overwrite the gradients being summed) or several processes (DDP's bucketed all-reduce) the graph
    modes fall back to their graph-free twin, and ``note`` says why (None otherwise)."""
    shared = grad_accum > 1 or num_processes > 1
    mode = compile_mode(setting, device_type, "default" if shared else "reduce-overhead")
    if mode in CUDA_GRAPH_MODES and shared:
        why = f"training.grad_accum={grad_accum}" if grad_accum > 1 else f"{num_processes} processes"
        return _NO_GRAPHS[mode], f"torch.compile mode {mode} replays CUDA graphs, which {why} cannot use: " \
                                 f"mode {_NO_GRAPHS[mode]} instead"
    return mode, None


def mark_step(mode: str | None) -> None:
    """Before each compiled training step in a CUDA-graph mode: the previous step's graph outputs are no
    longer read, so the next replay may reuse their memory (``torch.compiler.cudagraph_mark_step_begin``)."""
    if mode in CUDA_GRAPH_MODES:
        import torch

        torch.compiler.cudagraph_mark_step_begin()
