"""A Hydra output directory that a refused command leaves behind: removed when it holds nothing else.

Hydra creates the run directory, ``.hydra/`` and the job's log file before the script sees its config,
so a command refused on bad input (exit 2) would leave an empty-looking run behind for every typo. Only
what this launch made goes: Hydra's three files, and log files whose first line was written by this
launch (an earlier attempt's log keeps the directory); a directory is removed only once it is empty.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

HYDRA_FILES = (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml")
_STAMP = re.compile(r"^\[?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")  # the log formats of Hydra and the trainer


def _written_since(log_file: Path, started: float) -> bool:
    """True for an empty log, or one whose first line carries a time at or after ``started``."""
    with open(log_file, errors="replace") as f:
        first = f.readline()
    if not first:
        return True
    m = _STAMP.match(first)
    return bool(m) and time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) >= int(started) - 1


def launch_files(run_dir: Path, started: float) -> list[Path] | None:
    """The files this launch made in ``run_dir``, or None when it holds anything else (kept whole)."""
    made = []
    for p in sorted(run_dir.rglob("*")):
        rel = p.relative_to(run_dir).as_posix()
        if p.is_symlink():
            return None
        if p.is_dir():
            if rel in (".hydra", "logs"):
                continue
            return None
        if rel in HYDRA_FILES or (p.suffix == ".log" and rel.count("/") <= 1 and _written_since(p, started)):
            made.append(p)
            continue
        return None
    return made


def remove_refused_run_dir(run_dir: str | Path, started: float) -> bool:
    """Remove what a refused command launched at ``started`` (``time.time()``) made in ``run_dir``, and the
    directory when that leaves it empty; True if it is gone. Never the working directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or run_dir.is_symlink() or run_dir.resolve() == Path.cwd().resolve():
        return False
    made = launch_files(run_dir, started)
    if made is None:
        return False
    _close_file_handlers_in(run_dir)
    for p in made:
        p.unlink(missing_ok=True)
    for d in (run_dir / ".hydra", run_dir / "logs", run_dir):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
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
