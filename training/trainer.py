"""The training loop: Accelerator from the config, epochs over cached features, validation, checkpoints."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from omegaconf import OmegaConf
from tqdm import tqdm

from models.factory import build_encoder, build_world_model
from models.visual_world_model import VWorldModel
from training.checkpoint import (
    latest_checkpoint,
    load_model_file,
    load_optim_file,
    load_train_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from training.data import load_run_info, prepare_data, write_run_info
from training.loss_meter import LossMeter
from training.run_config import changed_model_keys, frozen_config, same_path
from training.wandb_setup import init_wandb

log = logging.getLogger(__name__)

NONFINITE_EXIT = 3
DEBUG_TRAIN_BATCHES, DEBUG_VAL_BATCHES = 8, 4


class NonFiniteLoss(RuntimeError):
    pass


class RunMismatchError(RuntimeError):
    """The run dir's checkpoint does not belong to this config (other encoder weights or model shape)."""


def build_accelerator(cfg: Any) -> Accelerator:
    t = cfg.training
    return Accelerator(mixed_precision=str(t.mixed_precision), gradient_accumulation_steps=int(t.grad_accum),
                       cpu=not torch.cuda.is_available())


def load_trainable(model: VWorldModel, sd: dict[str, torch.Tensor]) -> None:
    """Load every trainable tensor strictly (the frozen encoder is not in checkpoints)."""
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.startswith("encoder.")]
    if missing or unexpected:
        raise RunMismatchError(f"checkpoint does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")


def check_resume_matches(run_dir: Path, cfg: Any, data_path: Path) -> None:
    """Resuming must keep the model and its data: raise RunMismatchError naming what changed."""
    info = load_run_info(run_dir)
    if info is None:
        return
    if "dataset_path" in info and not same_path(info["dataset_path"], data_path):
        raise RunMismatchError(f"this run trained on {info['dataset_path']}, not {data_path}: "
                               "resume with the same env.data_path, or use another hydra.run.dir")
    changed = changed_model_keys(info.get("config", {}), frozen_config(cfg)) if "config" in info else []
    if changed:
        raise RunMismatchError(f"resuming {run_dir} with a different model/data config ({', '.join(changed[:6])}): "
                               "only training.*, wandb.*, gpu settings and debug may change; use another hydra.run.dir")


def encoder_metadata(model: VWorldModel) -> dict[str, str]:
    e = model.encoder
    return {"encoder_name": e.name, "encoder_pretrained": str(e.pretrained).lower(),
            "encoder_weights_hash": e.weights_hash, "encoder_source": e.weights_source,
            "format": "dino-wm-robomimic/1"}


def checked_means(meter: LossMeter, accelerator: Accelerator, epoch: int, step: int) -> dict[str, float]:
    """The meter's means since its last flush (one host sync); NonFiniteLoss if any loss was NaN / inf."""
    means = meter.flush(accelerator)
    if means.get("nonfinite", 0) > 0:
        raise NonFiniteLoss(f"non-finite loss ({means['loss']}) at epoch {epoch + 1}, at or before step {step}")
    return means


def _to(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def validate(model: VWorldModel, loader, accelerator: Accelerator) -> dict[str, float]:
    """Mean losses over ``loader`` (all ranks): includes ``pred_loss`` and the ``copy_loss`` baseline."""
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    n = torch.zeros((), device=accelerator.device)
    for batch in loader:
        batch = _to(batch, accelerator.device)
        with accelerator.autocast():
            out = model(batch)
        bs = next(iter(batch.values())).shape[0]
        for k, v in out.items():
            sums[k] = sums.get(k, torch.zeros((), device=accelerator.device)) + v.float() * bs
        n += bs
    model.train(was_training)
    if not sums:
        return {}
    keys = sorted(sums)
    total = accelerator.reduce(torch.stack([sums[k] for k in keys] + [n]), reduction="sum")
    return {f"val/{k}": (total[i] / total[-1]).item() for i, k in enumerate(keys)}


def train(cfg: Any, run_dir: Path, data_path: Path) -> int:
    """Train (or resume) the run in ``run_dir``; returns the process exit code (0 ok, 3 non-finite loss)."""
    t = cfg.training
    accelerator = build_accelerator(cfg)
    main = accelerator.is_main_process
    ckpt = latest_checkpoint(run_dir)
    resuming = ckpt is not None
    if resuming:
        log.info("resuming from %s (training.resume=%s)", ckpt, t.resume)
    elif t.resume:
        log.warning("training.resume=true but %s has no checkpoint: starting from scratch", run_dir)
    if resuming:
        check_resume_matches(run_dir, cfg, data_path)
    set_seed(int(t.seed))
    encoder = build_encoder(cfg)
    data = prepare_data(cfg, data_path, run_dir, encoder, accelerator, resuming)
    model = build_world_model(cfg, data.episodes.meta.proprio_dim, data.episodes.meta.state_dim,
                              data.episodes.meta.action_dim, encoder=encoder)
    if main and not resuming:
        write_run_info(run_dir, {"dataset_path": str(data_path), "split": data.split,
                                 "dims": {"proprio_dim": data.episodes.meta.proprio_dim,
                                          "state_dim": data.episodes.meta.state_dim,
                                          "action_dim": data.episodes.meta.action_dim},
                                 "encoder": encoder_metadata(model), "config": frozen_config(cfg)})
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=float(t.lr), weight_decay=float(t.weight_decay),
                                  fused=accelerator.device.type == "cuda")  # one kernel per step on a GPU
    warmup = int(t.warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, warmup)))
    start_epoch, step, wandb_id = 0, 0, None
    if resuming:
        sd, meta = load_model_file(ckpt)
        if meta.get("encoder_weights_hash") != encoder.weights_hash:
            raise RunMismatchError(f"encoder weights hash {encoder.weights_hash} differs from the checkpoint's "
                               f"{meta.get('encoder_weights_hash')}: not the encoder this run trained with")
        load_trainable(model, sd)
        opt = load_optim_file(ckpt)
        optimizer.load_state_dict(opt["optimizer"])
        scheduler.load_state_dict(opt["scheduler"])
        st = load_train_state(ckpt)
        start_epoch, step, wandb_id = int(st["epoch"]), int(st["step"]), st.get("wandb_run_id")
        set_rng_state(st["rng"]["0"])
    epochs = 1 if cfg.debug else int(t.epochs)
    model, optimizer = accelerator.prepare(model, optimizer)
    raw: VWorldModel = accelerator.unwrap_model(model)
    n_trainable = sum(p.numel() for p in params)
    log.info("model: %d trainable parameters, %d patches, encoder %s (%s)", n_trainable, raw.encoder.num_patches,
             raw.encoder.name, "pretrained" if raw.encoder.pretrained else "RANDOM WEIGHTS")
    run = None
    if main:
        summary = {"encoder_pretrained": raw.encoder.pretrained, "encoder_weights_hash": raw.encoder.weights_hash,
                   "trainable_params": n_trainable}
        if not raw.encoder.pretrained:
            summary["WARNING"] = "encoder uses RANDOM weights (encoder.pretrained=false)"
        run = init_wandb(cfg.wandb, run_dir, OmegaConf.to_container(cfg, resolve=True), wandb_id, summary)
        wandb_id = run.id if run is not None else wandb_id
    world, rank = accelerator.num_processes, accelerator.process_index
    max_train = DEBUG_TRAIN_BATCHES if cfg.debug else None
    max_val = DEBUG_VAL_BATCHES if cfg.debug else None

    def checkpoint(epoch: int) -> None:
        rng = {"0": rng_state()}  # the main process's RNG (data order does not depend on it)
        if main:
            save_checkpoint(run_dir, step, raw.trainable_state_dict(),
                            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
                            {"epoch": epoch, "epochs": epochs, "rng": rng, "wandb_run_id": wandb_id,
                             "time": time.time()},
                            {**encoder_metadata(raw), "step": str(step), "epoch": str(epoch)})
        accelerator.wait_for_everyone()

    try:
        for epoch in range(start_epoch, epochs):
            model.train()
            loader = data.train_batches.epoch(epoch, int(t.seed), rank, world, True, max_train)
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", disable=not accelerator.is_local_main_process)
            t0, seen, meter = time.perf_counter(), 0, LossMeter()
            for batch in bar:
                batch = _to(batch, accelerator.device)
                with accelerator.accumulate(model):
                    with accelerator.autocast():
                        out = model(batch)
                    loss = out["loss"]
                    meter.add(out)  # on the device: the host reads the losses every log_every steps only
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and float(t.clip_grad) > 0:
                        accelerator.clip_grad_norm_(params, float(t.clip_grad))
                    optimizer.step()
                    if accelerator.sync_gradients:
                        scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                if accelerator.sync_gradients:
                    step += 1
                seen += next(iter(batch.values())).shape[0] * world
                sps = seen / max(1e-9, time.perf_counter() - t0)
                if accelerator.sync_gradients and step % int(t.log_every) == 0:
                    means = checked_means(meter, accelerator, epoch, step)
                    bar.set_postfix(loss=f"{means['loss']:.4f}", pred=f"{means['pred_loss']:.4f}")
                    if run is not None:
                        run.log({**{f"train/{k}": v for k, v in means.items() if k != "nonfinite"},
                                 "train/lr": scheduler.get_last_lr()[0], "train/samples_per_s": sps, "epoch": epoch},
                                step=step)
            checked_means(meter, accelerator, epoch, step)  # before validation and the checkpoint
            losses = [out[k].item() for k in ("loss", "pred_loss", "copy_loss")]  # waits for the last step
            sps = seen / max(1e-9, time.perf_counter() - t0)
            log.info("epoch %d/%d: step %d, last loss %.5f (pred %.5f, copy-last %.5f), %.1f samples/s", epoch + 1,
                     epochs, step, *losses, sps)
            last = epoch + 1 == epochs
            if data.val is not None and ((epoch + 1) % int(t.val_every) == 0 or last):
                vl = data.val_batches.epoch(0, int(t.seed), rank, world, False, max_val)
                metrics = validate(model, vl, accelerator)
                log.info("validation after epoch %d: next-latent MSE %.5f vs copy-last-frame baseline %.5f "
                         "(ratio %.3f)", epoch + 1, metrics["val/pred_loss"], metrics["val/copy_loss"],
                         metrics["val/pred_loss"] / max(metrics["val/copy_loss"], 1e-12))
                if run is not None:
                    run.log({**metrics, "epoch": epoch}, step=step)
                    _log_pictures(run, raw, data.val, accelerator.device, step)
            if (epoch + 1) % int(t.save_every) == 0 or last:
                checkpoint(epoch + 1)
    except NonFiniteLoss as e:
        prev = latest_checkpoint(run_dir)
        log.error("%s: stopping; the last good checkpoint is %s", e, prev if prev else "(none written yet)")
        if run is not None:
            run.summary["stopped"] = "non-finite loss"
            run.finish(exit_code=NONFINITE_EXIT)
        accelerator.end_training()
        return NONFINITE_EXIT
    except BaseException:  # any other failure: close wandb and the process group before re-raising
        if run is not None:
            run.finish(exit_code=1)
        accelerator.end_training()
        raise
    if run is not None:
        run.finish()
    accelerator.end_training()
    log.info("training finished: %s", latest_checkpoint(run_dir))
    return 0


@torch.no_grad()
def _log_pictures(run, model: VWorldModel, ds, device, step: int) -> None:
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
    run.log({"val/prediction": wandb.Image(grid.permute(1, 2, 0).clamp(0, 1).cpu().numpy())}, step=step)


def setup_file_logging(run_dir: Path, main: bool) -> None:
    if not main:
        return
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    fh = logging.FileHandler(run_dir / "logs" / "train.log")
    fh.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] %(message)s"))
    logging.getLogger().addHandler(fh)
    logging.getLogger().setLevel(logging.INFO)


def is_multiprocess() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1
