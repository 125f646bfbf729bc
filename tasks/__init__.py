"""Tasks: one registry entry per task (``tasks/registry.py``, built-ins in ``tasks/builtin.py``), the
layout of the low-dim vectors it defines (``tasks/state_layout.py``) and the scripted demo policy
(``tasks/scripted_policy.py``). Pure numpy: no simulator, dataset or model code, so ``datasets`` and
``envs`` both build on it.
"""

from tasks import builtin as _builtin  # noqa: F401  (registers lift, can, square)
from tasks.registry import Task, get_task, known_tasks, register_task, task_for_env, unregister_task

__all__ = ["Task", "get_task", "known_tasks", "register_task", "task_for_env", "unregister_task"]
