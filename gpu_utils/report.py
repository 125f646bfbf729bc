"""Human and machine output of a ranking: the table and the JSON report of ``select_best_gpus.py``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import MappingProxyType
from typing import TextIO

from gpu_utils.devices import GpuSnapshot
from gpu_utils.selection import RankedDevice

GREEN_BELOW, RED_ABOVE = 20.0, 50.0  # score thresholds of the status icons

_ANSI = MappingProxyType({"green": "\033[32m", "yellow": "\033[33m", "red": "\033[31m", "bold": "\033[1m",
                          "reset": "\033[0m"})


def status_icon(score: float) -> str:
    """🟢 below 20, 🟡 from 20 to 50, 🔴 above 50."""
    if score < GREEN_BELOW:
        return "🟢"
    return "🟡" if score <= RED_ABOVE else "🔴"


def _status_colour(score: float) -> str:
    if score < GREEN_BELOW:
        return "green"
    return "yellow" if score <= RED_ABOVE else "red"


def use_colour(stream: TextIO, environ: dict | None = None) -> bool:
    """ANSI colour only on a terminal, never with ``NO_COLOR`` set (https://no-color.org) or TERM=dumb."""
    env = os.environ if environ is None else environ
    if "NO_COLOR" in env or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _paint(text: str, style: str, colour: bool) -> str:
    return f"{_ANSI[style]}{text}{_ANSI['reset']}" if colour else text


def format_table(ranked: Sequence[RankedDevice], selected: Sequence[GpuSnapshot], colour: bool = False,
                 min_free_memory_gb: float = 0.0) -> str:
    """The ranking as a table, best first; chosen devices marked ``*``, too-full ones say so.

    Columns: status icon, GPU (physical index / MIG), Mem%, Util%, MemMB (used/total MiB), Procs,
    Score, Name.
    """
    chosen = {d.uuid for d in selected}
    header = f"   {'GPU':<15} {'Mem%':>6} {'Util%':>6} {'MemMB':>15} {'Procs':>5} {'Score':>6}  Name"
    lines = [_paint(header, "bold", colour)]
    for r in ranked:
        d = r.device
        util = "n/a" if d.utilization is None else f"{d.utilization:.0f}"
        mark = "*" if d.uuid in chosen else " "
        score = _paint(f"{r.score:6.1f}", _status_colour(r.score), colour)
        row = (f"{status_icon(r.score)}{mark}{d.label:<15} {d.memory_percent:6.1f} {util:>6} "
               f"{f'{d.memory_used_mb:.0f}/{d.memory_total_mb:.0f}':>15} {d.n_processes:>5} {score}  {d.name}")
        if not r.fits:
            row += f"  (< {min_free_memory_gb:g} GiB free)"
        lines.append(row)
    return "\n".join(lines)


def json_report(ranked: Sequence[RankedDevice], selected: Sequence[GpuSnapshot], *, backend: str | None,
                error: str | None, preset: str | None, memory_weight: float, util_weight: float,
                min_free_memory_gb: float) -> dict:
    """JSON-ready report; ``cuda_visible_devices`` is the value to export for the selection."""
    chosen = [d.uuid for d in selected]
    return {
        "backend": backend,
        "error": error,
        "preset_cuda_visible_devices": preset,
        "memory_weight": memory_weight,
        "util_weight": util_weight,
        "min_free_memory_gb": min_free_memory_gb,
        "devices": [{**r.device.to_dict(), "score": round(r.score, 3), "fits": r.fits,
                     "selected": r.device.uuid in chosen} for r in ranked],
        "selected": [d.cuda_id for d in selected],
        "cuda_visible_devices": ",".join(d.cuda_id for d in selected),
        "mujoco_egl_device_id": str(selected[0].index) if selected else None,
    }
