"""A Hydra output directory that a refused command leaves behind: removed when it holds nothing else.

Hydra creates the run directory, ``.hydra/`` and the job's log file before the script sees its config,
so a command refused on bad input (exit 2) would leave an empty-looking run behind for every typo.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path


def only_launch_files(run_dir: Path) -> bool:
    """True when every file under ``run_dir`` is Hydra's (``.hydra/``) or a ``*.log`` file."""
    for p in run_dir.rglob("*"):
        if p.is_dir() or p.suffix == ".log" or ".hydra" in p.relative_to(run_dir).parts:
            continue
        return False
    return True


def remove_refused_run_dir(run_dir: str | Path) -> bool:
    """Remove ``run_dir`` when a refused command wrote nothing into it but launch files; True if removed.

    A directory that holds anything else (checkpoints, results, a user's files) is left as it is.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or not only_launch_files(run_dir):
        return False
    _close_file_handlers_in(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    return not run_dir.exists()


def _close_file_handlers_in(run_dir: Path) -> None:
    """Detach and close the logging file handlers that write into ``run_dir`` (Hydra's job log, ours)."""
    root = run_dir.resolve()
    for logger in [logging.getLogger(), *(v for v in logging.root.manager.loggerDict.values()
                                          if isinstance(v, logging.Logger))]:
        for h in list(logger.handlers):
            if isinstance(h, logging.FileHandler) and root in Path(h.baseFilename).resolve().parents:
                logger.removeHandler(h)
                h.close()
