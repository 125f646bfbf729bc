"""Imports flow one way. Every project .py file's imports (module level and inside functions) are read
with ``ast`` and checked against the layer rules below; the README's "How it works" draws the same graph.

    utils, tasks (nothing from the project: file helpers | the task registry)   gpu_utils (nothing)
      ^
    datasets     envs          (side by side: data formats | simulator)
      ^    \\      ^   \\
    models  \\     |    conversion   (robomimic hdf5 -> dataset dir: datasets + envs)
      ^      planning          (on a small world-model protocol: no models, no training)
    training
      ^
    entry points: plan.py, train_robomimic_compress.py, convert_robomimic_to_dino_wm.py,
    select_best_gpus.py, benchmarks/, tests/   (the composition root: may import anything)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("utils", "tasks", "gpu_utils", "datasets", "envs", "conversion", "models", "training", "planning")
ENTRY_POINTS = ("plan", "train_robomimic_compress", "convert_robomimic_to_dino_wm", "select_best_gpus",
                "benchmarks", "tests")
# what each package may import from the project (besides itself); everything else of PACKAGES and
# every entry point is forbidden
ALLOWED = {
    "utils": set(),
    "tasks": set(),
    "gpu_utils": set(),
    "datasets": {"utils", "tasks"},
    "envs": {"utils", "tasks"},
    "conversion": {"utils", "tasks", "datasets", "envs"},
    "models": {"utils", "datasets"},
    "training": {"utils", "tasks", "gpu_utils", "datasets", "models"},
    "planning": {"utils", "tasks", "datasets", "envs"},
}


def imported_modules(source: str, path: str) -> list[str]:
    """Every module ``source`` (the file ``path``, relative to the root) imports, at any depth.

    ``from a.b import c`` counts as ``a.b``; relative imports are resolved against ``path``'s package.
    """
    found = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = Path(path).with_suffix("").parts[:-node.level]
                found.append(".".join([*parts, *([node.module] if node.module else [])]))
            else:
                found.append(node.module)
    return found


def violations(source: str, path: str) -> list[str]:
    """'path imports module (layer rule)' for each forbidden import of the file ``path``."""
    layer = Path(path).parts[0] if len(Path(path).parts) > 1 else None
    if layer not in ALLOWED:
        return []  # an entry point, benchmark or test: the composition root
    out = []
    for mod in imported_modules(source, path):
        top = mod.split(".")[0]
        if top == layer or (top not in PACKAGES and top not in ENTRY_POINTS):
            continue
        if top in ENTRY_POINTS or top not in ALLOWED[layer]:
            out.append(f"{path} imports {mod} ({layer} may import only {sorted(ALLOWED[layer]) or 'nothing'} "
                       f"of the project)")
    return out


def project_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _all_violations() -> list[tuple[str, str, str]]:
    out = []
    for p in project_files():
        rel = p.relative_to(ROOT).as_posix()
        for v in violations(p.read_text(), rel):
            out.append((rel, v.split(" imports ")[1].split(" ")[0], v))
    return out


def test_no_forbidden_import_in_the_project():
    bad = [v for rel, mod, v in _all_violations()]
    assert not bad, "imports running back up the layers:\n" + "\n".join(bad)



def test_every_package_is_checked_and_has_files():
    assert {p.relative_to(ROOT).parts[0] for p in project_files()} == set(PACKAGES)
    assert set(ALLOWED) == set(PACKAGES)


@pytest.mark.parametrize("path, source, bad", [
    ("planning/x.py", "def f():\n    from training.checkpoint import load_model_file\n", True),  # inside a function
    ("planning/x.py", "import models.vit as v\n", True),
    ("planning/x.py", "from datasets.video_io import write_video\nfrom planning import base\n", False),
    ("models/x.py", "from training import trainer\n", True),
    ("datasets/x.py", "class A:\n    def m(self):\n        import models.dino\n", True),
    ("datasets/x.py", "import numpy, torch\nfrom utils.atomic_files import atomic_path\n", False),
    ("envs/x.py", "from datasets.meta import DatasetMeta\n", True),
    ("tasks/x.py", "from envs.robosuite_env import RobosuiteEnv\n", True),  # the registry is a leaf
    ("conversion/x.py", "from envs.robosuite_env import RobosuiteEnv\nfrom datasets import meta\n", False),
    ("utils/x.py", "from datasets import meta\n", True),
    ("gpu_utils/x.py", "from utils import progress\n", True),
    ("training/x.py", "import plan\n", True),  # packages never import an entry point
    ("training/sub/x.py", "from ...planning import base\n", True),  # relative import, resolved
    ("plan.py", "from training.run_loading import load_world_model\n", False),  # the composition root
    ("benchmarks/b.py", "import planning.cem, training.trainer\n", False),
])
def test_the_checker_flags_what_it_should(path, source, bad):
    assert bool(violations(source, path)) == bad
