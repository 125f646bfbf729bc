"""What a launch's command line and launcher set beside the Hydra config.

``accelerate launch --mixed_precision=fp16 ...``: Accelerate passes the flag to the script as
``ACCELERATE_MIXED_PRECISION``, while the Accelerator is built from ``training.mixed_precision``. The
launcher's precision is used when the Hydra config leaves it at ``no``; two different non-``no`` values
(or an explicit ``training.mixed_precision=no``) stop with one line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

LAUNCHER_PRECISION = "ACCELERATE_MIXED_PRECISION"


class ConfigConflict(ValueError):
    """Two settings of the same thing disagree (the message is one line naming both)."""


def explicit_keys(task_overrides: Sequence[str]) -> set[str]:
    """The dotted keys set on the command line (``a.b=1``, ``+a.b=1``, ``++a.b=1``)."""
    return {o.lstrip("+~").split("=", 1)[0] for o in task_overrides if "=" in o}


def resolve_mixed_precision(hydra_value: str, explicit: bool, environ: Mapping[str, str] | None = None) -> str:
    """The precision to train with, given ``training.mixed_precision`` and the launcher's flag.

    Raises:
        ConfigConflict: ``accelerate launch --mixed_precision=X`` against a different explicit
            ``training.mixed_precision`` (``no`` from the launcher is its default and never conflicts).
    """
    env = os.environ if environ is None else environ
    launcher = str(env.get(LAUNCHER_PRECISION, "no")).lower()
    hydra_value = str(hydra_value).lower()
    if launcher in ("no", hydra_value):
        return hydra_value
    if hydra_value != "no" or explicit:
        raise ConfigConflict(f"accelerate launch --mixed_precision={launcher} conflicts with "
                             f"training.mixed_precision={hydra_value}: give one of them (or the same value to both)")
    log.info("mixed precision %s from accelerate launch --mixed_precision (training.mixed_precision follows it)",
             launcher)
    return launcher


def apply_launcher_precision(cfg: Any, task_overrides: Sequence[str], environ: Mapping[str, str] | None = None) -> None:
    """Set ``cfg.training.mixed_precision`` to the precision to train with (raises ConfigConflict)."""
    explicit = "training.mixed_precision" in explicit_keys(task_overrides)
    cfg.training.mixed_precision = resolve_mixed_precision(cfg.training.mixed_precision, explicit, environ)
