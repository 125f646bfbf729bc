"""The simulator: robosuite environments rebuilt from robomimic env args (``envs/robosuite_env.py``),
their controller state (``envs/state_restore.py``) and scripted demo generation
(``envs/generate_demos.py``). Task knowledge comes from ``tasks``; nothing here imports ``datasets``.

Importing this package drops robosuite's import-time notices that concern optional robosuite
extras we do not use (private macro file, robosuite_models, mink IK); every other robosuite
message still reaches the logs.
"""

import logging

_BENIGN = ("private macro file", "setup_macros.py", "robosuite_models", "mink-based whole-body IK")


class _DropBenignRobosuiteNotices(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(s in msg for s in _BENIGN)


def _install_filter() -> None:
    logger = logging.getLogger("robosuite_logs")
    if not any(isinstance(f, _DropBenignRobosuiteNotices) for f in logger.filters):
        logger.addFilter(_DropBenignRobosuiteNotices())


_install_filter()
