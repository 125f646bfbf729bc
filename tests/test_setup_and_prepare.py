"""The set-up and demo scripts explain themselves and refuse unknown options (no side effects)."""

import subprocess

import pytest
from conftest import ROOT


@pytest.mark.parametrize("script", ["setup_and_prepare.sh", "run_demo.sh"])
def test_help_and_unknown_option(script):
    ok = subprocess.run(["bash", str(ROOT / script), "--help"], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "Usage:" in ok.stdout
    bad = subprocess.run(["bash", str(ROOT / script), "--no-such-flag"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "--no-such-flag" in bad.stderr


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "./setup_and_prepare.sh --test" in ci
    assert "./setup_and_prepare.sh --test" in readme


@pytest.mark.parametrize("script, args, says", [
    ("setup_and_prepare.sh", ["--tasks"], "--tasks needs a value"),
    ("setup_and_prepare.sh", ["--demo-task", "--dry-run"], "--demo-task needs a value"),
    ("setup_and_prepare.sh", ["--tasks", ""], "no robomimic task given"),
    ("setup_and_prepare.sh", ["--demo", "--demo-episodes", "0"], "--demo-episodes must be a whole number >= 1"),
    ("setup_and_prepare.sh", ["--demo", "--demo-episodes", "abc"], "--demo-episodes must be a whole number >= 1"),
    ("run_demo.sh", ["--n-evals", "abc"], "--n-evals must be a whole number >= 1"),
    ("run_demo.sh", ["--goal-h", "-1"], "--goal-h must be a whole number >= 1"),
    ("run_demo.sh", ["--random-encoder", "--weights", "w.pth"], "--random-encoder and --weights exclude each other"),
])
def test_bad_values_stop_before_any_step(tmp_path, script, args, says):
    """One line, exit 2, before the set-up (no .venv, logs or data made: run from a copy of the script)."""
    copy = tmp_path / script
    copy.write_text((ROOT / script).read_text())
    proc = subprocess.run(["bash", str(copy), *args, "--dry-run"] if script.startswith("setup") else
                          ["bash", str(copy), *args], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and says in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [script]


def _dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "setup_and_prepare.sh"), "--dry-run", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def test_the_task_names_are_the_registrys():
    """--tasks takes the registered tasks with hub files, --demo-task the ones with a scripted policy (python -m
    tasks), and the script lists none itself."""
    from tasks.registry import all_tasks

    for task in all_tasks():
        on_hub = _dry_run("--tasks", task.name)
        assert (on_hub.returncode == 0) == bool(task.download_name), on_hub.stderr
        demo = _dry_run("--demo", "--demo-task", task.name)
        assert (demo.returncode == 0) == task.has_policy, demo.stderr
        if not task.has_policy:
            scripted = " or ".join(t.name for t in all_tasks() if t.has_policy)
            assert demo.stderr.count("\n") == 1 and f"a scripted policy ({scripted}), got '{task.name}'" in demo.stderr
    refused = _dry_run("--tasks", "transport")  # on the hub, but no registered task: nothing to train it with
    known = ", ".join(t.name for t in all_tasks() if t.download_name)
    assert refused.returncode == 2 and f"unknown robomimic task 'transport' (known: {known})" in refused.stderr


def test_without_an_interpreter_yet_the_names_are_checked_after_the_install(tmp_path):
    copy = tmp_path / "setup_and_prepare.sh"  # a fresh checkout: no .venv, no python that reads the registry
    copy.write_text((ROOT / "setup_and_prepare.sh").read_text())
    proc = subprocess.run(["bash", str(copy), "--dry-run", "--tasks", "lift"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHON": "/nonexistent"})
    assert proc.returncode == 0, proc.stderr
    assert "tasks: checked against the registry (python -m tasks) after the install" in proc.stdout
