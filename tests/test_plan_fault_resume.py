"""kill -9 of a planning job at seeded points, then the same job again, until it ends: the result is the
uninterrupted job's.

An uninterrupted job is the reference. A second job in another directory is killed (SIGKILL) at seeded points,
one per launch, and launched again each time: during a re-plan, while ffmpeg writes a video, before a plot is
renamed into place, before a batch's record is, just after it is (between batches), and during the final writes.
It must end with the reference's summary.json, per-evaluation records (wall-clock timings left out), videos and
plots; no temporary file may be left; and no evaluation whose batch was recorded may be planned again (every batch
evaluation a launch starts is counted). The counts are printed.

A launch is ``plan.run_plan`` (what plan.py's main calls) in a process forked from a launcher that imported torch,
robosuite and the project once, so a launch costs its set-up (model, episodes, envs), not the imports. The launch
kills itself at the chosen point from a hook (``os.kill(pid, SIGKILL)``, the signal ``kill -9`` sends: nothing
runs after it, no ``finally``, no atexit), so each point is hit exactly, whatever the machine's load. Also here:
another job's settings in the dir are refused by plan.py in one line with the dir left as it was, and a CUDA
out-of-memory error in a batch stops the job with the batch size that fits, the finished batches kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
SEED = 2029
N_EVALS, REPLANS = 3, 2  # goal_H=2 with one planning step taken per re-plan
OVERRIDES = ["planner=cem_cpu", "planner.num_samples=8", "planner.opt_steps=1", f"n_evals={N_EVALS}",
             f"goal_H={REPLANS}", "batch_size=1", "progress=false", "wandb.mode=disabled", "device=cpu"]
TIMING = ("planning_seconds", "planning_seconds_total", "planning_seconds_per_episode", "mean_planning_seconds",
          "planning_seconds_per_replan")
FINAL_FILES = ("success.png", "logs.json", "summary.json")


# -- the launcher (its own process) and one launch (a child forked from it) -------------------------------------
def _serve() -> None:
    """Import once, then for each request line on stdin fork one launch and answer how it ended (one JSON line)."""
    import plan  # noqa: F401  (the imports every launch needs, done once here)
    import planning.execution.report  # noqa: F401
    from envs.robosuite_env import RobosuiteEnv  # noqa: F401
    from training.run_dir.run_loading import load_world_model  # noqa: F401

    for line in sys.stdin:
        req = json.loads(line)
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _launch(**req)
            except BaseException:  # noqa: BLE001 - the test reports the child's traceback
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                          "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                          "seconds": time.monotonic() - t0}), flush=True)


def _launch(cfg: str, out: str, point: list | None, starts: str, launch: int, pid_file: str) -> int:
    """One launch of the job: ``plan.run_plan``, killed by SIGKILL at ``point`` ([kind, n]; None: to the end)."""
    import logging

    import torch
    from omegaconf import OmegaConf

    import datasets.video_io as video_io
    import plan
    import planning.execution.report as report
    import planning.planners.factory

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the launcher's stdout carries the answers
    logging.disable(logging.CRITICAL)
    torch.set_num_threads(1)
    kind, arg = point or (None, None)
    seen: dict[str, int] = {}

    def kill() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def count(what: str) -> bool:
        seen[what] = seen.get(what, 0) + 1
        return what == kind and seen[what] == arg

    real_evaluate = report.evaluate_batch

    def evaluate(model, normalizer, data, envs, specs, *args):
        with open(starts, "a") as f:  # every evaluation a launch starts to plan
            f.write(json.dumps([launch, [s.eval_index for s in specs]]) + "\n")
        return real_evaluate(model, normalizer, data, envs, specs, *args)

    report.evaluate_batch = evaluate
    real_build = planning.planners.factory.build_planner

    def build(*args, **kwargs):  # plan.py builds the planner inside run_plan: wrap its plan()
        planner = real_build(*args, **kwargs)
        real_plan = planner.plan

        def plan_once(ctx):
            if count("replan"):
                kill()
            return real_plan(ctx)

        planner.plan = plan_once
        return planner

    planning.planners.factory.build_planner = build
    real_spawn = video_io.spawn_ffmpeg

    def spawn(args, **kwargs):  # kill while ffmpeg encodes a video (it is left on its own, as after kill -9)
        proc = real_spawn(args, **kwargs)
        if count("video"):
            Path(pid_file).write_text(str(proc.pid))
            kill()
        return proc

    video_io.spawn_ffmpeg = spawn
    real_replace = os.replace

    def replace(src, dst, *a, **kw):  # every atomic write ends in os.replace (utils.atomic_files)
        dst = Path(dst)
        if dst.parent.name == "plots" and dst.name.startswith("eef_") and count("plot"):
            kill()  # the png is written, not yet in place
        if dst.parent.name == "batches" and count("record"):
            kill()  # the batch's videos and plots are in place, its record not
        if kind == "final" and dst.name == arg and dst.parent in (Path(out), Path(out) / "plots"):
            kill()
        real_replace(src, dst, *a, **kw)
        if dst.parent.name == "batches" and count("between"):
            kill()  # the batch is recorded, the next one not started

    os.replace = replace
    plan.run_plan(OmegaConf.create(cfg), Path(out))
    return 0


class Launcher:
    """The launcher process, driven over its stdin / stdout."""

    def __init__(self, log_path: Path):
        self.log = open(log_path, "w")
        self.log_path = log_path
        self.proc = subprocess.Popen([sys.executable, "-c", "from tests.test_plan_fault_resume import _serve; _serve()"],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})

    def launch(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            pytest.fail(f"the launcher died; its output ends:\n{self.log_path.read_text()[-3000:]}")
        return json.loads(line)

    def child_output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()[-3000:]

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _config(run_dir: Path, overrides: list[str] = OVERRIDES) -> str:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import plan  # noqa: F401  (registers the basename resolver)

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="plan", overrides=[f"ckpt_base_path={run_dir}", *overrides])
    return OmegaConf.to_yaml(cfg, resolve=True)


@pytest.fixture(scope="module")
def launcher(tmp_path_factory):
    lr = Launcher(tmp_path_factory.mktemp("launcher") / "launcher.log")
    yield lr
    lr.close()


@pytest.fixture(scope="module")
def reference(launcher, tiny_trained_run, tmp_path_factory) -> Path:
    """The uninterrupted job."""
    root = tmp_path_factory.mktemp("plan_fault")
    out = root / "reference"
    t0 = time.monotonic()
    res = launcher.launch(cfg=_config(tiny_trained_run), out=str(out), point=None, starts=str(root / "starts_ref"),
                          launch=0, pid_file=str(root / "pid"))
    assert res["code"] == 0, f"the reference job failed: {res}\n{launcher.child_output()}"
    (root / "reference_seconds").write_text(str(time.monotonic() - t0))
    return out


# -- what the checks compare ------------------------------------------------------------------------------------
def _without_timing(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in TIMING}


def _records(out: Path) -> list[dict]:
    return [_without_timing(r) for r in json.loads((out / "logs.json").read_text())["episodes"]]


def _batch_records(out: Path) -> list[dict]:
    return sorted((_without_timing(r) for p in (out / "batches").glob("evals_*.json")
                   for r in json.loads(p.read_text())["records"]), key=lambda r: r["eval_index"])


def _finished(out: Path) -> set[int]:
    d = out / "batches"
    return {i for p in d.glob("evals_*.json") for i in json.loads(p.read_text())["eval_indices"]} if d.is_dir() else set()


def _temporaries(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if ".tmp-" in p.name) if out.is_dir() else []


def _media(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted([*out.glob("videos/*"), *out.glob("plots/*")])}


def _wait_gone(pid_file: Path, timeout: float = 30) -> None:
    """Wait until the ffmpeg a killed launch left behind has exited (it ends at the end of its input)."""
    if not pid_file.is_file():
        return
    stat = Path(f"/proc/{pid_file.read_text().strip()}/stat")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                break
        except (OSError, IndexError):
            break
        time.sleep(0.02)
    pid_file.unlink()


def schedule(rng: random.Random) -> list[tuple[str, object]]:
    """The kill points, one per launch: for each evaluation (one per batch) one or two points that interrupt it
    (during a re-plan, ffmpeg writing its video, its plot not yet renamed, its record not yet renamed), then one
    just after its record (between batches); finally one during the final writes."""
    interrupting = ["replan", "video", "plot", "record"]
    rng.shuffle(interrupting)
    points: list[tuple[str, object]] = []
    for kinds in (interrupting[:2], interrupting[2:3], interrupting[3:]):
        points += [(k, rng.randint(1, REPLANS) if k == "replan" else 1) for k in kinds]
        points.append(("between", 1))
    return points + [("final", rng.choice(FINAL_FILES))]


def test_kill9_at_seeded_points_resumes_to_the_uninterrupted_result(launcher, reference, tiny_trained_run, tmp_path,
                                                                    capsys):
    cfg, out, starts, pid_file = _config(tiny_trained_run), tmp_path / "killed", tmp_path / "starts", tmp_path / "pid"
    points = schedule(random.Random(SEED))
    counts = {"kills": 0, "temps_left_by_kills": 0, "planned": 0, "planned_after_recorded": 0}
    by_kind: dict[str, int] = {}
    t0 = time.monotonic()
    for launch, point in enumerate([*points, None, None], start=1):  # the last two: to the end, then once more
        before = _finished(out)
        n_starts = len(starts.read_text().splitlines()) if starts.is_file() else 0
        res = launcher.launch(cfg=cfg, out=str(out), point=point and list(point), starts=str(starts), launch=launch,
                              pid_file=str(pid_file))
        if point is None:
            assert res["code"] == 0, f"launch {launch} failed: {res}\n{launcher.child_output()}"
        else:
            assert res["signal"] == signal.SIGKILL, \
                f"launch {launch} was not killed at {point}: {res}\n{launcher.child_output()}"
            counts["kills"] += 1
            by_kind[point[0]] = by_kind.get(point[0], 0) + 1
            counts["temps_left_by_kills"] += len(_temporaries(out))
            _wait_gone(pid_file)
        new = [json.loads(ln)[1] for ln in starts.read_text().splitlines()[n_starts:]] if starts.is_file() else []
        counts["planned"] += sum(len(b) for b in new)
        counts["planned_after_recorded"] += sum(i in before for b in new for i in b)
        if launch == len(points) + 2:
            assert new == [], "a rerun of a finished job planned again"
    seconds = time.monotonic() - t0
    job = json.loads((out / "job.json").read_text())
    with capsys.disabled():
        print(f"\nplanning fault test: {counts['kills']} x kill -9 ({', '.join(f'{v} {k}' for k, v in by_kind.items())})"
              f" + 2 launches to the end, {len(job['launches'])} accepted launches in {seconds:.0f} s (the "
              f"uninterrupted job {float((reference.parent / 'reference_seconds').read_text()):.0f} s); "
              f"{counts['planned']} evaluations started for {N_EVALS}, {counts['planned_after_recorded']} of them "
              f"already recorded; temporary files left by the kills: {counts['temps_left_by_kills']}, at the end: "
              f"{len(_temporaries(out))}")
    assert counts["kills"] >= 6 and by_kind["between"] == N_EVALS and by_kind["final"] == 1
    assert len(job["launches"]) == len(points) + 2  # every launch got as far as its first write
    assert counts["planned_after_recorded"] == 0 and counts["planned"] >= N_EVALS
    assert counts["temps_left_by_kills"] >= 3 and _temporaries(out) == [] and _temporaries(reference) == []
    assert _records(out) == _records(reference) and len(_records(out)) == N_EVALS
    assert _batch_records(out) == _batch_records(reference) == _records(reference)
    summary, ref = (json.loads((d / "summary.json").read_text()) for d in (out, reference))
    assert _without_timing(summary) == _without_timing(ref)
    assert _media(out) == _media(reference) and len(_media(reference)) == 2 * N_EVALS + 1  # bytes, not just names


def _tree(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


def test_another_jobs_settings_in_the_dir_are_refused_in_one_line_and_the_dir_is_left_as_it_was(
        reference, tiny_trained_run, tmp_path):
    import shutil

    out = tmp_path / "job"
    shutil.copytree(reference, out)
    before = _tree(out)
    proc = subprocess.run([sys.executable, "plan.py", f"ckpt_base_path={tiny_trained_run}", *OVERRIDES,
                           "planner.num_samples=16", f"hydra.run.dir={out}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"plan.py: error: {out} holds evaluations of another planning job (differs in: "
                           "planner.num_samples 8 -> 16)"), line
    assert _tree(out) == before  # Hydra's .hydra/ and plan.log of the refused launch are gone again


def test_cuda_out_of_memory_in_a_batch_stops_with_the_batch_size_that_fits(tiny_trained_run, tmp_path, monkeypatch):
    """A simulated CUDA out-of-memory error in the second batch: one line naming batch_size=1, the first
    batch's evaluations kept (recorded in batches/), nothing else written."""
    import torch
    from omegaconf import OmegaConf

    import plan
    import planning.execution.memory as memory
    import planning.execution.report as report

    real, calls = report.evaluate_batch, []

    def evaluate(model, normalizer, data, envs, specs, *args):
        calls.append([s.eval_index for s in specs])
        if len(calls) == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, normalizer, data, envs, specs, *args)

    monkeypatch.setattr(report, "evaluate_batch", evaluate)
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * memory.GiB)  # the estimate fits whatever runs here
    cfg = OmegaConf.create(_config(tiny_trained_run, ["planner=replay", "n_evals=4", "goal_H=2", "batch_size=2",
                                                      "progress=false", "wandb.mode=disabled", "device=cpu",
                                                      "outputs.videos=false", "outputs.plots=false"]))
    out = tmp_path / "oom"
    with pytest.raises(plan.JobStopped) as exc:
        plan.run_plan(cfg, out)
    msg = str(exc.value)
    assert "\n" not in msg and calls == [[0, 1], [2, 3]]
    assert msg.startswith("CUDA out of memory planning 2 evaluations together on cpu (about ")
    assert "batch_size=1 should fit; rerun the same command with batch_size=1 to plan the other 2" in msg
    assert f"the 2 finished evaluations are kept in {out}" in msg
    assert _finished(out) == {0, 1} and not (out / "summary.json").exists() and _temporaries(out) == []
