"""plan.py's planner, MPC and evaluation settings, built from the composed config in one place.

A bad planner setting, objective or MPC budget is refused in one line (``plan_setup.PlanError``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from plan_setup import PlanError, load_learned_cost, load_prior
from utils.errors import first_line

log = logging.getLogger("plan")


def build_planning(cfg: DictConfig, model, normalizer, fs: int, t0: int, device: str, checkpoint: str | None = None,
                   task=None):
    """(planner, MPC, EvalSettings, description) from the config; a bad planner setting or an MPC budget that runs
    past the goal is refused in one line (``planning.planners.factory.build_planner``, ``planning.execution.mpc_budget``).
    ``checkpoint``: the name of the checkpoint planned with (a rollout readout fitted on another is warned about).
    ``task``: the planned task (``tasks.Task``), whose MPC recipe ``mpc.n_taken_actions=auto`` applies: ``cfg`` is
    changed in place to the concrete settings, so the job's identity and outputs name what was planned."""
    from planning.execution.evaluator import EvalSettings
    from planning.execution.mpc import MPC

    if cfg.eval.success_metric not in ("task", "goal"):
        raise PlanError(f"eval.success_metric={cfg.eval.success_metric!r} is not one of task, goal")
    recipe = apply_mpc_recipe(cfg, task, model)
    objective, later_objective, ctg_info, readers = build_objectives(cfg, model, normalizer, device, checkpoint)
    planner, budget, prior_info = build_planner_and_budget(cfg, model, objective, device)
    if later_objective is not None and budget.iterations < 2:
        raise PlanError("mpc.later_objective needs re-plans after the first (mpc.n_taken_actions below goal_H, or a "
                        "schedule)")
    if later_objective is not None and getattr(planner, "objective", None) is None:
        raise PlanError(f"mpc.later_objective needs a planner that scores with an objective, not {planner.name}")
    mpc = MPC(planner, model, normalizer, fs, n_taken_actions=budget.n_taken_actions, max_iter=budget.iterations,
              shrink_horizon=bool(cfg.mpc.shrink_horizon), history_frames=t0, eef_scale=float(cfg.eef_scale),
              decode_imagined=bool(cfg.decode_imagined) and bool(getattr(model, "has_decoder", False)),
              device=device, progress=bool(cfg.progress), binary_gripper=bool(cfg.mpc.get("binary_gripper", False)),
              rank_reference=bool(cfg.eval.get("rank_reference", True)), later_objective=later_objective)
    settings = EvalSettings(frameskip=fs, history_frames=t0, success_metric=cfg.eval.success_metric,
                            goal_tolerance=float(cfg.eval.goal_tolerance),
                            gripper_tolerance=float(cfg.eval.get("gripper_tolerance", 0.01)))
    return planner, mpc, settings, {**planning_description(cfg, planner, mpc, prior_info), "learned_cost": ctg_info,
                                    "rollout_readout": readers.get("rollout", (None, None))[1], "mpc_recipe": recipe}


def build_objectives(cfg: DictConfig, model, normalizer, device: str, checkpoint: str | None):
    """(the objective, the later re-plans' objective or None, the learned cost's identity or None, the state readers
    used) from ``objective`` and ``mpc.later_objective``; a bad objective setting is refused in one line."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        ctg, ctg_info = (load_learned_cost(cfg, device) if float(cfg.objective.get("cost_to_go_weight", 0) or 0) > 0
                         else (None, None))
        extra = dict(cost_to_go=ctg, disagreement=getattr(model, "disagreement", None),
                     state_std=normalizer.state_std, alignment_dim=cfg.objective.alignment_dim
                     if cfg.objective.alignment_dim is not None else getattr(model, "alignment_dim", 0))
        later = later_objective_settings(cfg)
        specs = [OmegaConf.to_container(cfg.objective, resolve=True)]
        specs += [OmegaConf.to_container(OmegaConf.merge(cfg.objective, later), resolve=True)] if later else []
        wanted = [spec.pop("state_readout", None) or "model" for spec in specs]  # each objective's state reader
        readers = state_readers(cfg, model, wanted, device, checkpoint)
        objective, *rest = [instantiate(spec, state_reader=readers[which][0], **extra)
                            for spec, which in zip(specs, wanted)]
    except InstantiationException as exc:  # the objective's own check (e.g. an unknown mode), wrapped by Hydra
        raise PlanError(f"objective: {first_line(exc.__cause__ or exc)}") from exc
    return objective, (rest[0] if rest else None), ctg_info, readers


def build_planner_and_budget(cfg: DictConfig, model, objective, device: str):
    """(the planner, its ``MPCBudget``, the action prior's identity or None); a bad planner setting or a budget that
    runs past the goal is refused in one line."""
    from planning.execution.mpc_budget import MPCBudget
    from planning.planners.factory import build_planner

    try:
        budget = MPCBudget(goal_H=int(cfg.goal_H), n_taken_actions=n_taken_actions(cfg),
                           max_iter=None if cfg.mpc.max_iter is None else int(cfg.mpc.max_iter),
                           horizon=int(cfg.planner.horizon) if cfg.planner.get("horizon") is not None else None)
        spec = OmegaConf.to_container(cfg.planner, resolve=True)
        prior_info = None
        if "prior" in spec:
            spec["prior"], prior_info = load_prior(spec["prior"], Path(str(cfg.ckpt_base_path)).resolve(), device,
                                                   cfg.model_epoch)
        return build_planner(spec, model, objective), budget, prior_info
    except (ValueError, TypeError) as exc:
        raise PlanError(str(exc)) from exc


def apply_mpc_recipe(cfg: DictConfig, task, model) -> dict | None:
    """``mpc.n_taken_actions: auto`` made concrete, in ``cfg``: the task's measured schedule (``tasks.task.MPCRecipe``)
    and, for a planner that searches by cost (CEM, random shooting; not prior, replay or the baselines), its ``mpc.later_objective`` settings under the ones given
    (a key set on the command line wins). What was applied, for the summary; None when nothing was ``auto``.

    The recipe adapts to the run: a rollout readout it asks for is replaced by the run's own readout when the run has
    none (or plans as an ensemble), and its later state cost is left out when the model reads no state."""
    from models.rollout_readout import READOUT_DIR
    from planning.planners.factory import searches_by_cost
    from tasks.task import MPCRecipe

    taken = cfg.mpc.n_taken_actions
    if not (isinstance(taken, str) and taken == "auto"):
        return None
    recipe = task.mpc if task is not None else MPCRecipe()
    schedule = recipe.schedule(int(cfg.goal_H))
    later, notes = dict(recipe.later_objective), []
    try:
        scores = searches_by_cost(str(cfg.planner.get("_target_", "")))
    except ValueError:  # refused in one line when the planner is built
        scores = False
    replans = len(schedule) if isinstance(schedule, tuple) else int(cfg.goal_H)  # an int schedule is 1: every step
    if later and (replans < 2 or not scores
                  or not OmegaConf.is_dict(cfg.mpc.get("later_objective"))):
        later = {}  # one re-plan only, a planner that does not search by cost, or mpc.later_objective=null
    given = later_objective_settings(cfg)  # set on the command line: they win, and are the user's to check
    later = {key: value for key, value in later.items() if key not in given}
    if later.get("state_weight") and not getattr(model, "reads_state", False):
        later, notes = {}, [*notes, "the model reads no state: the later state cost is left out"]
    if later.get("state_readout") == "rollout" and (cfg.get("ensemble") or not (
            Path(str(cfg.ckpt_base_path)) / READOUT_DIR).is_dir()):
        later["state_readout"] = "model"
        notes.append(f"the run has no {READOUT_DIR}/ (python -m training.rollout_readout RUN) or plans as an ensemble: "
                     "the later state cost reads latents with the run's own readout")
    for note in notes:
        log.warning("mpc.n_taken_actions=auto (%s): %s", getattr(task, "name", "no task"), note)
    with open_dict(cfg):
        cfg.mpc.n_taken_actions = list(schedule) if isinstance(schedule, tuple) else schedule
        for key, value in later.items():
            cfg.mpc.later_objective[key] = value
    return {"task": getattr(task, "name", None), "n_taken_actions": OmegaConf.to_container(cfg.mpc, resolve=True)[
        "n_taken_actions"], "later_objective": later_objective_settings(cfg), "notes": notes}


def state_readers(cfg: DictConfig, model, wanted: list[str], device: str, checkpoint: str | None = None) -> dict:
    """{"model": (the world model's own read_state or None, None), "rollout": (the run's rollout readout, its identity)
    when ``wanted`` names it}: the state readers the objectives ask for (``objective.state_readout``, and
    ``mpc.later_objective.state_readout`` for the later re-plans); an unknown name is refused in one line."""
    from plan_setup import load_state_readout

    readers = {"model": (model.read_state if getattr(model, "reads_state", False) else None, None)}
    for which in wanted:
        if which not in ("model", "rollout"):
            raise PlanError(f"objective.state_readout={which!r} is not one of model (the run's own readout), rollout "
                            "(RUN/rollout_readout, python -m training.rollout_readout RUN)")
        if which == "rollout" and "rollout" not in readers:
            readers["rollout"] = load_state_readout(cfg, device, checkpoint)
    return readers


def n_taken_actions(cfg: DictConfig) -> int | tuple[int, ...]:
    """``mpc.n_taken_actions`` (after :func:`apply_mpc_recipe`): an int, or a schedule, the steps executed at each
    re-plan; ValueError (one line) for anything else."""
    taken = cfg.mpc.n_taken_actions
    try:
        if OmegaConf.is_list(taken):
            return tuple(int(n) for n in taken)
        if isinstance(taken, bool) or float(taken) != int(taken):
            raise ValueError
        return int(taken)
    except (TypeError, ValueError):
        raise ValueError(f"mpc.n_taken_actions={taken!r} is not a number of planning steps, a schedule ([6,1,1,1]) "
                         "or auto") from None


def later_objective_settings(cfg: DictConfig) -> dict:
    """The objective settings that ``mpc.later_objective`` changes for every re-plan after the first (its non-null
    keys; empty: every re-plan uses ``objective``)."""
    later = cfg.mpc.get("later_objective")
    if not OmegaConf.is_dict(later):
        return {}
    return {k: v for k, v in OmegaConf.to_container(later, resolve=True).items() if v is not None}


def planning_description(cfg: DictConfig, planner, mpc, prior_info: dict | None) -> dict:
    """How this evaluation planned, for summary.json, logs.json and the wandb config: the planner's resolved
    settings (its config without ``_target_``, plus the MPC's), what chose the actions, and the prior's identity."""
    settings = {k: v for k, v in OmegaConf.to_container(cfg.planner, resolve=True).items() if k != "_target_"}
    settings.update({"class": str(cfg.planner.get("_target_")), "n_taken_actions": mpc.n_taken, "max_iter": mpc.max_iter,
                     "binary_gripper": mpc.binary_gripper, "objective": {k: v for k, v in OmegaConf.to_container(
                         cfg.objective, resolve=True).items() if k != "_target_"}})
    if later_objective_settings(cfg):
        settings["later_objective"] = later_objective_settings(cfg)
    if prior_info is not None:
        settings["prior"] = prior_info["path"]
    chooser = ("world model" if planner.uses_model and prior_info is None else
               "action prior + world model" if planner.uses_model else "baseline (no model)")
    return {"planner_settings": settings, "action_prior": prior_info, "actions_chosen_by": chooser}
