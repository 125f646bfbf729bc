"""The run's frozen model/data config: recorded at the first launch, checked on every resume.

Hydra rewrites ``RUN/.hydra/config.yaml`` each time a command runs into the same run dir, so the
config a checkpoint was trained with is kept in ``run_info.json`` (``config``). A resume may change
how training proceeds (``training.*``, ``wandb.*``, GPUs, ``debug``) but nothing that defines the
model or its data; planning rebuilds the model from this frozen copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from training.run_dir.launch_settings import explicit_keys

# Top-level keys (and dotted sub-keys) a resume may change: they steer training, not the model.
# ``task`` names the data (like env.data_path); the model keys it feeds (alignment_dim) are checked on
# their own, and runs saved before the task group existed have no ``task`` section. ``action_prior``,
# ``cost_to_go`` and ``rollout_readout`` are fitted after the world model and do not change it.
MUTABLE = ("training", "action_prior", "cost_to_go", "rollout_readout", "wandb", "debug", "num_gpus", "min_free_memory_gb",
           "gpu", "name", "encoder.cache", "env.data_path", "task")
_ABSENT = object()  # OmegaConf.select's default: tells a key that is not there from one set to null


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
    keep = [k for k in sorted(set(a) | set(b)) if not _is_mutable(k)]
    return [k for k in keep if a.get(k) != b.get(k)]


class ResumeOverrideError(ValueError):
    """A resume's command line sets something that is not one config key (e.g. a global preset)."""


def resumed_config(saved: dict[str, Any], composed: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The config a resumed run trains with: its recorded config, plus the keys this command line sets.

    ``composed`` is what Hydra built from the defaults and ``overrides`` (its task overrides). Keys the
    run did not record (added to the project since) keep the composed defaults; every other value comes
    from ``saved``, so a resume does not need the first launch's overrides repeated, and ``training.epochs``
    stays the run's own unless this command sets it. A set key that changes the model or its data is
    left in, for :func:`changed_model_keys` to refuse. A config group given again (``env=demo``,
    ``task=can``, ``preset=gpu_full``) is accepted when it gives the run's own model, task and data (the
    first launch's command line, rerun), and keeps the run's values (its ``env.data_path`` too).

    Raises:
        ResumeOverrideError: a group that gives another model, task or data; a ``~key`` deletion.
    """
    deletions = [o for o in overrides if o.startswith("~")]
    if deletions:
        raise ResumeOverrideError(f"{deletions[0]}: a resume keeps the run's config; set the key's value instead "
                                  "(e.g. action_prior.train=false)")
    out = OmegaConf.merge(OmegaConf.create(frozen_config(composed)), OmegaConf.create(saved))
    for key in sorted(explicit_keys(overrides)):
        if key == "hydra" or key.startswith("hydra."):
            continue
        value = OmegaConf.select(composed, key, default=_ABSENT)
        if value is _ABSENT:  # a _global_ group (preset=...): the whole config it gives must be the run's
            changed = changed_model_keys(saved, frozen_config(composed))
        elif isinstance(value, DictConfig):  # a group given again
            changed = _changed_in_group(key, OmegaConf.select(OmegaConf.create(saved), key), value)
        else:
            if isinstance(value, ListConfig):
                value = OmegaConf.to_container(value, resolve=True)
            OmegaConf.update(out, key, value, merge=False, force_add=True)
            continue
        if changed:
            raise ResumeOverrideError(f"{key}=... gives another model, task or data than the run's "
                                      f"({', '.join(changed[:6])}): a resume keeps them; set only the keys to change "
                                      "(training.*, wandb.*, gpu.*, debug), or use another hydra.run.dir")
    return out


def _changed_in_group(key: str, saved: Any, given: DictConfig) -> list[str]:
    """Keys of group ``key`` that differ between the run's values and the group's, except the ones a resume
    may change inside it (``env.data_path``, ``encoder.cache``); the group's own name counts (``task``)."""
    inside = [m for m in MUTABLE if m.startswith(key + ".")]
    a, b = _flatten(_nested(key, saved)), _flatten(_nested(key, given))
    return [k for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and not any(k == m or k.startswith(m + ".") for m in inside)]


def _is_mutable(key: str) -> bool:
    return any(key == m or key.startswith(m + ".") for m in MUTABLE)


def _nested(key: str, value: Any) -> dict[str, Any]:
    """``a.b``, v -> {"a": {"b": v}} (plain containers)."""
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def same_path(a: str | Path, b: str | Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()
