"""A device the user typed (``cpu``, ``cuda``, ``cuda:N``), checked before any work: one line if unusable."""

from __future__ import annotations

import torch


def usable_device(spec: str) -> torch.device:
    """``spec`` as a ``torch.device`` that this machine has.

    Raises:
        ValueError: not a device name (``gpu``), CUDA asked for on a machine without it, or a CUDA
            index this process cannot see; the message is one line that says what there is.
    """
    try:
        device = torch.device(str(spec))
    except RuntimeError:
        raise ValueError(f"device {spec!r} is not a device name (cpu | cuda | cuda:N)") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ValueError(f"device {spec!r}: only cpu and cuda are supported")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ValueError(f"device {spec!r}: this machine has no usable CUDA GPU (torch {torch.__version__}); use cpu")
    if device.index is not None and device.index >= count:
        raise ValueError(f"device {spec!r}: this process sees {count} CUDA GPU(s), cuda:0..cuda:{count - 1} "
                         "(CUDA_VISIBLE_DEVICES renumbers them)")
    return device


def device_argument(spec: str) -> str:
    """argparse ``type=`` for ``--device``: ``auto`` (the first CUDA GPU when there is one, else cpu) or a
    device this machine has; anything else is refused by argparse in one line."""
    import argparse

    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return str(usable_device(spec))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
