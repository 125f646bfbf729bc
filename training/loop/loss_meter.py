"""Step losses accumulated on the device, read by the host only every ``log_every`` steps.

A ``.item()`` per step makes the host wait for the GPU to finish that step, so the next batch cannot
be queued behind it: with a small model the GPU then idles most of the time. :class:`LossMeter`
keeps running sums (and a count of non-finite losses) as device tensors; :meth:`LossMeter.flush`
is the one synchronisation point (a collective on several processes: every rank must flush at the
same steps).
"""

from __future__ import annotations

import torch
from torch import Tensor


class LossMeter:
    """Running sums of the scalar losses of ``model(batch)`` since the last flush, on the device."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.sums: Tensor | None = None  # [len(keys) + 1]: the losses, then the count of non-finite ones
        self.count = 0

    def add(self, out: dict[str, Tensor]) -> None:
        """Add one step's losses (scalar tensors, same keys every step; ``out["loss"]`` is checked for
        NaN / inf). Two small kernels, no host sync."""
        if not self.keys:
            self.keys = list(out)
        vals = torch.stack([out[k].detach().float() for k in self.keys])
        vals = torch.cat([vals, (~torch.isfinite(out["loss"].detach())).float().reshape(1)])
        self.sums = vals if self.sums is None else self.sums + vals
        self.count += 1

    def flush(self, accelerator) -> dict[str, float]:
        """Means since the last flush (this process) and ``nonfinite``: the number of non-finite losses
        on all processes; resets the sums. Empty when nothing was added."""
        if not self.count:
            return {}
        bad = accelerator.reduce(self.sums[-1:].clone(), reduction="sum")
        values = (self.sums[:-1] / self.count).tolist() + bad.tolist()  # the one host sync
        means = dict(zip(self.keys, values[:-1]))
        means["nonfinite"] = values[-1]
        self.sums, self.count = None, 0
        return means
