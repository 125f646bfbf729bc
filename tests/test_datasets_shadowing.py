"""Our top-level ``datasets`` package shares its name with Hugging Face ``datasets``.

Run from the repository root (``python plan.py``, ``python -m datasets.download_robomimic``, pytest), the root is
first on sys.path and the project's own packages are what its code imports; transformers and accelerate must
still import and work there. Installing the project (``pip install -e .``, as setup_and_prepare.sh does, or
a wheel) claims no import name at all, so nothing of the project's shadows another distribution's package in
the environment (pyproject.toml, [tool.setuptools]).
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import sys
sys.path.insert(0, {root!r})
import datasets
assert datasets.__file__.startswith({root!r}), datasets.__file__
import datasets.meta, datasets.normalizer  # ours
import transformers
from transformers import Dinov2Config, Dinov2Model
import torch
m = Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, patch_size=14,
                             image_size=28, intermediate_size=64))
out = m(pixel_values=torch.rand(1, 3, 28, 28)).last_hidden_state
assert out.shape == (1, 5, 32), out.shape
import accelerate
from accelerate import Accelerator
acc = Accelerator(cpu=True)
model, opt = acc.prepare(torch.nn.Linear(2, 1), torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
from accelerate.utils import is_datasets_available
print("ok", transformers.__version__, accelerate.__version__, is_datasets_available())
"""


def test_transformers_and_accelerate_work_beside_our_datasets_package():
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(root=str(ROOT))], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok")


def test_feature_cache_cli_runs_as_a_module_from_the_root():
    proc = subprocess.run([sys.executable, "-m", "training.cache_features", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "feature_cache" in proc.stdout


# ---------------------------------------------------------------- what installing the project puts on the path

OWN_NAME = "dino_wm_robomimic"  # the one import name the distribution may claim (it claims none today)
NOT_COPIED = {"build", "dist", "data", "outputs", "multirun", "plan_outputs", "wandb", "logs"}
FAKE = "datasets-of-another-distribution"


def _project_import_names() -> list[str]:
    """The repository's top-level packages and modules: what ``import X`` finds from the root."""
    return sorted({p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
                  | {p.stem for p in ROOT.glob("*.py")})


def _top_level(wheel: Path) -> set[str]:
    """The import names a wheel installs: its top-level files and folders, and for an editable wheel the
    names its finder maps (setuptools' ``MAPPING``) and the folders its static .pth files add."""
    names: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            top = name.split("/")[0]
            if top.endswith((".dist-info", ".data")):
                continue
            if top.startswith("__editable__") and top.endswith("_finder.py"):
                tree = ast.parse(zf.read(name))
                for node in ast.walk(tree):
                    if isinstance(node, ast.AnnAssign | ast.Assign):
                        targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
                        if any(getattr(t, "id", "") in ("MAPPING", "NAMESPACES") for t in targets):
                            names |= {k.split(".")[0] for k in ast.literal_eval(node.value)}
            elif top.endswith(".pth"):
                for line in zf.read(name).decode().splitlines():
                    line = line.strip()
                    if line and not line.startswith(("#", "import ")):  # a folder: every name in it is claimed
                        folder = Path(line)
                        names |= {p.name if p.is_dir() else p.stem for p in folder.iterdir()
                                  if (p / "__init__.py").is_file() or p.suffix == ".py"} if folder.is_dir() else set()
            else:
                names.add(top[:-3] if top.endswith(".py") else top)
    return names - {"__pycache__"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The project's wheel and editable wheel, built by setuptools' PEP 517 backend (what pip calls) from a
    copy of the repository's top level (links to its folders: nothing is written into the repository)."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("needs setuptools (the build backend) in this environment")
    if int(version.split(".")[0]) < 64:
        pytest.skip(f"setuptools {version} builds no PEP 660 editable wheel")
    base = tmp_path_factory.mktemp("build")
    src = base / "src"
    src.mkdir()
    for p in ROOT.iterdir():
        if not p.name.startswith(".") and p.name not in NOT_COPIED and not p.name.endswith(".egg-info"):
            (src / p.name).symlink_to(p)
    for kind in ("wheel", "editable"):
        (base / kind).mkdir()
    build = (f"from setuptools import build_meta as b; b.build_wheel({str(base / 'wheel')!r}); "
             f"b.build_editable({str(base / 'editable')!r})")  # no sys.argv: build_meta reads it
    proc = subprocess.run([sys.executable, "-c", build], cwd=src, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return {kind: next((base / kind).glob("*.whl")) for kind in ("wheel", "editable")}


@pytest.mark.parametrize("kind", ["wheel", "editable"])
def test_the_install_claims_no_import_name_of_another_distribution(built, kind):
    """pip install . / pip install -e . (setup_and_prepare.sh) adds no top-level module but the project's
    own name: not datasets, models, utils, tasks, ... nor any name a distribution in this environment owns."""
    names = _top_level(built[kind])
    assert names <= {OWN_NAME}, f"the {kind} installs top-level {sorted(names - {OWN_NAME})}"
    owners = importlib.metadata.packages_distributions()
    taken = {n: owners[n] for n in names if set(owners.get(n, [])) - {"dino-wm-robomimic", "dino_wm_robomimic"}}
    assert not taken, f"the {kind} installs names other distributions own: {taken}"


SITECUSTOMIZE = """import os, site
site.addsitedir(os.path.dirname(os.path.abspath(__file__)))  # its .pth files, as for a venv's site-packages
"""

OUTSIDE = r"""
import site
site.addsitedir({site!r})  # python -S: this site-packages alone (and the standard library)
import importlib.util, os
import datasets
assert getattr(datasets, "MARKER", None) == {fake!r}, datasets.__file__
root = os.path.realpath({root!r})
for name in {names!r}:  # nothing of the project's is importable away from the repository
    spec = importlib.util.find_spec(name)
    where = spec and (spec.origin or next(iter(spec.submodule_search_locations or []), None))
    assert not (where and os.path.realpath(where).startswith(root + os.sep)), (name, where)
print("ok")
"""

AT_ROOT = r"""
import os
from importlib.machinery import PathFinder
assert PathFinder.find_spec("datasets", [{site!r}]) is not None  # the other one is on the path here too
import datasets, datasets.meta
assert not hasattr(datasets, "MARKER"), datasets.__file__
assert os.path.realpath(datasets.meta.__file__) == os.path.realpath({meta!r}), datasets.meta.__file__
print("ok")
"""


@pytest.mark.parametrize("kind", ["wheel", "editable"])
def test_a_datasets_package_beside_the_installed_project_imports_as_intended(built, kind, tmp_path):
    """A venv-like site-packages holds another distribution's ``datasets`` (with a marker attribute) and the
    project installed from its wheel / editable wheel: away from the repository ``import datasets`` gives that
    one and no name of the project's resolves; run from the repository root with that site on the path, the
    project's code imports its own ``datasets`` (python -m datasets.download_robomimic, as setup_and_prepare.sh
    runs it)."""
    site = tmp_path / "site-packages"
    (site / "datasets").mkdir(parents=True)
    (site / "datasets" / "__init__.py").write_text(f"MARKER = {FAKE!r}\n")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    with zipfile.ZipFile(built[kind]) as zf:  # what pip does with a wheel: unpack it into site-packages
        zf.extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    # away from the repository, in a venv of this site alone (not this environment's own install of the project)
    outside = subprocess.run([sys.executable, "-S", "-c", OUTSIDE.format(site=str(site), fake=FAKE, root=str(ROOT),
                                                                         names=_project_import_names())],
                             cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert outside.returncode == 0 and outside.stdout.strip() == "ok", outside.stderr[-3000:]

    at_root = subprocess.run([sys.executable, "-c", AT_ROOT.format(site=str(site), meta=str(ROOT / "datasets" / "meta.py"))],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert at_root.returncode == 0 and at_root.stdout.strip() == "ok", at_root.stderr[-3000:]
    cli = subprocess.run([sys.executable, "-m", "datasets.download_robomimic", "--help"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and "robomimic" in cli.stdout, cli.stderr[-3000:]
