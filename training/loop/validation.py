"""Validation: the mean losses over every validation window of all ranks, and the decoder's pictures."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

from models.visual_world_model import VWorldModel
from training.loop.batches import batch_to
from training.loop.wandb_setup import StepLog


@torch.no_grad()
def validate(model: VWorldModel, loader, accelerator: Accelerator) -> dict[str, float]:
    """Mean losses over every validation window of all ranks (``pred_loss`` and the ``copy_loss`` baseline).

    ``model`` is the unwrapped model: ranks may hold different numbers of windows, and a DDP forward
    could wait for the others. The per-rank sums are gathered once at the end.
    """
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    n = 0
    for batch in loader:
        batch = batch_to(batch, accelerator.device)
        with accelerator.autocast():
            out = model(batch)
        bs = next(iter(batch.values())).shape[0]
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + v.detach().double() * bs
        n += bs
    model.train(was_training)
    mine = ({k: float(v) for k, v in sums.items()}, n)
    parts = gather_object([mine]) if accelerator.num_processes > 1 else [mine]
    total_n = sum(p[1] for p in parts)
    keys = sorted({k for p in parts for k in p[0]})
    return {f"val/{k}": sum(p[0].get(k, 0.0) for p in parts) / max(total_n, 1) for k in keys}


@torch.no_grad()
def log_prediction_pictures(wandb_log: StepLog, model: VWorldModel, ds, device, step: int) -> None:
    """Decoder pictures (true frames / reconstructions / predictions) for the first val window."""
    if not model.has_decoder or "visual" not in ds[0]:
        return
    import wandb

    item = {k: v[None].to(device) for k, v in ds[0].items()}
    h = model.num_hist
    obs0 = {k: item[k][:, :h] for k in ("features", "visual", "proprio") if k in item}
    z = model.rollout(obs0, item["action"][:, :h])  # [1, h + 1, P, 64]
    rec = model.decode(z)[0]  # [h + 1, 3, S, S]
    true = torch.nn.functional.interpolate(item["visual"][0, : h + 1], size=rec.shape[-2:], mode="bilinear")
    grid = torch.cat([torch.cat(list(true), -1), torch.cat(list(rec), -1)], -2)
    wandb_log.log("pictures", {"val/prediction": wandb.Image(grid.permute(1, 2, 0).clamp(0, 1).cpu().numpy())}, step)
