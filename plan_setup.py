"""What a planning job plans with and on: the training run, its world model (or an ensemble of runs), the learned
heads a planner or objective loads from the run (action prior, cost-to-go), and the episodes it is evaluated on.
``plan.py`` runs the job; bad input here is a one-line :class:`PlanError`."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from utils.errors import first_line

log = logging.getLogger("plan")


class PlanError(Exception):
    """Bad input: reported as one line, exit code 2."""


def load_run_and_data(cfg: DictConfig, device: str):
    """(the run, its world model in eval mode with its rollouts compiled as ``compile`` says, the dataset planned
    on: ``dataset_path`` or the run's own); a missing or unreadable run or dataset is a one-line PlanError."""
    import torch

    from datasets.robomimic_dset import RobomimicEpisodes
    from models.image_encoder import views_of

    torch.manual_seed(int(cfg.seed))
    run = load_run(cfg, str(cfg.ckpt_base_path), cfg.model_epoch, device)
    model = run.model
    try:
        data = RobomimicEpisodes(cfg.dataset_path or run.dataset_path)
    except (OSError, ValueError, KeyError) as exc:
        raise PlanError(f"dataset {cfg.dataset_path or run.dataset_path}: {first_line(exc)}") from exc
    views = views_of(model.encoder)
    if data.meta.views != views:
        raise PlanError(f"dataset {cfg.dataset_path or run.dataset_path} holds {data.meta.views} camera view(s) "
                        f"per frame ({' + '.join(data.meta.frame_cameras)}); the run {cfg.ckpt_base_path} was "
                        f"trained on {views}: plan on a dataset converted with the run's cameras")
    return run, model, data


def load_run(cfg: DictConfig, path: str, model_epoch, device: str):
    """The training run at ``path`` with its world model in eval mode, rollouts compiled as ``compile`` says; a
    missing or unreadable run is a one-line PlanError."""
    from safetensors import SafetensorError

    from training.run_dir.run_loading import load_world_model

    try:
        run = load_world_model(path, model_epoch=model_epoch, device=device)
    except FileNotFoundError as exc:  # no such checkpoint (model_epoch), or not a run dir
        raise PlanError(str(exc)) from exc
    except (ValueError, KeyError, RuntimeError, SafetensorError) as exc:  # unreadable or mismatched run files
        raise PlanError(f"cannot load the run {path}: {first_line(exc)}") from exc
    run.model.eval()
    compile_rollouts(cfg, run.model, device)
    return run


def with_ensemble(cfg: DictConfig, run, model, device: str):
    """(the model planned with, the other members' runs): ``ensemble`` lists more runs trained on the same data and
    split with other seeds; with it the model is a ``planning.ensemble.WorldModelEnsemble`` of the run and those.
    A member that cannot load or does not match the run is a one-line PlanError."""
    paths = list(cfg.get("ensemble") or [])
    if not paths:
        return model, []
    from planning.ensemble import WorldModelEnsemble

    members, models = [], [model]
    for path in paths:
        if not Path(str(path)).is_dir():
            raise PlanError(f"ensemble member {path!r} is not a training run directory")
        member = load_run(cfg, str(path), "latest", device)
        if member.split != run.split or Path(member.dataset_path).resolve() != Path(run.dataset_path).resolve():
            raise PlanError(f"ensemble member {path} was trained on another dataset or split than {cfg.ckpt_base_path}: "
                            "train members with training.split_seed set to the run's split seed")
        members.append(member)
        models.append(member.model)
    try:
        return WorldModelEnsemble(models), members
    except ValueError as exc:
        raise PlanError(str(exc)) from exc


def ensemble_description(members: list) -> list[dict]:
    """The other ensemble members' identities (run dir, checkpoint, step) for the outputs and the job identity."""
    return [{"dir": str(Path(str(m.checkpoint_dir)).resolve().parent.parent), "checkpoint": str(Path(m.checkpoint_dir).resolve()),
             "step": m.step} for m in members]


def compile_rollouts(cfg: DictConfig, model, device: str) -> None:
    """``compile`` (auto: on CUDA, mode default): the predictor compiled for rollouts; a bad value is refused."""
    from utils.torch_compile import PLANNING_AUTO_MODE, compile_mode

    try:
        mode = compile_mode(cfg.get("compile", "auto"), str(device).split(":")[0], PLANNING_AUTO_MODE)
    except ValueError as exc:
        raise PlanError(str(exc)) from exc
    if mode is not None and hasattr(model, "compile_for_rollouts"):
        log.info("compiling the predictor for rollouts (torch.compile mode %s): the first re-plans of each "
                 "batch size wait for it", mode)
        model.compile_for_rollouts(mode)


def _file_sha256(path: Path) -> str:
    """sha256 of a file's bytes: the identity a plan's outputs give the learned parts it loaded."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_learned_cost(cfg: DictConfig, device: str):
    """The run's learned cost-to-go (``RUN/cost_to_go``) for ``objective.cost_to_go_weight`` > 0, and its identity
    (path, sha256 of its weights: a refit one is another job); PlanError when it has none or it is damaged."""
    from models.cost_to_go import CTG_DIR, WEIGHTS_FILE, load_cost_to_go

    path = Path(str(cfg.ckpt_base_path)).resolve() / CTG_DIR
    try:
        model = load_cost_to_go(path, device)
    except (FileNotFoundError, ValueError) as exc:
        raise PlanError(f"objective.cost_to_go_weight={cfg.objective.cost_to_go_weight}: {exc}") from exc
    return model, {"path": str(path), "sha256": _file_sha256(path / WEIGHTS_FILE)}


def load_state_readout(cfg: DictConfig, device: str, checkpoint: str | None = None):
    """The run's rollout readout (``RUN/rollout_readout``) for ``objective.state_readout=rollout``, and its identity
    (path, sha256 of its weights, the checkpoint it was fitted on); PlanError when it has none or it is damaged. A
    readout fitted on another checkpoint than ``checkpoint`` (the one planned with) reads another model's rollouts:
    that is said in a warning (it still loads)."""
    import json

    from models.rollout_readout import CONFIG_FILE, READOUT_DIR, WEIGHTS_FILE, load_rollout_readout

    if cfg.get("ensemble"):
        raise PlanError("objective.state_readout=rollout reads one run's rollouts, not an ensemble's (drop ensemble, or "
                        "use state_readout=model)")
    path = Path(str(cfg.ckpt_base_path)).resolve() / READOUT_DIR
    try:
        reader = load_rollout_readout(path, device)
    except (FileNotFoundError, ValueError) as exc:
        raise PlanError(f"objective.state_readout=rollout: {exc}") from exc
    fitted_on = json.loads((path / CONFIG_FILE).read_text()).get("world_model_checkpoint")
    if checkpoint is not None and fitted_on is not None and fitted_on != checkpoint:
        log.warning("the rollout readout %s was fitted on %s, the plan uses %s: refit it (python -m "
                    "training.rollout_readout %s)", path, fitted_on, checkpoint, cfg.ckpt_base_path)
    return reader, {"path": str(path), "sha256": _file_sha256(path / WEIGHTS_FILE),
                    "world_model_checkpoint": fitted_on}


def load_prior(spec, run_dir: Path, device: str, model_epoch="latest"):
    """``planner.prior``: null (none) | auto (``RUN/action_prior`` when it exists) | a prior directory.

    Returns (the prior or None, its identity or None): path, sha256 of its weights, the checkpoint it was fitted
    on and its validation MSE. A prior fitted on another checkpoint than the one planned with (``model_epoch``)
    reads latents of another projection: that is said in a warning (it still loads)."""
    import json

    from models.action_prior import CONFIG_FILE, PRIOR_DIR, WEIGHTS_FILE, load_action_prior
    from training.run_dir.checkpoint import resolve_checkpoint

    if spec is None or str(spec).lower() in ("none", "null", "false"):
        return None, None
    path = run_dir / PRIOR_DIR if str(spec) == "auto" else Path(str(spec)).expanduser().resolve()
    if not path.is_dir():
        raise PlanError(f"planner.prior={spec}: {path} is not a directory (train a prior with "
                        f"python -m training.action_prior {run_dir}; planner=cem plans without one)")
    try:
        prior = load_action_prior(path, device)
    except (FileNotFoundError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise PlanError(f"planner.prior={spec}: {exc}") from exc
    saved = json.loads((path / CONFIG_FILE).read_text())
    fitted_on = saved.get("world_model_checkpoint")
    planned_with = resolve_checkpoint(run_dir, model_epoch).name
    if fitted_on and fitted_on != planned_with:
        log.warning("action prior %s was fitted on checkpoint %s, planning uses %s: refit it with "
                    "python -m training.action_prior %s", path, fitted_on, planned_with, run_dir)
    log.info("action prior: %s", path)
    identity = {"path": str(path), "sha256": _file_sha256(path / WEIGHTS_FILE),
                "fitted_on_checkpoint": fitted_on, "val_mse": (saved.get("losses") or {}).get("val_mse"),
                "steps": saved.get("steps")}
    return prior, identity


def episode_pool(cfg: DictConfig, run, data) -> list[int]:
    """The episodes to plan on, less those that do not end in a task success (no goal).

    On the run's own dataset: its ``episodes.split`` episodes (``test`` by default: never trained or tuned on).
    On another dataset (``dataset_path`` from another source or generator): all of its episodes, since none of
    them was seen in training (the run's split indices mean nothing there).
    """
    foreign = is_foreign_dataset(cfg, run, data)
    if foreign:
        pool = list(range(len(data)))
        log.info("dataset_path %s is not the run's training data: planning on all of its %d episodes",
                 cfg.dataset_path, len(pool))
    else:
        split = str(cfg.episodes.split)
        pool = list(run.split.get(split) or [])
        if not pool:  # never fall back to the training episodes silently: that would evaluate on seen data
            hint = ("the run was trained before test splits existed: pass episodes.split=val, or plan on another "
                    "dataset with dataset_path=" if split == "test" and "test" not in run.split else
                    "pass episodes.split=train to plan on training episodes")
            raise PlanError(f"the run has no {split!r} episodes to plan on (its split: "
                            f"{ {k: len(v) for k, v in run.split.items()} }); {hint}")
    pool = [i for i in pool if not data.meta.is_exploration(i)]  # branches are no demonstrations: no goals
    if not cfg.episodes.get("success_goals_only", True):
        return pool
    from envs.robosuite_env import RobosuiteEnv
    from planning.execution.evaluator import successful_episodes

    checker = RobosuiteEnv.from_meta(data.meta, render=False)
    try:
        kept = successful_episodes(checker, data, pool)
    finally:
        checker.close()
    what = "dataset" if foreign else str(cfg.episodes.split)
    if len(kept) < len(pool):
        log.info("%d of %d %s episodes end in a task success and are used as goals", len(kept), len(pool), what)
    if not kept:
        raise PlanError(f"none of the {len(pool)} {what} episodes ends in a task success")
    return kept


def is_foreign_dataset(cfg: DictConfig, run, data) -> bool:
    """Whether ``dataset_path`` names another dataset than the one the run was trained on (another source file,
    not a copy of the same conversion)."""
    if not cfg.dataset_path or Path(str(cfg.dataset_path)).resolve() == Path(run.dataset_path).resolve():
        return False
    from datasets.meta import DatasetMeta

    try:
        trained = DatasetMeta.load(run.dataset_path)
    except (OSError, ValueError, KeyError):
        return True  # the training data is gone: nothing says the two are the same
    return (trained.source_sha256, trained.n_episodes) != (data.meta.source_sha256, data.meta.n_episodes)


def evaluation_specs(cfg: DictConfig, run, data, fs: int, t0: int) -> tuple[list, list]:
    """(all n_evals evaluation specs, this shard's) from the episode pool."""
    from planning.execution.episodes import select_episodes, shard

    pool = episode_pool(cfg, run, data)
    try:
        specs = select_episodes([data.seq_len(i) for i in range(len(data))], pool, int(cfg.n_evals), int(cfg.goal_H),
                                fs, int(cfg.seed), start_mode=cfg.episodes.start_mode, min_start=(t0 - 1) * fs)
        mine = shard(specs, int(cfg.shard.index), int(cfg.shard.count))
    except ValueError as exc:
        raise PlanError(str(exc)) from exc
    pairs = len({(s.episode, s.start, s.goal) for s in specs})
    if pairs < len(specs):
        log.warning("n_evals=%d but the %d eligible episodes give only %d distinct start/goal pairs: the other "
                    "evaluations repeat pairs with another planner seed, and the summary's intervals count %d",
                    len(specs), len({s.episode for s in specs}), pairs, pairs)
    return specs, mine


def pool_name(cfg: DictConfig, run, data) -> str:
    """Where the evaluations' episodes came from: the run's split, or all of another dataset."""
    return f"all of {cfg.dataset_path}" if is_foreign_dataset(cfg, run, data) else f"{cfg.episodes.split} split"
