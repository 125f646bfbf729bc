"""A planner from its config (``conf/planner/<name>.yaml``: ``_target_``, ``name`` and the constructor's settings)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from planning.planners.protocol import Planner


def _import(target: str):
    module, _, attr = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"planner _target_ {target!r} cannot be imported: {exc}") from None


def searches_by_cost(target: str) -> bool:
    """True if the planner class ``target`` (a ``_target_``) chooses among candidates by their cost under its
    objective (``searches_by_cost``, see :class:`Planner`); ValueError (one line) if it cannot be imported."""
    return bool(getattr(_import(target), "searches_by_cost", False))


def build_planner(spec: Mapping[str, Any], model=None, objective=None) -> Planner:
    """A planner from its config (``_target_``, ``name`` and the constructor's settings).

    ``model`` / ``objective`` are passed only to constructors that take them. Raises ValueError (one
    line) for a setting the constructor does not take, a ``name`` that is not the class's own, or a
    result that does not satisfy :class:`Planner`.
    """
    settings = dict(spec)
    target, name = str(settings.pop("_target_", "")), settings.pop("name", None)
    cls = _import(target)
    params = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(settings) - set(params) | set(settings) & {"model", "objective"})
        if unknown:
            takes = [p for p in params if p not in ("model", "objective")]
            raise ValueError(f"planner {name or target}: unknown setting(s) {', '.join(unknown)} "
                             f"({cls.__name__} takes {', '.join(takes) or 'none'})")
    given = {k: v for k, v in (("model", model), ("objective", objective)) if k in params}
    if name is not None and "name" in params:
        given["name"] = str(name)
    planner = cls(**given, **settings)
    if not isinstance(planner, Planner):
        raise ValueError(f"{target} is not a planner (needs name, uses_model, horizon and plan(ctx))")
    if name is not None and name != planner.name:
        raise ValueError(f"planner.name={name!r} but {target} calls itself {planner.name!r}: make them equal")
    return planner
