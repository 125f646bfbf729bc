"""Config names and group choices on a Hydra command line, checked before Hydra reads them.

Hydra answers ``task=foo`` (or ``--config-name=nope``) with a multi-line dump of its search path and a
traceback hint, exit 1. :func:`unknown_choice` finds such an argument first and says in one line what
the choices are, so an entry point can print it and exit 2 before Hydra creates a run directory.

The command line is read by Hydra's own argument parser, so every spelling Hydra accepts (``-cn X``,
``--config-name=X``, ``-cp X``, ``--config-path=X``, ``-cd X``, argparse's abbreviations such as
``--config-p X``) means here what it means to Hydra, and a command Hydra refuses is left to Hydra's message.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path


class _Unparsed(Exception):
    """Hydra's parser would stop on this command line (or print its version): Hydra answers it."""


def _choices(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def hydra_args(argv: Sequence[str]) -> argparse.Namespace | None:
    """``argv`` as ``hydra.main`` parses it (``config_name``, ``config_path``, ``config_dir``, ``overrides``,
    ...), or None for a command line Hydra's parser refuses or answers itself (``--version``)."""
    from hydra._internal.utils import get_args_parser  # the parser hydra.main uses (hydra-core 1.3)

    parser = get_args_parser()

    def stop(*_args, **_kwargs):
        raise _Unparsed

    parser.error = parser.exit = stop  # argparse would print and exit; leave both to Hydra
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return parser.parse_args(list(argv))
        except _Unparsed:
            return None


def unknown_choice(argv: Sequence[str], conf_dir: str | Path) -> str | None:
    """One line naming the first ``group=choice`` (or ``--config-name``) of ``argv`` that ``conf_dir`` does
    not hold, with the choices it does hold; None when every one is there. Keys that are not groups
    (``training.epochs=3``), deletions (``~group``) and Hydra's own groups (``hydra/...``) are left to Hydra,
    and so is a command line whose configs may come from elsewhere (``--config-path``, ``--config-dir``,
    ``hydra.searchpath``) or that Hydra's parser refuses."""
    args = hydra_args(argv)
    if args is None or args.config_path is not None or args.config_dir is not None:
        return None
    overrides = [a for a in args.overrides if not a.startswith("~")]
    if any(a.lstrip("+").startswith("hydra.searchpath") for a in overrides):
        return None  # choices may come from elsewhere: Hydra decides
    conf = Path(conf_dir)
    name = args.config_name
    if name is not None and name.endswith(".yaml"):
        name = name[: -len(".yaml")]
    if name is not None and not (conf / f"{name}.yaml").is_file():
        return f"--config-name={name}: no such config (choose from {', '.join(_choices(conf))})"
    for arg in overrides:
        if "=" not in arg:
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


def renamed_key(argv: Sequence[str], renamed: Mapping[str, str]) -> str | None:
    """One line for the first override of ``argv`` that sets a key by an old name (``renamed``: old -> today's), which
    Hydra would refuse with its multi-line struct error; None when there is none."""
    args = hydra_args(argv)
    for arg in [] if args is None else args.overrides:
        key = arg.lstrip("+~").split("=", 1)[0]
        if key in renamed:
            return f"{key} is not a setting: its name is {renamed[key]} (e.g. {renamed[key]}=true)"
    return None
