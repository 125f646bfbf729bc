"""The training loop: Accelerator from the config, epochs over cached features, validation, checkpoints.

``train`` = :func:`setup` (resume point, data, model, optimizer, wandb), then per epoch
:func:`run_epoch` and :func:`end_of_epoch` (validation, checkpoint). Gradient accumulation is done here,
not by Accelerate: a group of ``grad_accum`` micro-batches makes one optimizer step, and the last,
shorter group of an epoch is stepped at the epoch end (its gradient is the mean over the group), so
nothing carries into the next epoch.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from omegaconf import OmegaConf

from datasets.meta import DatasetMeta
from models.visual_world_model import VWorldModel
from training.loop.batches import batch_to, validation_batches
from training.loop.data import TrainData, prepare_data
from training.loop.distributed import check_shared_run_dir, gather_rng_states, leave_together
from training.loop.loss_meter import LossMeter
from training.loop.validation import log_prediction_pictures, validate
from training.loop.wandb_setup import StepLog, init_wandb, log_checkpoint
from training.model_config import encoder_from_cfg, world_model_from_cfg
from training.run_dir.checkpoint import latest_checkpoint, save_checkpoint
from training.run_dir.resume import Restored, find_resume_point, restore
from training.run_dir.run_config import frozen_config
from training.run_dir.run_info import write_run_info
from utils.progress import progress

log = logging.getLogger(__name__)

NONFINITE_EXIT = 3
DEBUG_TRAIN_BATCHES, DEBUG_VAL_BATCHES = 8, 4


class NonFiniteLoss(RuntimeError):
    pass


@dataclass
class Session:
    """Everything one training run holds between epochs."""

    cfg: Any
    run_dir: Path
    accelerator: Accelerator
    data: TrainData
    model: Any            # the prepared (possibly DDP-wrapped) model
    raw: VWorldModel      # the same model unwrapped
    params: list[torch.nn.Parameter]
    optimizer: Any
    scheduler: Any
    epochs: int
    start_epoch: int
    step: int
    wandb_id: str | None = None
    wandb: StepLog | None = None
    compiled: Any = None  # ``model`` through torch.compile (training.compile), or None: eager
    compile_checked: bool = False  # the first compiled steps have succeeded (see ``CHECKED_STEPS``)
    compile_mode: str | None = None  # the torch.compile mode of ``compiled``
    compiled_steps: int = 0


def build_accelerator(cfg: Any) -> Accelerator:
    """Precision from the Hydra config; accumulation is done by the loop (see the module docstring)."""
    return Accelerator(mixed_precision=str(cfg.training.mixed_precision), cpu=not torch.cuda.is_available())


def encoder_metadata(model: VWorldModel) -> dict[str, str]:
    e = model.encoder
    return {"encoder_name": e.name, "encoder_pretrained": str(e.pretrained).lower(),
            "encoder_weights_hash": e.weights_hash, "encoder_source": e.weights_source,
            "format": "dino-wm-robomimic/1"}


def setup(cfg: Any, run_dir: Path, data_path: Path, accelerator: Accelerator) -> Session:
    """Resume point, data, model, optimizer and scheduler (restored when resuming), prepared for training."""
    t = cfg.training
    check_shared_run_dir(run_dir, accelerator)
    ckpt = find_resume_point(run_dir, cfg, data_path, accelerator)
    set_seed(int(t.seed))
    views = DatasetMeta.load(data_path).views  # cameras side by side in each frame
    encoder = encoder_from_cfg(cfg, views)
    data = prepare_data(cfg, data_path, run_dir, encoder, accelerator, ckpt is not None)
    dims = {"proprio_dim": data.episodes.meta.proprio_dim, "state_dim": data.episodes.meta.state_dim,
            "action_dim": data.episodes.meta.action_dim, "views": views}
    model = world_model_from_cfg(cfg, dims["proprio_dim"], dims["state_dim"], dims["action_dim"], encoder=encoder,
                                 views=views)
    if accelerator.is_main_process and ckpt is None:
        write_run_info(run_dir, {"dataset_path": str(data_path), "split": data.split, "dims": dims,
                                 "encoder": encoder_metadata(model), "config": frozen_config(cfg)})
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=float(t.lr), weight_decay=float(t.weight_decay),
                                  fused=accelerator.device.type == "cuda")  # one kernel per step on a GPU
    warmup = int(t.warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, warmup)))
    start = restore(ckpt, model, optimizer, scheduler, accelerator) if ckpt is not None else Restored()
    prepared, optimizer = accelerator.prepare(model, optimizer)
    mode = compile_mode_for(cfg, accelerator)
    s = Session(cfg, run_dir, accelerator, data, prepared, accelerator.unwrap_model(prepared), params, optimizer,
                scheduler, 1 if cfg.debug else int(t.epochs), start.epoch, start.step, start.wandb_run_id,
                compiled=compiled_model(cfg, prepared, mode), compile_mode=mode)
    _start_logging(s)
    return s


def compile_mode_for(cfg: Any, accelerator: Accelerator) -> str | None:
    """The torch.compile mode ``training.compile`` asks for here (auto: on one CUDA device without gradient
    accumulation, reduce-overhead; with either, default), or None: eager."""
    from utils.torch_compile import training_compile_mode

    mode, note = training_compile_mode(cfg.training.get("compile", "auto"), accelerator.device.type,
                                       max(1, int(cfg.training.grad_accum)), accelerator.num_processes)
    if note:
        log.warning(note)
    return mode


def compiled_model(cfg: Any, model: torch.nn.Module, mode: str | None):
    """``model`` through ``torch.compile`` in ``mode``, or None when ``mode`` is None (eager).

    The compiled module shares the model's parameters; it runs the full-size training batches only. The
    shorter last batch of an epoch and validation use the eager model, so the forward and backward are
    compiled once, for one batch shape, on the first step (tens of seconds on a GPU). Mode
    reduce-overhead also replays them as CUDA graphs; their outputs (the losses, the gradients) are read
    before the next step replays (:func:`utils.torch_compile.mark_step`)."""
    if mode is None:
        return None
    log.info("training step compiled with torch.compile (mode %s): the first step waits for it", mode)
    return torch.compile(model, mode=mode, backend=str(cfg.training.get("compile_backend", "inductor")))


def _start_logging(s: Session) -> None:
    """One log line about the model; the wandb run (main process), resumed when the checkpoint names one."""
    raw = s.raw
    n_trainable = sum(p.numel() for p in s.params)
    log.info("model: %d trainable parameters, %d patches, encoder %s (%s)", n_trainable, raw.encoder.num_patches,
             raw.encoder.name, "pretrained" if raw.encoder.pretrained else "RANDOM WEIGHTS")
    if not s.accelerator.is_main_process:
        return
    summary = {"encoder_pretrained": raw.encoder.pretrained, "encoder_weights_hash": raw.encoder.weights_hash,
               "trainable_params": n_trainable}
    if not raw.encoder.pretrained:
        summary["WARNING"] = "encoder uses RANDOM weights (encoder.pretrained=false)"
    run = init_wandb(s.cfg.wandb, s.run_dir, OmegaConf.to_container(s.cfg, resolve=True), s.wandb_id, summary)
    if run is not None:
        s.wandb_id, s.wandb = run.id, StepLog(run, s.run_dir)


def accumulation_group(i: int, n_batches: int, grad_accum: int) -> tuple[int, bool]:
    """(size of the group micro-batch ``i`` belongs to, whether the optimizer steps after it)."""
    start = i - i % grad_accum
    size = min(grad_accum, n_batches - start)
    return size, i == start + size - 1


CHECKED_STEPS = 3  # compiled steps tried with a fallback: CUDA graphs are recorded on the 2nd, replayed from the 3rd


def train_step(s: Session, batch: dict[str, torch.Tensor], group_size: int, sync: bool, epoch: int):
    """Forward + backward of one micro-batch (loss / group_size); the optimizer step when ``sync``.

    Full-size batches go through the compiled model when there is one. Should one of the first compiled
    steps fail (compiling: e.g. no working Triton for this GPU; recording or replaying its CUDA graphs),
    that step is redone and training goes on eagerly after one warning."""
    from utils.torch_compile import mark_step

    full = next(iter(batch.values())).shape[0] == int(s.cfg.training.batch_size)
    if s.compiled is None or not full:
        return _train_step(s, s.model, batch, group_size, sync)
    mark_step(s.compile_mode)
    if s.compile_checked:
        return _train_step(s, s.compiled, batch, group_size, sync)
    try:
        out = _train_step(s, s.compiled, batch, group_size, sync)
    except Exception as exc:  # noqa: BLE001 - compiler failures come as many exception types
        log.warning("torch.compile failed on compiled training step %d, training continues eagerly "
                    "(training.compile=false skips compiling): %s", s.compiled_steps + 1,
                    str(exc).strip().splitlines()[0][:300])
        s.compiled = None
        s.optimizer.zero_grad(set_to_none=True)
        return _train_step(s, s.model, batch, group_size, sync)
    s.compiled_steps += 1
    s.compile_checked = s.compiled_steps >= CHECKED_STEPS
    return out


def _train_step(s: Session, forward, batch: dict[str, torch.Tensor], group_size: int, sync: bool):
    acc = s.accelerator
    with contextlib.nullcontext() if sync else acc.no_sync(s.model):
        with acc.autocast():
            out = forward(batch)
        loss = out["loss"]
        acc.backward(loss / group_size)
    if sync:
        clip = float(s.cfg.training.clip_grad)
        if clip > 0:
            acc.clip_grad_norm_(s.params, clip)
        s.optimizer.step()
        if not acc.optimizer_step_was_skipped:  # fp16: the GradScaler skipped a step with inf/NaN gradients
            s.scheduler.step()
        s.optimizer.zero_grad(set_to_none=True)
        s.step += 1
    return out


def checked_means(meter: LossMeter, accelerator: Accelerator, epoch: int, step: int) -> dict[str, float]:
    """The meter's means since its last flush (one host sync); NonFiniteLoss if any loss was NaN / inf."""
    means = meter.flush(accelerator)
    if means.get("nonfinite", 0) > 0:
        raise NonFiniteLoss(f"non-finite loss ({means['loss']}) at epoch {epoch + 1}, at or before step {step}")
    return means


def run_epoch(s: Session, epoch: int) -> None:
    """One pass over this rank's share of the training windows.

    Losses are summed on the device (``LossMeter``): the host reads them every ``log_every`` steps and at
    the end of the epoch only, so the GPU is never stalled by a per-step sync."""
    t, acc = s.cfg.training, s.accelerator
    world = acc.num_processes
    s.model.train()
    loader = s.data.train_batches.epoch(epoch, int(t.seed), acc.process_index, world, True,
                                        DEBUG_TRAIN_BATCHES if s.cfg.debug else None)
    n, accum = len(loader), max(1, int(t.grad_accum))
    bar = progress(loader, desc=f"epoch {epoch + 1}/{s.epochs}", unit="batch",
                   disable=not acc.is_local_main_process)
    t0, seen, sps, meter, means = time.perf_counter(), 0, 0.0, LossMeter(), None
    for i, batch in enumerate(bar):
        batch = batch_to(batch, acc.device)
        group, sync = accumulation_group(i, n, accum)
        out = train_step(s, batch, group, sync, epoch)
        meter.add(out)
        seen += next(iter(batch.values())).shape[0] * world
        sps = seen / max(1e-9, time.perf_counter() - t0)
        if sync and s.step % int(t.log_every) == 0:
            means = checked_means(meter, acc, epoch, s.step)
            bar.set_postfix(loss=f"{means['loss']:.4f}", pred=f"{means['pred_loss']:.4f}")
            if s.wandb is not None:
                s.wandb.log("train", {**{f"train/{k}": v for k, v in means.items() if k != "nonfinite"},
                                      "train/lr": s.scheduler.get_last_lr()[0], "train/samples_per_s": sps,
                                      "epoch": epoch}, s.step)
    means = checked_means(meter, acc, epoch, s.step) or means  # before validation and the checkpoint
    sps = seen / max(1e-9, time.perf_counter() - t0)  # after that sync: every queued step has run
    if means:
        log.info("epoch %d/%d: step %d, mean loss %.5f (pred %.5f, copy-last %.5f), %.1f samples/s", epoch + 1,
                 s.epochs, s.step, means["loss"], means["pred_loss"], means["copy_loss"], sps)


def end_of_epoch(s: Session, epoch: int) -> None:
    """Validation and a checkpoint when due (always after the last epoch)."""
    t = s.cfg.training
    last = epoch + 1 == s.epochs
    if s.data.val is not None and ((epoch + 1) % int(t.val_every) == 0 or last):
        run_validation(s, epoch)
    if (epoch + 1) % int(t.save_every) == 0 or last:
        checkpoint(s, epoch + 1)


def run_validation(s: Session, epoch: int) -> None:
    acc = s.accelerator
    loader = validation_batches(s.data.val_batches, acc.process_index, acc.num_processes,
                                DEBUG_VAL_BATCHES if s.cfg.debug else None)
    metrics = validate(s.raw, loader, acc)
    log.info("validation after epoch %d: next-latent MSE %.5f vs copy-last-frame baseline %.5f (ratio %.3f)",
             epoch + 1, metrics["val/pred_loss"], metrics["val/copy_loss"],
             metrics["val/pred_loss"] / max(metrics["val/copy_loss"], 1e-12))
    if s.wandb is not None:
        s.wandb.log("val", {**metrics, "epoch": epoch}, s.step)
        log_prediction_pictures(s.wandb, s.raw, s.data.val, acc.device, s.step)


def checkpoint(s: Session, epoch: int) -> None:
    """Save ``checkpoints/step_<step>`` (main process) with every rank's RNG state; all ranks wait for it."""
    acc = s.accelerator
    rng = gather_rng_states(acc)
    if acc.is_main_process:
        optim = {"optimizer": s.optimizer.state_dict(), "scheduler": s.scheduler.state_dict(),
                 "scaler": acc.scaler.state_dict() if acc.scaler is not None else None}
        saved = save_checkpoint(s.run_dir, s.step, s.raw.trainable_state_dict(), optim,
                                {"epoch": epoch, "epochs": s.epochs, "rng": rng, "wandb_run_id": s.wandb_id,
                                 "time": time.time()},
                                {**encoder_metadata(s.raw), "step": str(s.step), "epoch": str(epoch)})
        log_checkpoint(saved, s.step, s.wandb_id)  # an artifact of the training run's wandb run
    acc.wait_for_everyone()


def train(cfg: Any, run_dir: Path, data_path: Path) -> int:
    """Train (or resume) the run in ``run_dir``; returns the process exit code (0 ok, 3 non-finite loss)."""
    accelerator = build_accelerator(cfg)
    s: Session | None = None
    try:
        s = setup(cfg, run_dir, data_path, accelerator)
        for epoch in range(s.start_epoch, s.epochs):
            run_epoch(s, epoch)
            end_of_epoch(s, epoch)
    except NonFiniteLoss as e:
        prev = latest_checkpoint(run_dir)
        log.error("%s: stopping; the last good checkpoint is %s", e, prev if prev else "(none written yet)")
        _close_wandb(s, NONFINITE_EXIT, "non-finite loss")
        accelerator.end_training()
        return NONFINITE_EXIT
    except BaseException:  # any other failure: close wandb and the process group before re-raising
        _close_wandb(s, 1)
        accelerator.end_training()
        raise
    _close_wandb(s, 0)
    del s  # the session holds the (DDP-wrapped) model, whose reducer holds the process group
    leave_together(accelerator)
    log.info("training finished: %s", latest_checkpoint(run_dir))
    return 0


def _close_wandb(s: Session | None, code: int, why: str | None = None) -> None:
    run = s.wandb.run if s is not None and s.wandb is not None else None
    if run is None:
        return
    if why:
        run.summary["stopped"] = why
    if code:
        run.finish(exit_code=code)
    else:
        run.finish()


def setup_file_logging(run_dir: Path, main: bool) -> None:
    if not main:
        return
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    fh = logging.FileHandler(run_dir / "logs" / "train.log")
    fh.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] %(message)s"))
    logging.getLogger().addHandler(fh)
    logging.getLogger().setLevel(logging.INFO)
