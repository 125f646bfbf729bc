"""The run's frozen model/data config: recorded at the first launch, checked on every resume.

Hydra rewrites ``RUN/.hydra/config.yaml`` each time a command runs into the same run dir, so the
config a checkpoint was trained with is kept in ``run_info.json`` (``config``). A resume may change
how training proceeds (``training.*``, ``wandb.*``, GPUs, ``debug``) but nothing that defines the
model or its data; planning rebuilds the model from this frozen copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

# Top-level keys (and dotted sub-keys) a resume may change: they steer training, not the model.
# ``task`` names the data (like env.data_path); the model keys it feeds (alignment_dim) are checked on
# their own, and runs saved before the task group existed have no ``task`` section. ``action_prior``
# is fitted after the world model and does not change it.
MUTABLE = ("training", "action_prior", "wandb", "debug", "num_gpus", "min_free_memory_gb", "gpu", "name",
           "encoder.cache", "env.data_path", "task")


def frozen_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config without Hydra's own section, as plain containers (JSON-able)."""
    return OmegaConf.to_container(cfg, resolve=True)


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}." if isinstance(v, dict) else f"{prefix}{k}"))
    return out


def changed_model_keys(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two frozen configs, ignoring the MUTABLE ones."""
    a, b = _flatten(saved), _flatten(current)
    keep = [k for k in sorted(set(a) | set(b)) if not any(k == m or k.startswith(m + ".") for m in MUTABLE)]
    return [k for k in keep if a.get(k) != b.get(k)]


def same_path(a: str | Path, b: str | Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()
