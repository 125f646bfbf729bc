"""``RUN/run_info.json``: what the first launch of a run recorded (its dataset path, train / val / test split,
dims, encoder and frozen config), read by every resume and by the wandb set-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from utils.atomic_files import atomic_write_json

RUN_INFO = "run_info.json"


def load_run_info(run_dir: Path) -> dict[str, Any] | None:
    """The run's record, or None for a run dir without one (a new run)."""
    p = run_dir / RUN_INFO
    return json.loads(p.read_text()) if p.is_file() else None


def write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    atomic_write_json(run_dir / RUN_INFO, info, indent=1)
