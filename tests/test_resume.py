"""planning.execution.resume: a planning job's identity, its finished batches on disk, what a later launch accepts or refuses
(and leaves untouched when it refuses), and the dir put back after a refused launch."""

from __future__ import annotations

import json

import pytest

from planning.execution.resume import (
    BATCH_DIR,
    JOB_FILE,
    PlanJob,
    ResumeError,
    current_identity,
    differences,
    job_identity,
    log_sizes,
    restore_launch_files,
    temporaries,
)

EVALS = [{"eval_index": i, "episode": 7, "start": 10, "goal": 20, "seed": i} for i in range(4)]


def _config(**changes):
    cfg = {"seed": 0, "n_evals": 4, "goal_H": 2, "shard": {"index": 0, "count": 1}, "batch_size": "auto",
           "device": "auto", "progress": True, "wandb": {"mode": None}, "name": "run_cem", "resume": True,
           "planner": {"name": "cem", "num_samples": 8}, "outputs": {"videos": True}}
    for key, value in changes.items():
        node, *path = key.split(".")
        if path:
            cfg[node] = {**cfg[node], path[0]: value}
        else:
            cfg[key] = value
    return cfg


def _identity(cfg=None, checkpoint="/runs/r/checkpoints/step_00000005", step=5, evals=EVALS, cost=None):
    return job_identity(cfg or _config(), checkpoint=checkpoint, model_step=step, evaluations=evals,
                        action_prior_sha256=None, dataset_sha256="abc", learned_cost_sha256=cost)


def _record(i):
    return {"eval_index": i, "success": True, "final_object_dist": 0.1 * i, "video": f"videos/eval_{i:03d}_ep7.mp4"}


def _tree(d):
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_how_the_job_runs_is_not_its_identity_what_it_computes_is():
    same = _identity(_config(batch_size=2, device="cuda:1", progress=False, **{"wandb.mode": "online"}))
    assert same == _identity()
    assert differences(_identity(), _identity(_config(**{"planner.num_samples": 16}))) == [
        "planner.num_samples 8 -> 16"]
    assert differences(_identity(), _identity(checkpoint="/runs/r/checkpoints/step_00000009", step=9)) == [
        "checkpoint /runs/r/checkpoints/step_00000005 -> /runs/r/checkpoints/step_00000009", "model_step 5 -> 9"]
    assert differences(_identity(cost="aa"), _identity(cost="bb")) == ["learned_cost_sha256 aa -> bb"]  # refit cost
    many = differences(_identity(), _identity(_config(seed=1, goal_H=3, n_evals=5, **{"outputs.videos": False})))
    assert many == ["seed 0 -> 1", "n_evals 4 -> 5", "goal_H 2 -> 3", "1 more"]  # three shown, then a count


def test_a_job_commits_batches_and_a_later_launch_finds_them(tmp_path):
    job = PlanJob(tmp_path)
    job.check(_identity())
    assert not any(tmp_path.iterdir())  # check only reads
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("seed: 0\n")
    job.begin(batch_size=2, device="cpu")
    job.commit([_record(1), _record(0)], 2, "cpu", outputs_seconds=0.5, output_errors=["videos/x: disk full"])
    assert (tmp_path / BATCH_DIR / "evals_000-001.json").is_file() and job.finished == {0, 1}
    again = PlanJob(tmp_path)
    again.check(_identity(_config(batch_size=1)))  # another batch size: the same job
    assert again.finished == {0, 1} and [r["eval_index"] for r in again.records()] == [0, 1]
    assert again.records()[1] == _record(1) and again.outputs_seconds() == 0.5
    assert again.output_errors() == ["videos/x: disk full"] and again.earlier_batch_size == 2
    again.begin(batch_size=1, device="cuda:0")
    launches = json.loads((tmp_path / JOB_FILE).read_text())["launches"]
    assert [(x["finished_before"], x["batch_size"], x["device"]) for x in launches] == [(0, 2, "cpu"), (2, 1, "cuda:0")]
    assert json.loads((tmp_path / JOB_FILE).read_text())["hydra_files"] == {".hydra/config.yaml": "seed: 0\n"}
    assert not again.logged_to_wandb("offline")
    again.mark_logged_to_wandb("offline")
    third = PlanJob(tmp_path)
    third.check(_identity())
    assert third.logged_to_wandb("offline") and not third.logged_to_wandb("online")


def test_a_job_planned_before_planning_had_rooms_resumes(tmp_path):
    """A job.json written when the planners were planning/<name>.py names the old ``_target_``: the same job."""
    new = _identity(_config(**{"planner._target_": "planning.planners.cem.CEMPlanner"}))
    old = _identity(_config(**{"planner._target_": "planning.cem.CEMPlanner"}))
    assert old != new and current_identity(old) == new and current_identity(new) == new
    (tmp_path / JOB_FILE).write_text(json.dumps({"version": 1, "identity": old, "launches": []}))
    job = PlanJob(tmp_path)
    job.check(new)
    job.begin(1, "cpu")
    assert json.loads((tmp_path / JOB_FILE).read_text())["identity"] == new
    with pytest.raises(ResumeError, match="planner.num_samples 8 -> 16"):
        PlanJob(tmp_path).check(_identity(_config(**{"planner._target_": "planning.planners.cem.CEMPlanner",
                                                     "planner.num_samples": 16})))


def test_another_jobs_dir_is_refused_in_one_line_and_left_as_it_was(tmp_path):
    job = PlanJob(tmp_path)
    job.check(_identity())
    job.begin(1, "cpu")
    job.commit([_record(0)], 1, "cpu")
    before = _tree(tmp_path)
    for other, says in ((_identity(_config(seed=3)), "seed 0 -> 3"),
                        (_identity(step=9, checkpoint="/runs/r/checkpoints/step_00000009"), "model_step 5 -> 9"),
                        (_identity(evals=EVALS[:2]), "eval_indices")):
        with pytest.raises(ResumeError) as exc:
            PlanJob(tmp_path).check(other)
        assert "\n" not in str(exc.value) and "holds evaluations of another planning job" in str(exc.value)
        assert says in str(exc.value) and "resume=false" in str(exc.value)
    assert _tree(tmp_path) == before


def test_resume_false_starts_over_removing_only_what_plan_writes(tmp_path):
    job = PlanJob(tmp_path)
    job.check(_identity())
    job.begin(1, "cpu")
    job.commit([_record(0)], 1, "cpu")
    for rel in ("videos/eval_000_ep7.mp4", "plots/eef_eval_000_ep7.png", "plots/success.png", "logs.json",
                "summary.json", "notes.txt", "plots/mine.png"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_text("x")
    fresh = PlanJob(tmp_path)
    fresh.check(_identity(_config(seed=3)), resume=False)  # another job: accepted, it replaces the dir's
    assert fresh.finished == set()
    fresh.begin(1, "cpu")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        JOB_FILE, "notes.txt", "plots/mine.png"]
    assert json.loads((tmp_path / JOB_FILE).read_text())["identity"]["seed"] == 3


def test_a_result_without_a_job_file_is_refused_unless_resume_is_false(tmp_path):
    (tmp_path / "logs.json").write_text("{}")
    with pytest.raises(ResumeError, match="holds a planning result .*logs.json.* but no job.json"):
        PlanJob(tmp_path).check(_identity())
    PlanJob(tmp_path).check(_identity(), resume=False)


def test_damaged_job_files_are_one_line(tmp_path):
    job = PlanJob(tmp_path)
    job.check(_identity())
    job.begin(1, "cpu")
    job.commit([_record(0)], 1, "cpu")
    batch = tmp_path / BATCH_DIR / "evals_000-000.json"
    batch.write_text('{"records": [')
    with pytest.raises(ResumeError, match="evals_000-000.json cannot be read"):
        PlanJob(tmp_path).check(_identity())
    batch.write_text(json.dumps({"records": [_record(0)]}))
    (tmp_path / BATCH_DIR / "evals_000-001.json").write_text(json.dumps({"records": [_record(0), _record(1)]}))
    with pytest.raises(ResumeError, match="evaluation 0 is also in"):
        PlanJob(tmp_path).check(_identity())
    (tmp_path / BATCH_DIR / "evals_000-001.json").write_text(json.dumps({"records": [_record(9)]}))
    with pytest.raises(ResumeError, match="evaluation 9 is not one of this job's"):
        PlanJob(tmp_path).check(_identity())
    (tmp_path / JOB_FILE).write_text("[]")
    with pytest.raises(ResumeError, match="is not a planning job file"):
        PlanJob(tmp_path).check(_identity())


def test_an_accepted_launch_removes_the_temporaries_a_kill_left(tmp_path):
    job = PlanJob(tmp_path)
    job.check(_identity())
    job.begin(1, "cpu")
    left = [tmp_path / BATCH_DIR / ".evals_001-001.json.tmp-ab12.json", tmp_path / "videos" / ".eval_001.mp4.tmp-x.mp4",
            tmp_path / "plots" / ".success.png.tmp-y.png", tmp_path / ".logs.json.tmp-z.json"]
    for p in left:
        p.parent.mkdir(exist_ok=True)
        p.write_text("half")
    assert temporaries(tmp_path) == sorted(left)
    again = PlanJob(tmp_path)
    again.check(_identity())
    assert again.finished == set()  # a batch file that was never renamed into place is no finished batch
    again.begin(1, "cpu")
    assert temporaries(tmp_path) == [] and not any(p.exists() for p in left)


def test_a_refused_launch_puts_hydra_files_and_logs_back(tmp_path):
    hydra = tmp_path / ".hydra"
    hydra.mkdir()
    (hydra / "config.yaml").write_text("seed: 0\n")
    (tmp_path / "plan.log").write_text("first launch\n")
    job = PlanJob(tmp_path)
    job.check(_identity())
    job.begin(1, "cpu")
    sizes = log_sizes(tmp_path)  # what main() notes when the refused launch starts
    (hydra / "config.yaml").write_text("seed: 3\n")  # what Hydra writes for the refused launch
    (hydra / "overrides.yaml").write_text("- seed=3\n")
    with open(tmp_path / "plan.log", "a") as f:
        f.write("refused launch\n")
    assert restore_launch_files(tmp_path, sizes)
    assert (hydra / "config.yaml").read_text() == "seed: 0\n" and not (hydra / "overrides.yaml").exists()
    assert (tmp_path / "plan.log").read_text() == "first launch\n"
    (tmp_path / "other.log").write_text("")
    sizes = log_sizes(tmp_path)
    (tmp_path / "other.log").write_text("made by the refused launch\n")
    restore_launch_files(tmp_path, sizes)
    assert not (tmp_path / "other.log").exists()  # empty when the launch started: Hydra's, for that launch
    assert not restore_launch_files(tmp_path / "nothing", {})
