"""Config names and group choices on a Hydra command line, checked before Hydra reads them.

Hydra answers ``task=foo`` (or ``--config-name=nope``) with a multi-line dump of its search path and a
traceback hint, exit 1. :func:`unknown_choice` finds such an argument first and says in one line what
the choices are, so an entry point can print it and exit 2 before Hydra creates a run directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def _choices(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def _config_name(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        for flag in ("--config-name", "-cn"):
            if arg == flag and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return None


def unknown_choice(argv: Sequence[str], conf_dir: str | Path) -> str | None:
    """One line naming the first ``group=choice`` (or ``--config-name``) of ``argv`` that ``conf_dir`` does
    not hold, with the choices it does hold; None when every one is there. Keys that are not groups
    (``training.epochs=3``), deletions (``~group``) and Hydra's own groups (``hydra/...``) are left to Hydra."""
    conf = Path(conf_dir)
    if any(a.startswith(("-cd", "--config-dir", "hydra.searchpath", "+hydra.searchpath")) for a in argv):
        return None  # choices may come from elsewhere: Hydra decides
    name = _config_name(argv)
    if name is not None and name.endswith(".yaml"):
        name = name[: -len(".yaml")]
    if name is not None and not (conf / f"{name}.yaml").is_file():
        return f"--config-name={name}: no such config (choose from {', '.join(_choices(conf))})"
    for arg in argv:
        if arg.startswith(("-", "~")) or "=" not in arg:
            continue
        key, value = arg.lstrip("+").split("=", 1)
        group = conf / key.split("@", 1)[0]
        if key.startswith("hydra") or "." in key or not group.is_dir():
            continue
        if any(c in value for c in ",([*"):  # a sweep (-m a,b), choice(...), glob(*): Hydra expands it
            continue
        if value and value != "null" and not (group / f"{value}.yaml").is_file():
            return f"{key}={value}: no such {key} (choose from {', '.join(_choices(group))})"
    return None
