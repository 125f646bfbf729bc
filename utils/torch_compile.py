"""What a ``compile`` setting (training, planning, benchmarks) asks of ``torch.compile`` on a device.

Settings: ``auto`` (compile on a CUDA device with the caller's mode, stay eager on a CPU: there
compiling costs minutes of a short job and gains little), ``true`` (compile on any device),
``false`` / ``none`` / ``off`` (eager), or a ``torch.compile`` mode name (compile with that mode).
"""

from __future__ import annotations

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
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
