"""One launch of the training script into its run dir: a new run, or the resume of the run the dir holds.

:func:`open_launch` is the one entry point ``train_robomimic_compress.py`` calls. It returns the config this launch
trains with: for a new run the composed config; for a run dir with a checkpoint the run's own recorded config
(``run_info.json``) plus the keys this command sets, checked against the run's model, task and data; either way with
the launcher's precision applied (``launch_settings``). :meth:`Launch.keep` makes an accepted resume's config the
run's own; :func:`put_back` leaves the run dir of a refused launch as it was.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from training.run_dir.checkpoint import latest_checkpoint
from training.run_dir.launch_settings import (
    LAUNCHER_PRECISION,
    ConfigConflict,
    apply_launcher_precision,
    explicit_keys,
)
from training.run_dir.resume import (
    RunMismatchError,
    check_resume_matches,
    record_resumed_config,
    restore_hydra_config,
)
from training.run_dir.run_config import ResumeOverrideError, resumed_config
from training.run_dir.run_info import load_run_info
from utils.run_dirs import remove_refused_run_dir

log = logging.getLogger(__name__)


class LaunchRefused(ValueError):
    """This launch cannot train in its run dir (another model, task or data than the run's; conflicting settings;
    an unreadable ``run_info.json``): the message is one line."""


@dataclass
class Launch:
    cfg: DictConfig  # the config this launch trains with
    run_dir: Path
    resumed: bool    # the run dir held a checkpoint of this run

    def keep(self) -> None:
        """Call once the launch is accepted (main process): a resume's config becomes the run's own, so what it changed
        (``training.epochs=N``) stays for the next one. A new run records its config when training starts."""
        if self.resumed:
            record_resumed_config(self.run_dir, self.cfg)


def open_launch(cfg: DictConfig, run_dir: Path, overrides: Sequence[str],
                environ: Mapping[str, str] | None = None) -> Launch:
    """The launch of ``cfg`` (Hydra's composed config, ``overrides`` its task overrides) into ``run_dir``.

    Raises:
        LaunchRefused: one line; nothing is written.
    """
    try:
        info = load_run_info(run_dir) if latest_checkpoint(run_dir) is not None else None
    except ValueError as e:  # json.JSONDecodeError, UnicodeDecodeError
        raise LaunchRefused(f"resuming {run_dir}: its run_info.json is not readable JSON ({e})") from None
    if not info or "config" not in info:
        try:
            apply_launcher_precision(cfg, overrides, environ)
        except ConfigConflict as e:
            raise LaunchRefused(str(e)) from None
        return Launch(cfg, run_dir, resumed=False)
    return Launch(_resumed(info["config"], cfg, run_dir, overrides, environ), run_dir, resumed=True)


def _resumed(saved: dict[str, Any], cfg: DictConfig, run_dir: Path, overrides: Sequence[str],
             environ: Mapping[str, str] | None) -> DictConfig:
    """The run's recorded config plus the keys this command sets, the launcher's precision applied, checked."""
    env = os.environ if environ is None else environ
    try:
        merged = resumed_config(saved, cfg, overrides)
        if env.get(LAUNCHER_PRECISION, "no") != "no" and "training.mixed_precision" not in explicit_keys(overrides):
            merged.training.mixed_precision = "no"  # accelerate launch --mixed_precision=X picks it, as on a first launch
        apply_launcher_precision(merged, overrides, environ)
        check_resume_matches(run_dir, merged, Path(to_absolute_path(str(merged.env.data_path))))
    except ResumeOverrideError as e:
        raise LaunchRefused(f"resuming {run_dir}: {e}") from None
    except (RunMismatchError, ConfigConflict) as e:
        raise LaunchRefused(str(e)) from None
    given = [o for o in overrides if not o.lstrip("+~").startswith("hydra.")]
    log.info("resuming %s with the run's own config (run_info.json)%s", run_dir,
             f", set again here: {' '.join(given)}" if given else "")
    return merged


def put_back(run_dir: Path, started: float) -> None:
    """After a refused launch (main process): remove what it made (a run dir it created, Hydra's files and logs it
    began after ``started``), or else put the run's own ``.hydra/config.yaml`` back (Hydra rewrote it)."""
    if not remove_refused_run_dir(run_dir, started):
        restore_hydra_config(run_dir)
