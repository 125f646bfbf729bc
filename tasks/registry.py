"""The task registry: the built-in entries (``tasks/builtin.py``) indexed by name, read-only.

Nothing else in the code lists tasks: :func:`get_task` / :func:`task_for_env` are the only ways in.
A task is added as one entry in ``tasks/builtin.py`` (the README's "Extending"); the index is built
once, at import, and checked there (no two entries share a name or a robosuite env).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from tasks.builtin import BUILTIN_TASKS
from tasks.task import Task

__all__ = ["TASKS", "all_tasks", "get_task", "index_tasks", "known_tasks", "task_for_env"]


def index_tasks(tasks: Iterable[Task]) -> Mapping[str, Task]:
    """A read-only ``name -> Task`` index in the given order; ValueError when two entries clash."""
    index: dict[str, Task] = {}
    for task in tasks:
        clash = next((t.name for t in index.values() if t.name == task.name or t.env_name == task.env_name), None)
        if clash is not None:
            raise ValueError(f"task {task.name!r} ({task.env_name}) clashes with {clash!r}: "
                             "two entries with one name or one robosuite env")
        index[task.name] = task
    return MappingProxyType(index)


TASKS: Mapping[str, Task] = index_tasks(BUILTIN_TASKS)


def known_tasks() -> list[str]:
    """Names of the tasks, sorted."""
    return sorted(TASKS)


def all_tasks() -> list[Task]:
    """The tasks, in the order of ``tasks/builtin.py``."""
    return list(TASKS.values())


def get_task(name: str) -> Task:
    """The task named ``name``; a one-line ValueError listing the known tasks if there is none."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(known_tasks())}); "
                         "add one in tasks/builtin.py") from None


def task_for_env(env_name: str) -> Task | None:
    """The task whose robosuite env is ``env_name``, or None (an unregistered env: generic layout)."""
    return next((t for t in TASKS.values() if t.env_name == env_name), None)
