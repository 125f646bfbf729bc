"""Train the DINO world model (80-D projected latent) on a converted robomimic dataset.

    python train_robomimic_compress.py env=demo [env.data_path=DIR] [debug=true] [key=value ...]
    accelerate launch --config_file conf/accelerate/multi_gpu.yaml train_robomimic_compress.py [overrides]

The precision is ``training.mixed_precision``; ``accelerate launch --mixed_precision=X`` is honoured
when the config leaves it at ``no`` (a conflicting pair stops with one line).

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
    from training.loop.distributed import is_multiprocess

    if not cfg.gpu.auto_select or is_multiprocess():
        return
    from gpu_utils import GpuSelectionError, select_gpus_for_run

    try:
        gpus = select_gpus_for_run(int(cfg.num_gpus), float(cfg.min_free_memory_gb), auto_select=True)
    except (GpuSelectionError, ValueError) as e:  # every GPU too full, or bad selection settings
        log.error("GPU selection: %s", e)
        sys.exit(2)
    log.info("GPUs selected: %s", gpus if gpus else "none (CPU)")


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
    from training.loop.distributed import is_main_process

    started = time.time()  # what this launch writes is newer (a refused one leaves no run dir behind)
    run_dir = Path(HydraConfig.get().runtime.output_dir).resolve()
    try:
        _train(cfg, run_dir)
    except SystemExit as e:
        if e.code == 2 and is_main_process():  # refused: the run dir as it was before
            from training.run_dir.launch import put_back

            put_back(run_dir, started)
        raise


def _train(cfg: DictConfig, run_dir: Path) -> None:
    from training.loop.distributed import is_main_process, is_multiprocess
    from training.loop.trainer import setup_file_logging
    from training.run_dir.launch import LaunchRefused, open_launch

    main_process = is_main_process()
    setup_file_logging(run_dir, main_process)
    try:  # a new run, or the resume of the run in run_dir with its own config
        launch = open_launch(cfg, run_dir, list(HydraConfig.get().overrides.task))
    except LaunchRefused as e:
        log.error("%s", e)
        sys.exit(2)
    cfg = launch.cfg
    _refuse_bad_settings(cfg)
    data_path = Path(to_absolute_path(str(cfg.env.data_path)))
    if not (data_path / "meta.json").is_file():
        log.error("env.data_path=%s is not a converted dataset directory (no meta.json); convert one with "
                  "convert_robomimic_to_dino_wm.py or run ./setup_and_prepare.sh --demo", data_path)
        sys.exit(2)
    _refuse_unreadable_meta(data_path, cfg, check_task=not launch.resumed)  # a resume's data was checked against the run
    _select_gpus(cfg)
    if main_process:  # accepted: what this resume changed stays for the next one
        launch.keep()
    from training.loop.distributed import NotSharedError
    from training.loop.trainer import train
    from training.run_dir.resume import RunMismatchError

    try:
        code = train(cfg, run_dir, data_path)
    except (FileNotFoundError, RunMismatchError, NotSharedError) as e:
        # no DINOv2 weights reachable; resuming another run; a run dir or cache not shared by all nodes
        log.error("%s", e)
        sys.exit(2)
    if code:
        sys.exit(code)
    if main_process:
        fit_learned_heads(cfg, run_dir)
    log.info("run dir: %s%s", run_dir, " (multi-process)" if is_multiprocess() else "")


DEBUG_HEAD_STEPS = 50  # ``debug=true``: the learned heads are fitted this many steps at most (a run that only checks)


def fit_learned_heads(cfg: DictConfig, run_dir: Path) -> None:
    """After the world model, on its frozen latents: the learned cost-to-go (``cost_to_go.train``), the action
    prior (``action_prior.train``) and the rollout readout (``rollout_readout.train``), on the device training ran on (the selected GPU when CUDA is there); a
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
    if cfg.get("rollout_readout") and cfg.rollout_readout.train:
        from training.rollout_readout import fit_after_training

        head = cfg.rollout_readout
        fit_after_training(run_dir, steps(head), int(head.horizon), int(head.max_starts), device)


# keys of the project this one replaces, under the names they have here: one line naming today's
RENAMED_KEYS = {"model.gradient_checkpointing": "training.grad_checkpointing"}

if __name__ == "__main__":
    from utils.config_choices import renamed_key, unknown_choice

    conf = Path(__file__).resolve().parent / "conf"
    if (bad := unknown_choice(sys.argv[1:], conf) or renamed_key(sys.argv[1:], RENAMED_KEYS)) is not None:
        print(f"error: {bad}", file=sys.stderr)
        sys.exit(2)
    main()
