"""Atomic training checkpoints: ``RUN/checkpoints/step_XXXXXXXX/{model.safetensors, optim.pt, train_state.json}``.

A checkpoint is written into a temporary directory next to its final name, its files and the
directory are fsynced, it is renamed, and the parent directory is fsynced before the ``latest``
pointer (a relative symlink, replaced atomically with os.replace) moves to it; so after a crash or a
power cut ``latest`` never names a checkpoint whose data is not on disk. A crash at any point leaves
the previous complete checkpoint and pointer intact; the temporary directories a kill leaves behind
are removed by :func:`remove_stale_temps` when the run starts again.

``optim.pt`` holds the optimizer, the LR scheduler and (fp16 runs) the GradScaler state;
``train_state.json`` holds each rank's RNG state under its rank number. The training loop logs each saved
checkpoint as a reference artifact of its wandb run (``training.loop.wandb_setup.log_checkpoint``).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, safe_open, save_file

from utils.atomic_files import atomic_directory

log = logging.getLogger(__name__)
CKPT_DIR = "checkpoints"
LATEST = "latest"
MODEL_FILE = "model.safetensors"
OPTIM_FILE = "optim.pt"
STATE_FILE = "train_state.json"


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU + CUDA) RNG states as JSON-serialisable values."""
    np_state = np.random.get_state()
    st = {"python": repr(random.getstate()),
          "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
          "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = [base64.b64encode(s.numpy().tobytes()).decode() for s in torch.cuda.get_rng_state_all()]
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    import ast

    random.setstate(_to_tuple(ast.literal_eval(st["python"])))
    np.random.set_state((st["numpy"][0], np.array(st["numpy"][1], dtype=np.uint32), *st["numpy"][2:]))
    torch.set_rng_state(torch.frombuffer(bytearray(base64.b64decode(st["torch"])), dtype=torch.uint8))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)
                                      for s in st["cuda"]])


def _to_tuple(x):
    return tuple(_to_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def save_checkpoint(run_dir: str | Path, step: int, model_state: dict[str, torch.Tensor],
                    optim_state: dict[str, Any], train_state: dict[str, Any], metadata: dict[str, str]) -> Path:
    """Write checkpoint ``step`` atomically and point ``latest`` at it; return its directory."""
    root = Path(run_dir) / CKPT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    with atomic_directory(final) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model_state.items()}, tmp / MODEL_FILE,
                  metadata={k: str(v) for k, v in metadata.items()})
        torch.save(optim_state, tmp / OPTIM_FILE)
        (tmp / STATE_FILE).write_text(json.dumps({**train_state, "step": step}, indent=1))
        for name in (MODEL_FILE, OPTIM_FILE, STATE_FILE):
            fsync_path(tmp / name)
        fsync_path(tmp)
    fsync_path(root)  # the rename of the step directory is durable before latest points at it
    _point_latest(root, final.name)
    fsync_path(root)
    return final


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (its entries); directories that cannot be opened are skipped."""
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    except OSError:  # e.g. directories on filesystems that refuse O_RDONLY opens
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _point_latest(root: Path, name: str) -> None:
    """Atomically make ``root/latest`` a relative symlink to ``root/name``."""
    tmp = root / f".{LATEST}.tmp{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(name, tmp, target_is_directory=True)
    os.replace(tmp, root / LATEST)


def remove_stale_temps(run_dir: str | Path) -> list[str]:
    """Clean up after a killed checkpoint write in ``run_dir/checkpoints``; returns what was done.

    Removes ``.step_*.tmp-*`` directories and ``.latest.tmp*`` links (unfinished writes). A
    ``.step_X.old-*`` directory (a re-written step moved aside) is removed when ``step_X`` exists,
    else renamed back to ``step_X``. Call it only while no process of this run writes checkpoints.
    """
    root = Path(run_dir) / CKPT_DIR
    if not root.is_dir():
        return []
    done = []
    for p in sorted(root.iterdir()):
        if (p.name.startswith(".step_") and ".tmp-" in p.name) or p.name.startswith(f".{LATEST}.tmp"):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            done.append(f"removed {p.name}")
        elif p.name.startswith(".step_") and ".old-" in p.name:
            final = root / p.name[1:].split(".old-")[0]
            if final.exists():
                shutil.rmtree(p)
                done.append(f"removed {p.name}")
            else:
                os.replace(p, final)
                done.append(f"restored {final.name}")
    if done:
        log.warning("checkpoints of %s after an interrupted write: %s", run_dir, "; ".join(done))
    return done


def rank_rng_state(states: dict[str, Any], rank: int) -> dict[str, Any]:
    """This rank's saved RNG state; rank 0's (with a warning) when the run was saved with fewer ranks."""
    if str(rank) in states:
        return states[str(rank)]
    log.warning("the checkpoint holds RNG states for ranks %s only (saved with fewer processes): rank %d "
                "continues from rank 0's", ",".join(sorted(states, key=int)), rank)
    return states["0"]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint directory of ``run_dir`` or None."""
    root = Path(run_dir) / CKPT_DIR
    ptr = root / LATEST
    if ptr.is_symlink() and (ptr / STATE_FILE).is_file():
        return root / os.readlink(ptr)
    if ptr.is_file():  # a pointer file (name of the step directory)
        d = root / ptr.read_text().strip()
        if (d / STATE_FILE).is_file():
            return d
    done = sorted(d for d in root.glob("step_*") if (d / STATE_FILE).is_file())
    return done[-1] if done else None


def resolve_checkpoint(run_dir: str | Path, which: str | int = "latest") -> Path:
    """``which`` = "latest", a step number or a directory name -> checkpoint directory (must exist)."""
    root = Path(run_dir) / CKPT_DIR
    if which in ("latest", None):
        d = latest_checkpoint(run_dir)
    elif isinstance(which, str) and which.startswith("step_"):
        d = root / which
    else:
        d = root / step_dir_name(int(which)) if str(which).isdigit() else None
    if d is None or not (d / MODEL_FILE).is_file():
        have = sorted(int(p.name[len("step_"):]) for p in root.glob("step_*") if (p / MODEL_FILE).is_file()
                      and p.name[len("step_"):].isdigit())
        raise FileNotFoundError(f"no checkpoint {which!r} in {root}: model_epoch is 'latest' or a training step "
                                f"that has one ({', '.join(map(str, have[-8:])) if have else 'none written yet'})")
    return d


def load_model_file(ckpt: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(state dict, safetensors metadata) of ``ckpt/model.safetensors``."""
    with safe_open(ckpt / MODEL_FILE, framework="pt") as f:
        meta = f.metadata() or {}
    return load_file(ckpt / MODEL_FILE), meta


def load_optim_file(ckpt: Path) -> dict[str, Any]:
    return torch.load(ckpt / OPTIM_FILE, map_location="cpu", weights_only=True)


def load_train_state(ckpt: Path) -> dict[str, Any]:
    return json.loads((ckpt / STATE_FILE).read_text())


def fitted_on_latest(head_config: Path, run_dir: str | Path, steps: int) -> str | None:
    """The latest checkpoint's name when the learned head whose ``config.json`` is ``head_config`` (the action prior,
    the cost-to-go, the rollout readout) was already fitted on it with ``steps`` steps, else None (fit it again)."""
    latest = latest_checkpoint(run_dir)
    if not head_config.is_file() or latest is None:
        return None
    done = json.loads(head_config.read_text())
    return latest.name if done.get("world_model_checkpoint") == latest.name and done.get("steps") == steps else None


def fit_head_unless_current(label: str, head_dir: Path, run_dir: str | Path, steps: int,
                            fit: Callable[[], tuple[Path, dict[str, float]]]) -> Path:
    """A learned head of a run that has just finished training: ``head_dir`` kept when it was already fitted with
    ``steps`` steps on the run's latest checkpoint (a rerun of a finished run does not spend the fit twice), else
    ``fit()`` -> (its directory, held-out figures), logged under ``label``."""
    if (latest := fitted_on_latest(head_dir / "config.json", run_dir, steps)) is not None:
        log.info("%s: %s is already fitted on %s", label, head_dir, latest)
        return head_dir
    out, stats = fit()
    log.info("%s: %s (%s)", label, out, ", ".join(f"{k} {v:.4g}" for k, v in stats.items()))
    return out
