"""A copy of the project's tree in a temporary folder, for the tests that extend the project by one of the README's
"Extending" recipes alone and then run it from the copy (``tests/test_add_a_task.py``, ``test_add_an_encoder.py``).

The copy holds the files git tracks or would track (no .venv, data or outputs); a script run from it imports the
copy's packages (its folder comes first on ``sys.path``, before the editable install of this tree).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def project_files(root: Path = ROOT) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    return sorted(f for f in out if f and (root / f).is_file())


def copy_tree(dst: Path) -> Path:
    """The project's files copied into ``dst`` (created)."""
    for rel in project_files():
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst / rel)
    return dst


def changed_files(copy: Path) -> list[str]:
    """The files of ``copy`` that are new or differ from this tree's."""
    here = set(project_files())
    return sorted(str(p.relative_to(copy)) for p in copy.rglob("*") if p.is_file() and
                  (str(p.relative_to(copy)) not in here or p.read_bytes() != (ROOT / p.relative_to(copy)).read_bytes()))


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def run_in(copy: Path, args: list[str], env: dict[str, str] | None = None, timeout: float = 600):
    """``python ARGS`` (or ``bash ...`` when ARGS starts with it) run from ``copy``; fails the test with its output."""
    cmd = args if args[0] == "bash" else [sys.executable, *args]
    proc = subprocess.run(cmd, cwd=copy, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": "", **(env or {})})
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc
