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
