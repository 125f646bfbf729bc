#!/usr/bin/env python
"""Plan with a trained DINO world model in robosuite: batched CEM + MPC, with random / replay baselines.

    python plan.py ckpt_base_path=outputs/.../run n_evals=10 goal_H=5
    python plan.py ckpt_base_path=RUN planner=random   # or replay
    python plan.py -m ... goal_H=3,5,8                  # horizon study; then python -m planning.reporting.merge --by goal_H DIR
    python plan.py ... shard.index=0 shard.count=2      # one of 2 shards; python -m planning.reporting.merge A B --out OUT

Writes ``hydra.run.dir`` (default ``plan_outputs/<timestamp>_<name>_gH<H>/``): logs.json, summary.json,
videos/eval_XXX_epY.mp4, plots/*.png (and actions/eval_XXX_epY.npz with outputs.actions=true). See conf/plan.yaml
for every key.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from plan_build import build_planning
from plan_setup import (
    PlanError,
    ensemble_description,
    evaluation_specs,
    load_run_and_data,
    pool_name,
    with_ensemble,
)
from planning.reporting.outputs import OutputError
from tasks import task_for_env

OmegaConf.register_new_resolver("basename", lambda p: Path(str(p)).name if p else "model", replace=True)
log = logging.getLogger("plan")


class JobStopped(Exception):
    """The job stopped part-way (a CUDA out-of-memory error): one line, exit code 1; the finished batches are kept
    and the same command resumes."""


def pick_device(cfg: DictConfig) -> str:
    """GPU through gpu_utils (before CUDA is initialised) or CPU; ``device: cpu`` forces the CPU."""
    if str(cfg.device) != "auto":
        from utils.torch_device import usable_device

        try:
            return str(usable_device(str(cfg.device)))
        except ValueError as exc:
            raise PlanError(str(exc)) from exc
    from gpu_utils import GpuSelectionError, select_gpus_for_run

    try:
        ids = select_gpus_for_run(num_gpus=1, min_free_memory_gb=float(cfg.gpu.min_free_memory_gb),
                                  auto_select=bool(cfg.gpu.auto_select))
    except (GpuSelectionError, ValueError) as exc:  # every GPU too full, or bad selection settings
        raise PlanError(str(exc)) from exc
    return f"cuda:{ids[0]}" if ids else "cpu"


def check_settings(cfg: DictConfig) -> None:
    """PlanError for a setting that is wrong before anything is loaded (the run dir, counts, sources, wandb)."""
    ckpt = cfg.ckpt_base_path
    if not ckpt or not Path(str(ckpt)).is_dir():
        raise PlanError(f"ckpt_base_path {ckpt!r} is not a training run directory")
    for key in ("goal_H", "n_evals"):  # as int(...) reads them: 5, 5.0, "5" (an env interpolation)
        value = cfg.get(key)
        try:
            whole = not isinstance(value, bool) and float(value) == int(float(value)) and int(float(value)) >= 1
        except (TypeError, ValueError, OverflowError):
            whole = False
        if not whole:
            raise PlanError(f"{key}={value!r} must be a whole number >= 1")
    if cfg.goal_source != "dset":
        raise PlanError(f"goal_source {cfg.goal_source!r} is not supported (only 'dset')")
    if not isinstance(cfg.get("resume", True), bool):
        raise PlanError(f"resume={cfg.get('resume')!r} must be true or false")
    from utils.wandb_mode import check_mode

    try:
        check_mode(cfg.wandb.get("mode"))
    except ValueError as exc:
        raise PlanError(str(exc)) from exc


def run_plan(cfg: DictConfig, out_dir: Path) -> dict:
    """The whole evaluation of one (shard of a) planning job; returns the summary.

    A job resumes: the evaluations finished by an earlier launch into ``out_dir`` (``batches/``) are kept and the
    others planned; a different job's evaluations there are refused in one line (``planning.execution.resume``)."""
    check_settings(cfg)
    device = pick_device(cfg)

    from envs.robosuite_env import RobosuiteEnv
    from planning.execution.report import BatchOutOfMemory, OutputWriter, run_batches, save_results

    run, model, data = load_run_and_data(cfg, device)
    model, members = with_ensemble(cfg, run, model, device)
    fs, t0 = int(model.frameskip), int(cfg.history_frames or model.num_hist)
    specs, mine = evaluation_specs(cfg, run, data, fs, t0)
    planner, mpc, settings, described = build_planning(cfg, model, run.normalizer, fs, t0, device,
                                                       Path(run.checkpoint_dir).name, task_for_env(data.meta.env_name))
    described = {**described, "ensemble": ensemble_description(members)}
    job = open_job(cfg, out_dir, run, data, mine, described)  # only reads: a refused job leaves the dir as it was
    todo = [s for s in mine if s.eval_index not in job.finished]
    batch, estimate = pick_batch_size(cfg, model, planner, len(todo) or 1, mpc.budget_steps * fs, data,
                                      earlier=job.earlier_batch_size)
    job.begin(batch, device)  # this launch's first write
    if job.finished:
        log.info("resuming: %d of the %d evaluations of this job are finished in %s (batches/), planning the other %d",
                 len(job.finished), len(mine), out_dir, len(todo))
    log.info("planning %d of %d evaluations (shard %d/%d) with %s on %s, goal_H=%d (%d env steps), %d re-plans, "
             "%d evaluations at a time", len(todo), len(specs), cfg.shard.index, cfg.shard.count, planner.name, device,
             cfg.goal_H, cfg.goal_H * fs, mpc.max_iter, batch)
    writer = OutputWriter(out_dir, cfg, planner.name, int(cfg.goal_H), with_imagined=mpc.decode_imagined,
                          dataset=(data.path.resolve().name, len(data)))

    def finish_batch(records, traces, goals) -> None:  # videos and plots first, then the batch counts as finished
        seconds, failed = writer.write_batch(records, traces, goals)
        path = job.commit(records, batch, device, seconds, failed)
        log.info("evaluations %s finished (%d of %d): %s", [r["eval_index"] for r in records], len(job.finished),
                 len(mine), path.relative_to(out_dir))

    try:
        run_batches(lambda: RobosuiteEnv.from_meta(data.meta, render=True), model, run.normalizer, data, todo, mpc,
                    settings, device, batch_size=batch, progress=bool(cfg.progress), on_batch=finish_batch)
    except BatchOutOfMemory as exc:
        raise JobStopped(out_of_memory_message(exc, device, estimate, len(job.finished), len(mine), out_dir)) from exc
    records = job.records()
    failed_before = len(writer.errors)  # those of the batches are in their files (job.output_errors)
    writer.finish(records)
    errors = [*job.output_errors(), *writer.errors[failed_before:]]
    info = {**run_info(cfg, run, planner.name, fs, data.meta.env_name, device), **described,
            "episode_pool": pool_name(cfg, run, data)}
    try:  # the results first, whatever fails next
        summary = save_results(out_dir, cfg, info, records, job.outputs_seconds(), errors)
    except OSError as exc:
        raise OutputError(f"could not write the results into {out_dir}: {exc}") from exc
    publish_once(cfg, job, out_dir, info, summary, records)
    writer.raise_if_failed(errors)
    return summary


def pick_batch_size(cfg: DictConfig, model, planner, n: int, env_steps: int, data, earlier: int | None = None):
    """``cfg.batch_size`` (auto or a number) checked against the memory available (see planning.execution.memory).

    ``earlier``: the batch size of the job's latest earlier launch, which ``auto`` keeps while it fits (a resumed
    job plans the same evaluations together as an uninterrupted one). Returns (batch size, the memory estimate of
    a batch size)."""
    from planning.execution import memory

    episode = (env_steps + 1) * int(data.meta.image_size) ** 2 * data.meta.views * 3 * 4  # trace frames + panels
    rollout = memory.rollout_bytes(model, int(cfg.planner.get("horizon", 1))) if planner.uses_model else 0
    estimate = memory.estimator(memory.resident_bytes(), episode, rollout, int(getattr(planner, "num_samples", 1)),
                                int(getattr(planner, "chunk_size", 4096)))
    available = memory.available_bytes()
    if earlier and str(cfg.batch_size) == "auto":
        try:
            return memory.choose_batch_size(int(earlier), n, estimate, available), estimate
        except ValueError:
            log.info("the earlier launches' batch_size=%d does not fit now: batch_size=auto", earlier)
    try:
        return memory.choose_batch_size(cfg.batch_size, n, estimate, available), estimate
    except ValueError as exc:
        raise PlanError(str(exc)) from exc


def open_job(cfg: DictConfig, out_dir: Path, run, data, mine: list, described: dict):
    """The job in ``out_dir`` (``planning.execution.resume.PlanJob``) checked against this launch: its finished
    evaluations, or a PlanError when the dir holds another job's (nothing is written here)."""
    from planning.execution.resume import PlanJob, ResumeError, job_identity

    config = OmegaConf.to_container(cfg, resolve=True)
    config["ckpt_base_path"] = str(Path(str(cfg.ckpt_base_path)).resolve())
    config["ensemble"] = [m["checkpoint"] for m in described.get("ensemble") or []]  # which members, at which step
    if described.get("rollout_readout"):  # a refit readout is another job (absent otherwise: older jobs resume)
        config["rollout_readout_sha256"] = described["rollout_readout"]["sha256"]
    if cfg.dataset_path:
        config["dataset_path"] = str(Path(str(cfg.dataset_path)).resolve())
    identity = job_identity(config, checkpoint=str(Path(run.checkpoint_dir).resolve()),
                            model_step=getattr(run, "step", None), evaluations=[s.to_dict() for s in mine],
                            action_prior_sha256=(described.get("action_prior") or {}).get("sha256"),
                            learned_cost_sha256=(described.get("learned_cost") or {}).get("sha256"),
                            dataset_sha256=getattr(data.meta, "source_sha256", None))
    job = PlanJob(out_dir)
    try:
        job.check(identity, resume=bool(cfg.get("resume", True)))
    except ResumeError as exc:
        raise PlanError(str(exc)) from exc
    return job


def batch_size_after_oom(exc, device: str, estimate) -> tuple[int, float]:
    """(the largest batch size below the failed one that should fit, the bytes one evaluation needs).

    On a GPU from what it held: bytes allocated before the batch, at most during it and the request that failed,
    over the batch's evaluations, against the memory this process can have there (free + what torch holds).
    Otherwise (no CUDA statistics) from ``planning.execution.memory``'s estimate against the available memory."""
    from planning.execution import memory

    if exc.base is not None and exc.peak is not None:
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        budget = memory.HEADROOM * (free + torch.cuda.memory_reserved(device))
        per_env = max(1, exc.peak + (exc.wanted or 0) - exc.base) / exc.size

        def need(b: int) -> float:
            return exc.base + b * per_env
    else:
        budget, per_env, need = memory.HEADROOM * memory.available_bytes(), estimate(2) - estimate(1), estimate
    return max((b for b in range(1, exc.size) if need(b) <= budget), default=0), float(per_env)


def out_of_memory_message(exc, device: str, estimate, finished: int, total: int, out_dir: Path) -> str:
    """The one line of a job stopped by a CUDA out-of-memory error: the batch size that fits, what is kept."""
    fits, per_env = batch_size_after_oom(exc, device, estimate)
    kept = f"the {finished} finished evaluations are kept in {out_dir}"
    head = (f"CUDA out of memory planning {exc.size} evaluations together on {device} (about "
            f"{per_env / 2 ** 30:.1f} GB each)")
    if fits:
        return (f"{head}: batch_size={fits} should fit; rerun the same command with batch_size={fits} to plan the "
                f"other {total - finished} ({kept})")
    return (f"{head}: not even batch_size=1 fits in the memory free there; free the GPU or plan on the CPU "
            f"(device=cpu), the same command resumes ({kept})")


def run_info(cfg: DictConfig, run, planner: str, fs: int, env_name: str, device: str) -> dict:
    """Run-level fields of logs.json / summary.json (and the wandb config): model, checkpoint, training run."""
    ckpt = Path(str(cfg.ckpt_base_path)).resolve()
    twb = run.cfg.get("wandb") or {}
    train_name = str(twb.get("name") or run.cfg.get("name") or ckpt.name)
    train_run = {"name": train_name, "dir": str(ckpt), "project": twb.get("project"), "entity": twb.get("entity"),
                 "wandb_id": getattr(run, "wandb_run_id", None)}
    return {"planner": planner, "goal_H": int(cfg.goal_H), "frameskip": fs, "model": ckpt.name,
            "ckpt_base_path": str(ckpt), "model_epoch": str(cfg.model_epoch), "model_step": getattr(run, "step", None),
            "checkpoint": str(Path(run.checkpoint_dir).resolve()), "env_name": env_name, "success_metric": cfg.eval.success_metric,
            "n_evals_requested": int(cfg.n_evals),
            "encoder_pretrained": getattr(getattr(run.model, "encoder", None), "pretrained", None),
            "shard": {"index": int(cfg.shard.index), "count": int(cfg.shard.count)}, "device": device,
            "train_run_name": train_name, "train_run": train_run}


def publish(cfg: DictConfig, out_dir: Path, info: dict, summary: dict, records: list[dict]) -> None:
    """The evaluation on wandb (not for a shard: ``planning.reporting.merge`` logs the merged result once)."""
    from planning.reporting import wandb_log

    wcfg = OmegaConf.to_container(cfg.wandb, resolve=True)
    if int(cfg.shard.count) > 1:
        log.info("shard %d/%d: nothing logged to wandb (python -m planning.reporting.merge logs the merged result)",
                 cfg.shard.index, cfg.shard.count)
        return
    config = OmegaConf.to_container(cfg, resolve=True)
    try:
        wandb_log.log_evaluation(wcfg, out_dir, info, summary, records, config, media_dir=lambda rec: out_dir)
        if wcfg.get("log_to_training_run"):
            wandb_log.log_to_training_run(wcfg, info, summary)
    except Exception as exc:  # wandb's own errors (no network, bad key, ...): the files are written already
        raise OutputError(f"could not log to wandb: {type(exc).__name__}: {exc}; the results are saved in "
                          f"{out_dir}") from exc


def publish_once(cfg: DictConfig, job, out_dir: Path, info: dict, summary: dict, records: list[dict]) -> None:
    """:func:`publish`, unless an earlier launch of this job logged its result in the same wandb mode (a rerun of
    a finished job); recorded in job.json once it is logged."""
    from utils.wandb_mode import resolve_mode

    mode = resolve_mode(cfg.wandb.get("mode"))
    logs = int(cfg.shard.count) <= 1 and mode != "disabled"
    if logs and job.logged_to_wandb(mode):
        log.info("wandb: this result was logged by an earlier launch (mode %s): not logged again", mode)
        return
    publish(cfg, out_dir, info, summary, records)
    if logs:
        job.mark_logged_to_wandb(mode)


def result_line(summary: dict) -> str:
    """The one line plan.py prints: what planned, the rate with its interval, n and the distinct episodes."""
    enc = "" if summary.get("encoder_pretrained") is not False else " [RANDOM frozen encoder]"
    rate, ci = summary.get("success_rate"), summary.get("success_ci95")
    shown = "n/a (every start already succeeds)" if rate is None else \
        f"{rate:.2f}" + (f" [95% CI {ci[0]:.2f}-{ci[1]:.2f}]" if ci else "")
    trivial = f", {summary['n_start_is_success']} with the task already done at the start, not counted" \
        if summary.get("n_start_is_success") else ""
    return (f"{summary['planner']} ({summary.get('actions_chosen_by', 'planner')}): success_rate {shown} over "
            f"{summary['n_evals']} evaluations on {summary.get('n_distinct_episodes', '?')} distinct episodes "
            f"({summary.get('episode_pool', 'episodes')}{trivial}; goal_H={summary['goal_H']}, mean final object dist "
            f"{summary['mean_final_object_dist']:.3f} m, {summary['planning_seconds_total']:.1f} s planning){enc}")


@hydra.main(config_path="conf", config_name="plan", version_base="1.3")
def main(cfg: DictConfig) -> None:
    started = time.time()  # what this launch writes is newer (a refused one leaves no run dir behind)
    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    from planning.execution.resume import log_sizes, restore_launch_files

    logs_before = log_sizes(out_dir)  # plan.log as the earlier launches of a job left it
    try:
        summary = run_plan(cfg, out_dir)
    except (PlanError, OutputError, JobStopped) as exc:  # bad input: exit 2; results saved, the job did not end: 1
        print(f"plan.py: error: {exc}", file=sys.stderr)
        if isinstance(exc, PlanError):  # refused: no new run directory left behind, a job's dir as it was
            from utils.run_dirs import remove_refused_run_dir

            if not remove_refused_run_dir(out_dir, started):
                restore_launch_files(out_dir, logs_before)
        if str(hc.mode) == "RunMode.MULTIRUN":  # one bad sweep point (e.g. a goal_H too long) must not end the sweep
            return
        sys.exit(2 if isinstance(exc, PlanError) else 1)
    print(f"{result_line(summary)} -> {out_dir}")


if __name__ == "__main__":
    os.environ.setdefault("MUJOCO_GL", "egl")
    from utils.config_choices import unknown_choice

    if (bad := unknown_choice(sys.argv[1:], Path(__file__).resolve().parent / "conf")) is not None:
        print(f"error: {bad}", file=sys.stderr)
        sys.exit(2)
    main()
