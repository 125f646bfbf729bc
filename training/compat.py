"""The spellings users of the project this one replaces still type, mapped onto this config.

* ``model.gradient_checkpointing=true`` is the old name of ``training.grad_checkpointing``;
* ``accelerate launch --mixed_precision=fp16 ...``: Accelerate passes the flag to the script as
  ``ACCELERATE_MIXED_PRECISION``, while the Accelerator is built from ``training.mixed_precision``.
  The launcher's precision is used when the Hydra config leaves it at ``no``; two different
  non-``no`` values (or an explicit ``training.mixed_precision=no``) stop with one line.
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


def apply_old_spellings(cfg: Any) -> None:
    """Move ``model.gradient_checkpointing`` (old name) to ``training.grad_checkpointing``; edits ``cfg``."""
    old = cfg.model.get("gradient_checkpointing")
    if old is None:
        return
    log.info("model.gradient_checkpointing=%s is the old spelling of training.grad_checkpointing: using it", old)
    cfg.training.grad_checkpointing = bool(old)
    cfg.model.gradient_checkpointing = None  # the model config (frozen at the first launch) stays as it was


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


def reconcile_launch_settings(cfg: Any, task_overrides: Sequence[str], environ: Mapping[str, str] | None = None) -> None:
    """Apply the old spellings and the launcher's precision to ``cfg`` (raises ConfigConflict)."""
    keys, old = explicit_keys(task_overrides), cfg.model.get("gradient_checkpointing")
    if ("model.gradient_checkpointing" in keys and "training.grad_checkpointing" in keys and old is not None
            and bool(old) != bool(cfg.training.grad_checkpointing)):
        raise ConfigConflict(f"model.gradient_checkpointing={old} (the old spelling) conflicts with "
                             f"training.grad_checkpointing={cfg.training.grad_checkpointing}: give one of them")
    apply_old_spellings(cfg)
    explicit = "training.mixed_precision" in explicit_keys(task_overrides)
    cfg.training.mixed_precision = resolve_mixed_precision(cfg.training.mixed_precision, explicit, environ)
