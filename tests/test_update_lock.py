"""tools/update_lock.py: the dependency closure it pins, and constraints.txt holding exactly this environment's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import update_lock  # noqa: E402

FAKE = {  # name -> requirement strings, as installed metadata states them
    "proj": ["torch>=2.1", "Lib_A>=1", "gpu-only; sys_platform == 'nonexistent'",
             "pytest; extra == 'dev'", "proj[local]; extra == 'dev'", "joblib-plugin; extra == 'local'",
             "cluster; extra == 'slurm'"],
    "torch": ["filelock", "nvidia-cublas-cu12==12.8; platform_system == 'Linux'", "triton==3.5"],
    "lib-a": ["lib-b[fast]"],
    "lib-b": ["lib-c; extra == 'fast'", "lib-d; extra == 'slow'"],
    "lib-c": [], "pytest": [], "joblib-plugin": ["nvidia-ml-py"], "nvidia-ml-py": [], "filelock": [],
}


def fake_requires(name):
    return FAKE.get(name)


def test_the_closure_follows_extras_markers_and_self_references():
    got = set(update_lock.closure("proj", ["dev"], fake_requires))
    # dev pulls proj[local] (a self-reference), lib-b[fast] pulls lib-c; slurm, lib-d and the marker-excluded
    # gpu-only are not asked for; torch's CUDA-build companions are not followed, nvidia-ml-py (a plugin's) is
    assert got == {"proj", "torch", "filelock", "lib-a", "lib-b", "lib-c", "pytest", "joblib-plugin", "nvidia-ml-py"}
    assert "cluster" not in update_lock.closure("proj", [], fake_requires)


def test_a_missing_requirement_stops_in_one_line():
    with pytest.raises(SystemExit, match=r"^update_lock.py: lib-c is required but not installed here"):
        update_lock.closure("proj", [], lambda name: None if name == "lib-c" else fake_requires(name))


def test_the_lock_pins_everything_but_torch_sorted_under_its_header():
    text = update_lock.lock_text({"zlib": "1.0", "torch": "2.13.0+cpu", "accelerate": "1.16.0"})
    assert text.startswith(update_lock.HEADER)
    assert text[len(update_lock.HEADER):] == "accelerate==1.16.0\nzlib==1.0\n"


def test_the_project_requirements_come_from_pyproject():
    reqs = update_lock.project_requires()
    assert "psutil" in {r.split(";")[0].strip() for r in reqs}
    assert any(r.startswith("hydra-joblib-launcher") and "extra == 'local'" in r for r in reqs)


def test_constraints_txt_is_this_environment(capsys):
    """Fails when pyproject.toml gained or lost a dependency, or an installed version moved, without a refresh."""
    assert update_lock.main(["--check"]) == 0, capsys.readouterr().err
    lock = (ROOT / "constraints.txt").read_text()
    assert "\ntorch==" not in lock and "\npsutil==" in lock and "\nnumpy==" in lock
