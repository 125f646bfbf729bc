"""A planning job's finished evaluations on disk, batch by batch, so that a killed job resumes where it stopped.

Files in the job's output dir (``hydra.run.dir``) besides the results::

    job.json                   what makes two launches the same job (``identity``: the settings that decide the
                               results, the checkpoint and its step, the action prior's and the dataset's hashes,
                               seed, n_evals, shard and the evaluations themselves), the launches so far, what the
                               last accepted launch found in .hydra/ (put back when a later launch is refused) and
                               whether the result went to wandb
    batches/evals_A-B.json     one per finished batch (first and last eval_index): its evaluations' records (with
                               their video and plot paths), the batch size and device it ran with, the seconds its
                               outputs took and the outputs that could not be written

A batch is finished when its file is in place: it is written (atomically) after the batch's videos and plots. A kill
before that leaves the batch unfinished and the next launch plans it again, whole: the same evaluations together
with their own seeds, so the same results. A kill after it never plans those evaluations again. The temporary files
a kill leaves (``.NAME.tmp-*``, see ``utils.atomic_files``) are removed when the next launch is accepted.

Settings that only decide how the job runs (``EXECUTION_KEYS``: batch size, device, compile, progress, wandb, the
run name) may change between launches: after a CUDA out-of-memory error, the same command with a smaller
``batch_size`` plans the rest. Any other difference is refused in one line naming it (:class:`ResumeError`), and
nothing in the dir is changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from planning.reporting.outputs import LOGS_FILE, SUMMARY_FILE, write_json
from utils.atomic_files import atomic_write_text

log = logging.getLogger(__name__)

JOB_FILE, BATCH_DIR = "job.json", "batches"
VERSION = 1
EXECUTION_KEYS = ("batch_size", "device", "gpu", "compile", "progress", "wandb", "name", "resume")
HYDRA_FILES = (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml")
MEDIA_DIRS = ("videos", "plots")  # where the per-evaluation outputs go (planning.execution.report)


# the planner modules of the flat planning/ package before it had rooms (``planning.cem.CEMPlanner``): the job.json
# of a job planned then names its planner's ``_target_`` there; :func:`current_identity` reads it as today's
FLAT_PLANNER_MODULES = ("cem", "cem_prior", "prior", "random_shooting", "hold", "replay")


class ResumeError(Exception):
    """The output dir holds another job's evaluations, or a job file that cannot be read (one line)."""


def _sha256(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def result_settings(config: dict) -> dict:
    """The planning config without the keys that only decide how the job runs (``EXECUTION_KEYS``)."""
    return {k: v for k, v in config.items() if k not in EXECUTION_KEYS}


def job_identity(config: dict, *, checkpoint: str, model_step: Any, evaluations: list[dict],
                 action_prior_sha256: str | None = None, dataset_sha256: str | None = None,
                 learned_cost_sha256: str | None = None) -> dict:
    """What two launches must share to be one job.

    Args:
        config: the resolved planning config (paths made absolute by the caller).
        checkpoint: the checkpoint directory planned with; model_step: its training step.
        evaluations: this job's (shard's) evaluation specs as dicts (eval_index, episode, start, goal, seed).
        action_prior_sha256 / dataset_sha256 / learned_cost_sha256: the prior's weights, the dataset's source file
            and the learned cost-to-go's weights, when there are (a refit prior or cost is another job).
    """
    settings = result_settings(config)
    return {"config_sha256": _sha256(settings), "config": settings, "checkpoint": str(checkpoint),
            "model_step": model_step, "action_prior_sha256": action_prior_sha256, "dataset_sha256": dataset_sha256,
            "learned_cost_sha256": learned_cost_sha256,
            "seed": config.get("seed"), "n_evals": config.get("n_evals"), "shard": config.get("shard"),
            "evaluations_sha256": _sha256(evaluations), "eval_indices": [int(e["eval_index"]) for e in evaluations]}


def current_identity(identity: dict) -> dict:
    """A recorded identity with a planner ``_target_`` of the flat layout (``planning.cem.CEMPlanner``) given its
    module of today (``planning.planners.cem.CEMPlanner``) and its ``config_sha256`` recomputed; any other as it is."""
    planner = (identity.get("config") or {}).get("planner")
    module, _, cls = str((planner or {}).get("_target_", "")).rpartition(".")
    if module not in {f"planning.{m}" for m in FLAT_PLANNER_MODULES}:
        return identity
    config = {**identity["config"], "planner": {**planner, "_target_": f"planning.planners.{module[9:]}.{cls}"}}
    return {**identity, "config": config, "config_sha256": _sha256(config)}


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


def differences(old: dict, new: dict, limit: int = 3) -> list[str]:
    """What differs between two identities, e.g. ``planner.num_samples 16 -> 8`` (at most ``limit``, then a count)."""
    a = {**_flat(old.get("config", {})), **{k: v for k, v in old.items() if k not in ("config", "config_sha256")}}
    b = {**_flat(new.get("config", {})), **{k: v for k, v in new.items() if k not in ("config", "config_sha256")}}
    keys = [k for k in [*a, *(k for k in b if k not in a)] if a.get(k) != b.get(k)]
    if "evaluations_sha256" in keys and len(keys) > 1:  # follows from the others (seed, n_evals, shard, goal_H, data)
        keys.remove("evaluations_sha256")
    if "eval_indices" in keys and len(keys) > 1:
        keys.remove("eval_indices")
    shown = [f"{k} {_short(a.get(k))} -> {_short(b.get(k))}" for k in keys[:limit]]
    return shown + ([f"{len(keys) - limit} more"] if len(keys) > limit else [])


def _short(v: Any) -> str:
    text = json.dumps(v, default=str) if not isinstance(v, str) else v
    return text if len(text) <= 60 else text[:28] + "..." + text[-28:]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ResumeError(f"{path} cannot be read ({type(exc).__name__}: {exc}); pass resume=false to plan the job "
                          "again from the start in this directory") from exc


def temporaries(out_dir: Path) -> list[Path]:
    """The temporary files an interrupted atomic write leaves (``.NAME.tmp-*``) in the dirs a job writes."""
    found = []
    for d in (out_dir, out_dir / BATCH_DIR, *(out_dir / m for m in MEDIA_DIRS)):
        if d.is_dir():
            found += [p for p in d.iterdir() if p.name.startswith(".") and ".tmp-" in p.name]
    return sorted(found)


def finished_evaluations(out_dir: str | Path) -> set[int]:
    """eval_index of the evaluations recorded in ``out_dir/batches`` (a quick look, without the identity check)."""
    found: set[int] = set()
    for path in sorted((Path(out_dir) / BATCH_DIR).glob("evals_*.json")):
        try:
            found.update(int(i) for i in json.loads(path.read_text()).get("eval_indices", []))
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    return found


class PlanJob:
    """The job in one output dir: its identity, its finished evaluations, and the writes that record them.

    :meth:`check` only reads; nothing is written before :meth:`begin`.
    """

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.job: dict | None = None
        self.batches: list[dict] = []
        self.identity: dict | None = None

    @property
    def path(self) -> Path:
        return self.out_dir / JOB_FILE

    # -- reading -------------------------------------------------------------------------------------------
    def check(self, identity: dict, resume: bool = True) -> None:
        """Read what the dir holds and compare it with ``identity``.

        Raises:
            ResumeError: the dir holds another job's evaluations, a result without ``job.json`` (written before
                plans resumed) or an unreadable job file; with ``resume=False`` only an unreadable dir.
        """
        self.identity = identity
        if not resume:
            return
        if not self.path.is_file():
            leftovers = [n for n in (LOGS_FILE, SUMMARY_FILE, BATCH_DIR) if (self.out_dir / n).exists()]
            if leftovers:
                raise ResumeError(f"{self.out_dir} holds a planning result ({', '.join(leftovers)}) but no {JOB_FILE} "
                                  "to check it against (written before plan.py resumed jobs): plan into another "
                                  "hydra.run.dir, or pass resume=false to replace it")
            return
        job = _read_json(self.path)
        if not isinstance(job, dict) or not isinstance(job.get("identity"), dict):
            raise ResumeError(f"{self.path} is not a planning job file; pass resume=false to replace it")
        job["identity"] = current_identity(job["identity"])
        if job["identity"].get("config_sha256") != identity["config_sha256"] or \
                {k: v for k, v in job["identity"].items() if k != "config"} != \
                {k: v for k, v in identity.items() if k != "config"}:
            diff = "; ".join(differences(job["identity"], identity)) or "its identity"
            raise ResumeError(f"{self.out_dir} holds evaluations of another planning job (differs in: {diff}): rerun "
                              "the first command, plan into another hydra.run.dir, or pass resume=false to replace "
                              "them")
        self.job = job
        self.batches = self._read_batches(set(identity["eval_indices"]))

    def _read_batches(self, mine: set[int]) -> list[dict]:
        batches, seen = [], {}
        d = self.out_dir / BATCH_DIR
        for path in sorted(d.glob("evals_*.json")) if d.is_dir() else []:
            batch = _read_json(path)
            recs = batch.get("records") if isinstance(batch, dict) else None
            if not isinstance(recs, list) or not all(isinstance(r, dict) and "eval_index" in r for r in recs):
                raise ResumeError(f"{path} holds no evaluation records; pass resume=false to plan the job again")
            for r in recs:
                i = int(r["eval_index"])
                if i not in mine or i in seen:
                    why = f"is also in {seen[i]}" if i in seen else "is not one of this job's evaluations"
                    raise ResumeError(f"{path}: evaluation {i} {why}; pass resume=false to plan the job again")
                seen[i] = path.name
            batches.append(batch)
        return batches

    @property
    def finished(self) -> set[int]:
        """eval_index of every finished evaluation."""
        return {int(r["eval_index"]) for b in self.batches for r in b["records"]}

    def records(self) -> list[dict]:
        """Every finished evaluation's record, by eval_index."""
        return sorted((r for b in self.batches for r in b["records"]), key=lambda r: r["eval_index"])

    def outputs_seconds(self) -> float:
        return float(sum(b.get("outputs_seconds", 0.0) for b in self.batches))

    def output_errors(self) -> list[str]:
        return [e for b in sorted(self.batches, key=lambda b: b["records"][0]["eval_index"] if b["records"] else -1)
                for e in b.get("output_errors", [])]

    @property
    def earlier_batch_size(self) -> int | None:
        """The batch size the latest earlier launch planned with (None for a new job)."""
        launches = (self.job or {}).get("launches") or []
        return launches[-1].get("batch_size") if launches else None

    def logged_to_wandb(self, mode: str) -> bool:
        """Whether an earlier launch logged this job's result to wandb in ``mode`` already."""
        return ((self.job or {}).get("wandb_logged") or {}).get("mode") == mode

    # -- writing -------------------------------------------------------------------------------------------
    def begin(self, batch_size: int, device: str) -> None:
        """The first write of an accepted launch: a fresh start clears the earlier job's files; stale temporaries
        go; ``job.json`` records the identity, this launch and the .hydra/ files it found."""
        if self.job is None:
            self._clear()
        for tmp in temporaries(self.out_dir):
            log.info("removing %s (left by an interrupted write)", tmp)
            tmp.unlink(missing_ok=True)
        job = self.job or {"version": VERSION, "identity": self.identity, "launches": []}
        job["launches"] = [*job.get("launches", []), {
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "finished_before": len(self.finished),
            "batch_size": int(batch_size), "device": str(device)}]
        job["hydra_files"] = {rel: (self.out_dir / rel).read_text() for rel in HYDRA_FILES
                              if (self.out_dir / rel).is_file()}
        self.job = job
        write_json(self.path, job)

    def _clear(self) -> None:
        """Remove an earlier job's files (resume=false, or a leftover batches/): plan.py's own outputs only."""
        victims = [self.out_dir / n for n in (JOB_FILE, LOGS_FILE, SUMMARY_FILE)]
        for folder, pattern in (("videos", "eval_*.mp4"), ("plots", "eef_eval_*.png"), ("plots", "success.png")):
            victims += sorted((self.out_dir / folder).glob(pattern))
        removed = 0
        for p in victims:
            if p.is_file():
                p.unlink()
                removed += 1
        if (self.out_dir / BATCH_DIR).is_dir():
            shutil.rmtree(self.out_dir / BATCH_DIR)
            removed += 1
        if removed:
            log.info("%s: the earlier planning files are removed (resume=false, or no job.json): the job starts over",
                     self.out_dir)

    def commit(self, records: list[dict], batch_size: int, device: str, outputs_seconds: float = 0.0,
               output_errors: list[str] | None = None) -> Path:
        """Record a finished batch (after its videos and plots): from here on its evaluations are never planned
        again in this dir. Returns the batch file."""
        idx = sorted(int(r["eval_index"]) for r in records)
        batch = {"eval_indices": idx, "batch_size": int(batch_size), "device": str(device),
                 "outputs_seconds": float(outputs_seconds), "output_errors": list(output_errors or []),
                 "records": sorted(records, key=lambda r: r["eval_index"])}
        path = self.out_dir / BATCH_DIR / f"evals_{idx[0]:03d}-{idx[-1]:03d}.json"
        write_json(path, batch)
        self.batches.append(json.loads(path.read_text()))  # as a later launch reads it back
        return path

    def mark_logged_to_wandb(self, mode: str) -> None:
        if self.job is not None:
            self.job["wandb_logged"] = {"mode": mode, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
            write_json(self.path, self.job)


def log_sizes(out_dir: str | Path) -> dict[str, int]:
    """Sizes of the log files in ``out_dir`` now (what a refused launch truncates them back to)."""
    d = Path(out_dir)
    return {p.name: p.stat().st_size for p in d.glob("*.log")} if d.is_dir() else {}


def restore_launch_files(out_dir: str | Path, sizes: dict[str, int]) -> bool:
    """After a refused launch in a job's dir, the dir as that launch found it: .hydra/ back to what the last accepted
    launch found there (Hydra rewrites it on every launch; files it did not find are removed) and the log files cut
    back to ``sizes``, their sizes when this launch started (an empty one is Hydra's for this launch: removed).
    False when the dir holds no job."""
    out_dir = Path(out_dir)
    try:
        job = json.loads((out_dir / JOB_FILE).read_text())
    except (OSError, ValueError):
        return False
    kept = job.get("hydra_files") or {}
    for rel in HYDRA_FILES:
        path = out_dir / rel
        if rel in kept and (not path.is_file() or path.read_text(errors="replace") != kept[rel]):
            atomic_write_text(path, kept[rel])
        elif rel not in kept and path.is_file():
            path.unlink()
    hydra_dir = out_dir / ".hydra"
    if hydra_dir.is_dir() and not any(hydra_dir.iterdir()):
        hydra_dir.rmdir()
    for name, size in sizes.items():
        path = out_dir / name
        if not path.is_file():
            continue
        if size == 0:
            path.unlink()
        elif path.stat().st_size > size:
            with open(path, "r+b") as f:
                f.truncate(size)
    return True
