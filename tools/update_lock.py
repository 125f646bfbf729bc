#!/usr/bin/env python3
"""Write constraints.txt: the exact version of every package the project needs, as installed in this environment.

    python tools/update_lock.py            # after the test suite passed in this environment
    python tools/update_lock.py --check    # exit 1 (one line) when constraints.txt is not what this would write

The packages are the dependency closure of ``dino-wm-robomimic[dev,local,slurm]`` read from the installed
distributions' own metadata (markers evaluated for this interpreter), so nothing installed for another reason
lands in the lock. torch itself and what only its CUDA builds require (``nvidia-*``, ``triton``) are left out:
which torch build is installed is setup_and_prepare.sh's choice (``--cuda``, ``TORCH_VERSION``), and a pin of the
CPU build would make pip replace a CUDA one; torch's other requirements are pinned like the rest.
setup_and_prepare.sh installs torch and then the project with ``pip install -c constraints.txt``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "dino-wm-robomimic"
EXTRAS = ("dev", "local", "slurm")
LOCK = ROOT / "constraints.txt"
TORCH = "torch"  # its build (CPU or CUDA) is setup_and_prepare.sh's to choose: not pinned
GPU_BUILD_ONLY = re.compile(r"^(triton|nvidia-.*)$")  # what a CUDA build of torch requires besides the CPU one's
HEADER = f"""\
# Exact versions the test suite passed with; setup_and_prepare.sh installs with `pip install -c constraints.txt`.
# Written by `python tools/update_lock.py` from the environment it runs in: the dependency closure of
# {PROJECT}[{",".join(EXTRAS)}], without torch (its CPU or CUDA build is chosen by setup_and_prepare.sh).
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str, extras: Iterable[str], requires: Callable[[str], list[str] | None]) -> dict[str, str]:
    """Every distribution ``root[extras]`` needs, transitively: canonical name -> the name its metadata gives.

    ``requires(name)`` returns a distribution's requirement strings (None when it is not installed: an error,
    the environment does not hold what the project needs). Markers are evaluated for this interpreter, with
    the extras each distribution was asked for."""
    todo = [(canonical(root), frozenset(extras))]
    asked: dict[str, set[str]] = {}
    found: dict[str, str] = {}
    while todo:
        name, wanted = todo.pop()
        seen = asked.setdefault(name, set())
        if name in found and wanted <= seen:
            continue
        seen |= wanted
        reqs = requires(name)
        if reqs is None:
            raise SystemExit(f"update_lock.py: {name} is required but not installed here; install the project "
                             f"first (./setup_and_prepare.sh)")
        found[name] = name
        for text in reqs:
            req = Requirement(text)
            envs = [{"extra": e} for e in sorted(seen)] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            if name == TORCH and GPU_BUILD_ONLY.match(canonical(req.name)):
                continue
            todo.append((canonical(req.name), frozenset(req.extras)))
    return found


def project_requires() -> list[str]:
    """The project's requirements as pyproject.toml states them now (its installed metadata may be older)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the metadata of the installed (editable) project
        return metadata.requires(PROJECT) or []
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [*project["dependencies"],
            *(f"{req}; extra == '{extra}'" for extra, reqs in extras.items() for req in reqs)]


def installed_requires(name: str) -> list[str] | None:
    if name == canonical(PROJECT):
        return project_requires()
    try:
        return metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return None


def lock_text(versions: dict[str, str]) -> str:
    """``name==version`` lines (sorted, torch left out) under the header."""
    lines = [f"{n}=={v}" for n, v in sorted(versions.items()) if n != TORCH]
    return HEADER + "\n".join(lines) + "\n"


def current_lock() -> str:
    names = closure(PROJECT, EXTRAS, installed_requires)
    names.pop(canonical(PROJECT))
    return lock_text({n: metadata.version(n) for n in names})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with constraints.txt instead of writing it")
    args = parser.parse_args(argv)
    text = current_lock()
    if args.check:
        if LOCK.is_file() and LOCK.read_text() == text:
            return 0
        print("update_lock.py: constraints.txt differs from this environment's versions "
              "(run python tools/update_lock.py after the tests pass)", file=sys.stderr)
        return 1
    LOCK.write_text(text)
    print(f"{LOCK}: {text.count(chr(10)) - HEADER.count(chr(10))} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
