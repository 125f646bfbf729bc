"""Tiny stand-ins for a dataset of windows and a world model's losses (trainer and validation tests)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class Windows(Dataset):
    """Window i carries the value i (as the "x" entry of a batch)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": torch.tensor([float(i)])}


class MeanModel(torch.nn.Module):
    """Losses that are batch means, as the world model's are: loss = mean(x), pred_loss = mean(x^2)."""

    def forward(self, batch):
        x = batch["x"].squeeze(-1)
        return {"loss": x.mean(), "pred_loss": (x * x).mean()}
