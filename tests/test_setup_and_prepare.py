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
