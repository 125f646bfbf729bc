"""Train the DINO world model (80-D projected latent) on a converted robomimic dataset.

    python train_robomimic_compress.py env=demo_lift [env.data_path=DIR] [debug=true] [key=value ...]
    accelerate launch --config_file conf/accelerate/multi_gpu.yaml train_robomimic_compress.py [overrides]

The precision is ``training.mixed_precision``; ``accelerate launch --mixed_precision=X`` is honoured
when the config leaves it at ``no`` (a conflicting pair stops with one line). The old spelling
``model.gradient_checkpointing=true`` sets ``training.grad_checkpointing``.

Outputs go to the Hydra run dir (``outputs/<date>/<time>-<name>`` by default): ``.hydra/config.yaml``,
``checkpoints/step_XXXXXXXX/`` + ``checkpoints/latest``, ``normalizer.json``, ``run_info.json``,
``logs/train.log``, wandb files and ``action_prior/`` (the planner's goal-conditioned proposal,
``action_prior.train``; ``python -m training.action_prior RUN`` retrains it). Rerunning into a run dir
that holds a checkpoint (``hydra.run.dir=RUN``, ``training.resume=true`` optional) continues from ``latest``
with the run's own config (``run_info.json``): the first launch's overrides need not be repeated, and only
the keys given again change (``training.epochs=N`` to train further; the model and data cannot change).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from tasks.registry import all_tasks

# the task choices --help lists: the registry's (conf/hydra/help/train.yaml)
OmegaConf.register_new_resolver("registered_tasks", lambda: " | ".join(t.name for t in all_tasks()), replace=True)
log = logging.getLogger("train_robomimic_compress")


def _select_gpus(cfg: DictConfig) -> None:
    """GPU auto-selection before CUDA is initialised (single-process runs only)."""
    from training.trainer import is_multiprocess

    if not cfg.gpu.auto_select or is_multiprocess():
        return
    from gpu_utils import GpuSelectionError, select_gpus_for_run

    try:
        gpus = select_gpus_for_run(int(cfg.num_gpus), float(cfg.min_free_memory_gb), auto_select=True)
    except (GpuSelectionError, ValueError) as e:  # every GPU too full, or bad selection settings
        log.error("GPU selection: %s", e)
        sys.exit(2)
    log.info("GPUs selected: %s", gpus if gpus else "none (CPU)")


def _config_of_resumed_run(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> DictConfig | None:
    """None for a new run; for a run dir with a checkpoint, the run's config (``run_info.json``) plus the keys
    this command sets, with the old spellings and the launcher's precision applied (exit 2 if refused)."""
    from training.checkpoint import latest_checkpoint
    from training.compat import LAUNCHER_PRECISION, ConfigConflict, explicit_keys, reconcile_launch_settings
    from training.data import load_run_info

    try:
        info = load_run_info(run_dir) if latest_checkpoint(run_dir) is not None else None
    except ValueError as e:  # json.JSONDecodeError, UnicodeDecodeError
        log.error("resuming %s: its run_info.json is not readable JSON (%s)", run_dir, e)
        sys.exit(2)
    if not info or "config" not in info:
        return None
    from training.resume import RunMismatchError, check_resume_matches
    from training.run_config import ResumeOverrideError, resumed_config

    try:
        merged = resumed_config(info["config"], cfg, overrides)
        if (os.environ.get(LAUNCHER_PRECISION, "no") != "no"
                and "training.mixed_precision" not in explicit_keys(overrides)):
            merged.training.mixed_precision = "no"  # accelerate launch --mixed_precision=X picks it, as on a first launch
        reconcile_launch_settings(merged, overrides)
        check_resume_matches(run_dir, merged, Path(to_absolute_path(str(merged.env.data_path))))
    except (ResumeOverrideError, RunMismatchError, ConfigConflict) as e:
        log.error("%s%s", f"resuming {run_dir}: " if isinstance(e, ResumeOverrideError) else "", e)
        sys.exit(2)
    given = [o for o in overrides if not o.lstrip("+~").startswith("hydra.")]
    log.info("resuming %s with the run's own config (run_info.json)%s", run_dir,
             f", set again here: {' '.join(given)}" if given else "")
    return merged


def _refuse_bad_settings(cfg: DictConfig) -> None:
    """Exit 2 with one line for a value that would fail later, before anything is written."""
    from models.factory import check_encoder_name
    from training.model_config import apply_task, encoder_spec
    from training.settings_check import check_training_settings
    from utils.torch_compile import compile_mode
    from utils.wandb_mode import check_mode

    try:
        compile_mode(cfg.training.get("compile", "auto"), "cpu", "default")
    except ValueError as e:
        log.error("training.compile: %s", e)
        sys.exit(2)
    try:
        apply_task(cfg)  # task= is a registered task; a null alignment_dim becomes the task's
        check_training_settings(cfg)
        check_encoder_name(encoder_spec(cfg).name)
        check_mode(cfg.wandb.get("mode"))
    except ValueError as e:
        log.error("%s", e)
        sys.exit(2)


def _refuse_unreadable_meta(data_path: Path, cfg: DictConfig, check_task: bool) -> None:
    """Exit 2 with one line when the dataset's meta.json cannot be read (truncated, hand-edited, old format)
    or holds another registered task's data than ``task=`` names."""
    from datasets.meta import DatasetMeta
    from tasks.registry import task_for_env
    from utils.errors import first_line

    try:
        meta = DatasetMeta.load(data_path)
    except (ValueError, KeyError, TypeError) as e:  # json.JSONDecodeError is a ValueError
        log.error("env.data_path=%s: meta.json is not readable (%s); convert the dataset again", data_path,
                  first_line(e))
        sys.exit(2)
    data_task, chosen = task_for_env(meta.env_name), cfg.get("task", {}).get("name")
    if check_task and data_task is not None and chosen and data_task.name != chosen:
        log.error("task=%s, but env.data_path=%s holds %s data (task=%s): give the task of the data", chosen,
                  data_path, meta.env_name, data_task.name)
        sys.exit(2)


@hydra.main(version_base="1.3", config_path="conf", config_name="train_robomimic_compress")
def main(cfg: DictConfig) -> None:
    started = time.time()  # what this launch writes is newer (a refused one leaves no run dir behind)
    run_dir = Path(HydraConfig.get().runtime.output_dir).resolve()
    try:
        _train(cfg, run_dir)
    except SystemExit as e:
        if e.code == 2 and int(os.environ.get("RANK", "0")) == 0:  # refused: the run dir as it was before
            from training.resume import restore_hydra_config
            from utils.run_dirs import remove_refused_run_dir

            if not remove_refused_run_dir(run_dir, started):
                restore_hydra_config(run_dir)
        raise


def _train(cfg: DictConfig, run_dir: Path) -> None:
    from training.trainer import is_multiprocess, setup_file_logging

    main_process = int(os.environ.get("RANK", "0")) == 0
    setup_file_logging(run_dir, main_process)
    overrides = list(HydraConfig.get().overrides.task)
    resumed = _config_of_resumed_run(cfg, run_dir, overrides)
    cfg = resumed if resumed is not None else cfg
    _refuse_bad_settings(cfg)
    data_path = Path(to_absolute_path(str(cfg.env.data_path)))
    if not (data_path / "meta.json").is_file():
        log.error("env.data_path=%s is not a converted dataset directory (no meta.json); convert one with "
                  "convert_robomimic_to_dino_wm.py or run ./setup_and_prepare.sh --demo", data_path)
        sys.exit(2)
    _refuse_unreadable_meta(data_path, cfg, check_task=resumed is None)  # a resume's data was checked against the run
    if resumed is None:  # a resume's config has them applied already (_config_of_resumed_run)
        from training.compat import ConfigConflict, reconcile_launch_settings

        try:  # old spellings (model.gradient_checkpointing) and accelerate launch --mixed_precision
            reconcile_launch_settings(cfg, overrides)
        except ConfigConflict as e:
            log.error("%s", e)
            sys.exit(2)
    _select_gpus(cfg)
    if resumed is not None and main_process:  # accepted: what this resume changed stays for the next one
        from training.resume import record_resumed_config

        record_resumed_config(run_dir, cfg)
    from training.distributed import NotSharedError
    from training.trainer import RunMismatchError, train

    try:
        code = train(cfg, run_dir, data_path)
    except (FileNotFoundError, RunMismatchError, NotSharedError) as e:
        # no DINOv2 weights reachable; resuming another run; a run dir or cache not shared by all nodes
        log.error("%s", e)
        sys.exit(2)
    if code:
        sys.exit(code)
    if int(os.environ.get("RANK", "0")) == 0:
        fit_learned_heads(cfg, run_dir)
    log.info("run dir: %s%s", run_dir, " (multi-process)" if is_multiprocess() else "")


DEBUG_HEAD_STEPS = 50  # ``debug=true``: the learned heads are fitted this many steps at most (a run that only checks)


def fit_learned_heads(cfg: DictConfig, run_dir: Path) -> None:
    """After the world model, on its frozen latents: the learned cost-to-go (``cost_to_go.train``) and the action
    prior (``action_prior.train``), on the device training ran on (the selected GPU when CUDA is there); a
    ``debug=true`` run fits each for ``DEBUG_HEAD_STEPS`` steps at most, as its one epoch is short."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"

    def steps(head: DictConfig) -> int:
        return min(int(head.steps), DEBUG_HEAD_STEPS) if cfg.get("debug") else int(head.steps)

    if cfg.get("cost_to_go") and cfg.cost_to_go.train:
        from training.cost_to_go import fit_after_training

        fit_after_training(run_dir, steps(cfg.cost_to_go), device)
    if cfg.get("action_prior") and cfg.action_prior.train:
        from training.action_prior import fit_after_training

        fit_after_training(run_dir, steps(cfg.action_prior), device)


if __name__ == "__main__":
    from utils.config_choices import unknown_choice

    if (bad := unknown_choice(sys.argv[1:], Path(__file__).resolve().parent / "conf")) is not None:
        print(f"error: {bad}", file=sys.stderr)
        sys.exit(2)
    main()
