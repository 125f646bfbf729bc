"""A tiny stand-in for a world model's losses (trainer and validation tests)."""

from __future__ import annotations

import torch


class MeanModel(torch.nn.Module):
    """Losses that are batch means, as the world model's are: loss = mean(x), pred_loss = mean(x^2), x a batch's
    ``proprio`` values."""

    def forward(self, batch):
        x = batch["proprio"].flatten()
        return {"loss": x.mean(), "pred_loss": (x * x).mean()}
