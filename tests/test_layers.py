"""Imports flow one way. Every project .py file's imports (module level and inside functions) are read
with ``ast`` and checked against the layer rules below; the README's "How it works" draws the same graph
(``A ^ B``: B may import A and what A may import). The rules are exactly the edges the code has: an import
they do not allow fails, and so does an allowed edge no file uses.

              tasks          utils   gpu_utils    (nothing from the project; every package but tasks and
                ^                                  gpu_utils uses utils, not drawn; only entry points use gpu_utils)
         +------+-------+
      datasets        envs        models           (side by side: data formats | simulator | networks)
       ^  ^  ^          ^            ^
       |  |  +------ conversion      |             (robomimic hdf5 -> dataset dir: datasets + envs)
       |  planning                   |             (on a small world-model protocol: no models, training or envs)
       +---------- training ---------+             (owns the run dir)
                      ^
    entry points: plan.py, train_robomimic_compress.py, convert_robomimic_to_dino_wm.py,
    select_best_gpus.py, benchmarks/, tests/   (the composition root: may import anything)

Inside planning/ and training/ their rooms (sub-packages and the package's own modules) import one way as well
(``ROOMS``, drawn in the README under the graph above):

    planning:  objectives <- planners <- execution -> reporting
    training:  model_config <- run_dir <- loop;  run_dir <- action_prior <- cost_to_go, rollout_readout
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("utils", "tasks", "gpu_utils", "datasets", "envs", "conversion", "models", "training", "planning")
ENTRY_POINTS = ("plan", "plan_setup", "train_robomimic_compress", "convert_robomimic_to_dino_wm", "select_best_gpus",
                "benchmarks", "tests")
# what each package imports from the project (besides itself), exactly: everything else of PACKAGES and every
# entry point is forbidden, and an edge listed here that no file uses fails test_every_allowed_edge_is_used
ALLOWED = {
    "utils": set(),
    "tasks": set(),
    "gpu_utils": set(),
    "datasets": {"utils", "tasks"},
    "envs": {"utils", "tasks"},
    "conversion": {"utils", "tasks", "datasets", "envs"},
    "models": {"utils"},
    "training": {"utils", "tasks", "datasets", "models"},
    "planning": {"utils", "tasks", "datasets"},
}


# Inside planning/ and training/, the same one-way rule between their rooms (a sub-package or a module of the
# package's own folder): what each room imports from the other rooms of its package, exactly.
ROOMS = {
    "planning": {
        "objectives": set(),                     # what a plan is scored by
        "ensemble": set(),                       # several world models planned with as one
        "planners": {"objectives"},              # the protocol, the factory, the planners
        "reporting": set(),                      # outputs, plots, merge, wandb
        "execution": {"planners", "reporting"},  # episodes, MPC, evaluator, batches, resume
    },
    "training": {
        "model_config": set(),                   # config -> model spec
        "settings_check": set(),
        "cache_features": set(),
        "run_dir": {"model_config"},             # run_info, checkpoints, config reconciliation, launch, run loading
        "loop": {"run_dir", "model_config"},     # the Accelerate loop
        "action_prior": {"run_dir"},             # heads fitted after training
        "cost_to_go": {"action_prior", "run_dir"},
        "rollout_readout": {"action_prior", "run_dir"},
    },
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


def used_edges() -> dict[str, set[str]]:
    """package -> the other packages its files import."""
    out: dict[str, set[str]] = {pkg: set() for pkg in PACKAGES}
    for p in project_files():
        rel = p.relative_to(ROOT).as_posix()
        layer = rel.split("/")[0]
        out[layer] |= {m.split(".")[0] for m in imported_modules(p.read_text(), rel)} & (set(PACKAGES) - {layer})
    return out


def test_no_forbidden_import_in_the_project():
    bad = [v for rel, mod, v in _all_violations()]
    assert not bad, "imports running back up the layers:\n" + "\n".join(bad)


def test_every_allowed_edge_is_used():
    """The rules are the code's graph, not a looser one: no package is allowed an import it does not make."""
    used = used_edges()
    unused = {pkg: sorted(ALLOWED[pkg] - used[pkg]) for pkg in PACKAGES if ALLOWED[pkg] - used[pkg]}
    assert not unused, f"allowed but not imported (drop them from ALLOWED and the README's diagram): {unused}"


def room_of(path: str) -> str | None:
    """``planning/planners/cem.py`` -> ``planners``; ``training/model_config.py`` -> ``model_config``; None for a
    package's ``__init__.py``."""
    parts = Path(path).with_suffix("").parts
    return None if len(parts) < 2 or parts[1] == "__init__" else parts[1]


def room_edges() -> dict[str, dict[str, set[str]]]:
    """package -> room -> the other rooms of the package its files import."""
    out = {pkg: {room: set() for room in rooms} for pkg, rooms in ROOMS.items()}
    for pkg in ROOMS:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            rel = p.relative_to(ROOT).as_posix()
            room = room_of(rel)
            if room is None:
                continue
            out[pkg].setdefault(room, set())
            for mod in imported_modules(p.read_text(), rel):
                parts = mod.split(".")
                if parts[0] == pkg and len(parts) > 1 and parts[1] != room:
                    out[pkg][room].add(parts[1])
    return out


def test_rooms_import_one_way_and_every_allowed_edge_is_used():
    """planning/ and training/ have rooms; the rules between them are the code's graph, as between packages."""
    edges = room_edges()
    for pkg, rooms in ROOMS.items():
        assert set(edges[pkg]) == set(rooms), f"{pkg}/: every room must be listed in ROOMS (and exist)"
        bad = {room: sorted(edges[pkg][room] - allowed) for room, allowed in rooms.items() if edges[pkg][room] - allowed}
        assert not bad, f"{pkg}/: imports between rooms that ROOMS does not allow: {bad}"
        unused = {room: sorted(allowed - edges[pkg][room]) for room, allowed in rooms.items() if allowed - edges[pkg][room]}
        assert not unused, f"{pkg}/: allowed but not imported (drop them from ROOMS): {unused}"


def test_every_package_is_checked_and_has_files():
    assert {p.relative_to(ROOT).parts[0] for p in project_files()} == set(PACKAGES)
    assert set(ALLOWED) == set(PACKAGES)


@pytest.mark.parametrize("path, source, bad", [
    ("planning/x.py", "def f():\n    from training.run_dir.checkpoint import load_model_file\n", True),  # inside a function
    ("planning/x.py", "import models.vit as v\n", True),
    ("planning/x.py", "from datasets.video_io import write_video\nfrom planning.planners import protocol\n", False),
    ("models/x.py", "from training.loop import trainer\n", True),
    ("datasets/x.py", "class A:\n    def m(self):\n        import models.dino\n", True),
    ("datasets/x.py", "import numpy, torch\nfrom utils.atomic_files import atomic_path\n", False),
    ("envs/x.py", "from datasets.meta import DatasetMeta\n", True),
    ("tasks/x.py", "from envs.robosuite_env import RobosuiteEnv\n", True),  # the registry is a leaf
    ("conversion/x.py", "from envs.robosuite_env import RobosuiteEnv\nfrom datasets import meta\n", False),
    ("utils/x.py", "from datasets import meta\n", True),
    ("gpu_utils/x.py", "from utils import progress\n", True),
    ("models/x.py", "from datasets.feature_cache import cache_dir\n", True),  # models read no data format
    ("models/x.py", "from utils.errors import first_line\n", False),
    ("training/x.py", "from gpu_utils import selection\n", True),  # the entry points select GPUs
    ("planning/x.py", "from envs.robosuite_env import RobosuiteEnv\n", True),  # plan.py hands it the env
    ("training/x.py", "import plan\n", True),  # packages never import an entry point
    ("training/sub/x.py", "from ...planning.planners import protocol\n", True),  # relative import, resolved
    ("plan.py", "from training.run_dir.run_loading import load_world_model\n", False),  # the composition root
    ("benchmarks/b.py", "import planning.planners.cem, training.loop.trainer\n", False),
])
def test_the_checker_flags_what_it_should(path, source, bad):
    assert bool(violations(source, path)) == bad
