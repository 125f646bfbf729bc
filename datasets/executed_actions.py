"""The env actions a planning job executed, one file per evaluation.

``plan.py outputs.actions=true`` writes them (``actions/eval_XXX_epY.npz``); ``python -m conversion.exploration
DATASET --from-plans PLAN_DIR`` replays them in the simulator from the same start and appends what truly happened
to the dataset as *plan branches*. A model retrained on them has seen what its own search's plans do (the grasp
that closes beside the cube and lifts nothing), which is where a search exploits a model trained on demonstrations.

Each ``.npz`` holds: ``actions`` float32 [N, A] (the env actions executed, in order), ``episode`` and ``start`` (the
dataset episode and the env step it started from), ``dataset`` (the dataset directory's name) and ``n_episodes``
(its episode count when it was planned on: a check that the file belongs to the dataset it is replayed on), and
``success`` (whether the planner solved the task).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.atomic_files import atomic_path

SUFFIX = ".npz"
KEYS = ("actions", "episode", "start", "dataset", "n_episodes", "success")


@dataclass(frozen=True)
class ExecutedActions:
    """actions: [N, A] env actions executed from env step ``start`` of dataset episode ``episode``."""

    actions: np.ndarray
    episode: int
    start: int
    dataset: str
    n_episodes: int
    success: bool

    def __post_init__(self) -> None:
        if self.actions.ndim != 2 or len(self.actions) == 0:
            raise ValueError(f"executed actions must be a non-empty [N, A] array, got shape {self.actions.shape}")
        if self.episode < 0 or self.start < 0 or self.n_episodes <= self.episode:
            raise ValueError(f"bad episode/start: episode {self.episode} of {self.n_episodes}, start {self.start}")


def save(path: str | Path, rec: ExecutedActions) -> Path:
    """Write ``rec`` to ``path`` (atomically: a killed job leaves no half-written file)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, actions=rec.actions.astype(np.float32), episode=rec.episode, start=rec.start,
                     dataset=rec.dataset, n_episodes=rec.n_episodes, success=rec.success)
    return Path(path)


def load(path: str | Path) -> ExecutedActions:
    """Read one file written by :func:`save`. Raises ValueError (one line) when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in KEYS if k not in z.files]
            if missing:
                raise ValueError(f"{path}: not an executed-actions file (missing {', '.join(missing)})")
            return ExecutedActions(np.asarray(z["actions"], dtype=np.float32), int(z["episode"]), int(z["start"]),
                                   str(z["dataset"]), int(z["n_episodes"]), bool(z["success"]))
    except (OSError, EOFError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not a readable executed-actions file ({exc})") from exc


def find(plan_dir: str | Path) -> list[Path]:
    """The executed-actions files of a planning dir (its ``actions/``), sorted. Raises ValueError if there are none."""
    files = sorted((Path(plan_dir) / "actions").glob(f"*{SUFFIX}"))
    if not files:
        raise ValueError(f"{plan_dir} holds no executed actions (actions/*{SUFFIX}): plan with outputs.actions=true")
    return files
