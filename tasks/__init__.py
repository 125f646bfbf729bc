"""Tasks: one entry per task (``tasks/task.py`` its fields, ``tasks/builtin.py`` the entries,
``tasks/registry.py`` the read-only index), the layout of the low-dim vectors it defines
(``tasks/state_layout.py``) and the scripted demo policy (``tasks/scripted_policy.py``). Pure numpy:
no simulator, dataset or model code, so ``datasets`` and
``envs`` both build on it.
"""

from tasks.registry import get_task, known_tasks, task_for_env
from tasks.task import Task

__all__ = ["Task", "get_task", "known_tasks", "task_for_env"]
