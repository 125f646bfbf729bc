"""Planning evaluations on the wandb dashboard, beside the training run they evaluate.

One wandb run per evaluation (a ``plan.py`` job, or ``planning.reporting.merge`` of a job's shards; a shard
alone logs nothing):

* ``group`` = the training run's name (its wandb run name), ``job_type`` = ``plan``, ``name`` =
  ``<planner>_gH<H>``, ``tags`` = [planner, ``gH<H>``, ``model_step=<step>``];
* ``config`` = the planning config + ``ckpt_base_path``, ``checkpoint`` (the checkpoint dir),
  ``model_step``, ``planner``, ``goal_H``, the training run's wandb id;
* ``summary`` = every scalar of ``summary.json`` (success_rate, goal_reached_rate, mean final
  object / eef / latent distances, planning seconds, n_evals, model_step, ...) and ``encoder``
  (``pretrained`` / ``random``);
* ``episodes`` = a table with one row per evaluation (the scalars of its ``logs.json`` record);
* ``media/video`` and ``media/eef_plot`` = each evaluation's executed-vs-goal video and end-effector
  plot, logged at step ``eval_index`` (a slider in the panel), and ``media/success`` = the success plot;
* an input artifact: the checkpoint it planned with, ``checkpoint-<training run id>`` (built again from
  the checkpoint's files, so it is the version the training run logged: the lineage graph reads
  dataset -> training run -> checkpoint -> evaluation; :mod:`utils.wandb_artifacts`).

``planning.reporting.merge --by goal_H`` logs one more run (``job_type`` = ``horizon_study``) with the table
and the success-vs-goal_H plot. ``wandb.log_to_training_run=true`` also writes
``eval/<planner>/gH<H>/success`` (and ``.../goal_reached``) into the training run's own summary.

Modes as in training (``wandb.mode``): null = online with an API key, offline without (files in
``<output dir>/wandb/offline-run-*``, uploaded later with ``wandb sync``), ``disabled`` = nothing is
imported or written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from utils.wandb_artifacts import checkpoint_artifact, use_artifact
from utils.wandb_mode import resolve_mode

log = logging.getLogger(__name__)
_SCALAR = (bool, int, float, str)


def start_run(wcfg: dict, out_dir: Path, *, name: str, group: str | None, job_type: str, config: dict,
              tags: list[str] | None = None):
    """A new wandb run writing under ``out_dir/wandb`` (None when the mode is ``disabled``)."""
    mode = resolve_mode(wcfg.get("mode"))
    if mode == "disabled":
        return None
    import wandb

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=wcfg.get("project") or "dino-wm-robomimic", entity=wcfg.get("entity"), mode=mode,
                     dir=str(out_dir), name=name, group=group, job_type=job_type, tags=tags, config=config,
                     reinit="finish_previous", settings=wandb.Settings(console="off", silent=True))
    if mode == "offline":
        log.info("wandb offline: upload later with `wandb sync %s`", run.dir.rsplit("/files", 1)[0])
    return run


def scalars(d: dict) -> dict[str, Any]:
    """The entries of ``d`` that are scalars (lists, dicts and None left out)."""
    return {k: v for k, v in d.items() if isinstance(v, _SCALAR)}


def encoder_label(info: dict) -> str:
    return {True: "pretrained", False: "random"}.get(info.get("encoder_pretrained"), "unknown")


def episode_table(records: list[dict]):
    """wandb.Table of the scalar fields of every record (columns in the first record's order)."""
    import wandb

    cols: list[str] = []
    for rec in records:
        cols += [k for k, v in rec.items() if isinstance(v, _SCALAR) and k not in cols]
    return wandb.Table(columns=cols, data=[[rec.get(c) for c in cols] for rec in records])


def log_evaluation(wcfg: dict, out_dir: Path, info: dict, summary: dict, records: list[dict], config: dict,
                   media_dir: Callable[[dict], Path]) -> str | None:
    """One wandb run for one evaluation; returns its id (None when disabled).

    Args:
        wcfg: the ``wandb`` config group (project, entity, mode, group).
        out_dir: the evaluation's output dir (wandb files go to ``out_dir/wandb``).
        info / summary / records: as in ``logs.json`` / ``summary.json``.
        config: the planning config (a plain dict).
        media_dir: record -> the dir its ``video`` / ``eef_plot`` paths are relative to.
    """
    planner, goal_h, step = info.get("planner"), info.get("goal_H"), info.get("model_step")
    run = start_run(wcfg, out_dir, name=f"{planner}_gH{goal_h}", group=wcfg.get("group") or info.get("train_run_name"),
                    job_type="plan", tags=[str(planner), f"gH{goal_h}", f"model_step={step}"],
                    config={**config, "planner_name": planner, "model_step": step, "checkpoint": info.get("checkpoint"),
                            "encoder": encoder_label(info), "train_run": info.get("train_run"),
                            "n_evals_planned": len(records), "planner_settings": info.get("planner_settings"),
                            "action_prior": info.get("action_prior"), "actions_chosen_by": info.get("actions_chosen_by"),
                            "episode_pool": info.get("episode_pool")})
    if run is None:
        return None
    import wandb

    try:
        use_checkpoint(run, info)
        run.summary.update({**scalars(summary), "encoder": encoder_label(info)})
        recs = sorted(records, key=lambda r: r["eval_index"])
        run.log({"episodes": episode_table(recs)}, step=0)
        for rec in recs:
            media, root = {}, media_dir(rec)
            caption = f"eval {rec['eval_index']} (episode {rec['episode']}): {'success' if rec['success'] else 'failure'}"
            if rec.get("video") and (root / rec["video"]).is_file():
                media["media/video"] = wandb.Video(str(root / rec["video"]), format="mp4", caption=caption)
            if rec.get("eef_plot") and (root / rec["eef_plot"]).is_file():
                media["media/eef_plot"] = wandb.Image(str(root / rec["eef_plot"]), caption=caption)
            if media:
                run.log(media, step=int(rec["eval_index"]))
        success_png = Path(out_dir) / "plots" / "success.png"
        if success_png.is_file():
            run.log({"media/success": wandb.Image(str(success_png))})
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()
    return run.id


def use_checkpoint(run, info: dict) -> str | None:
    """Declare the evaluated checkpoint (``info["checkpoint"]``) an input of ``run``, as the artifact of the
    training run whose wandb id ``info["train_run"]`` holds; its name, or None when there is nothing to link
    (a run trained with wandb disabled, a checkpoint no longer on disk)."""
    ckpt, train_id = info.get("checkpoint"), (info.get("train_run") or {}).get("wandb_id")
    if not ckpt or not train_id or not Path(ckpt).is_dir():
        log.info("wandb: the checkpoint is not linked to this evaluation (%s)",
                 "no checkpoint dir on disk" if train_id else "its training run has no wandb run")
        return None
    art = checkpoint_artifact(ckpt, train_id, info.get("model_step"))
    use_artifact(run, art)
    return art.name


def log_horizon_study(wcfg: dict, out_dir: Path, rows: list[dict], key: str, plot: Path | None,
                      group: str | None) -> str | None:
    """One wandb run with the ``--by key`` table (and its plot); returns its id (None when disabled)."""
    planners = sorted({str(r.get("planner")) for r in rows})
    run = start_run(wcfg, out_dir, name=f"{key}_study_{'+'.join(planners)}", group=wcfg.get("group") or group,
                    job_type=f"{key}_study", tags=[*planners, f"{key}_study"], config={"by": key, "n_rows": len(rows)})
    if run is None:
        return None
    import wandb

    cols = list(rows[0]) if rows else [key]
    run.log({f"{key}_table": wandb.Table(columns=cols, data=[[r.get(c) for c in cols] for r in rows])})
    if plot is not None and Path(plot).is_file():
        run.log({f"success_vs_{key}": wandb.Image(str(plot))})
    run.finish()
    return run.id


def log_to_training_run(wcfg: dict, info: dict, summary: dict) -> bool:
    """Write ``eval/<planner>/gH<H>/{success,goal_reached}`` into the training run's wandb summary.

    Resumes the training run (its id from the checkpoint's train_state.json) for a moment, with its
    files in the training run dir. Returns False (with a warning) when that run has no wandb id.
    """
    tr = info.get("train_run") or {}
    if not tr.get("wandb_id"):
        log.warning("wandb.log_to_training_run: the training run %s has no wandb run (trained with wandb "
                    "disabled?): nothing written into it", info.get("ckpt_base_path"))
        return False
    mode = resolve_mode(wcfg.get("mode"))
    if mode == "disabled":
        return False
    import wandb

    run = wandb.init(project=tr.get("project") or wcfg.get("project"), entity=tr.get("entity") or wcfg.get("entity"),
                     id=tr["wandb_id"], resume="allow", mode=mode, dir=str(tr.get("dir") or "."),
                     reinit="finish_previous", settings=wandb.Settings(console="off", silent=True))
    prefix = f"eval/{info.get('planner')}/gH{info.get('goal_H')}"
    run.summary.update({f"{prefix}/success": summary["success_rate"],
                        f"{prefix}/goal_reached": summary.get("goal_reached_rate"),
                        f"{prefix}/n_evals": summary["n_evals"], f"{prefix}/model_step": info.get("model_step")})
    run.finish()
    return True
