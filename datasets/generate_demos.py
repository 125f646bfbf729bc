"""Moved: the scripted demo generator drives the simulator, so it lives in ``envs/generate_demos.py``.

``python -m datasets.generate_demos ...`` (the old command) stops with one line naming the new one.
"""

from __future__ import annotations

import sys

MOVED = ("datasets.generate_demos moved to envs.generate_demos: run python -m envs.generate_demos "
         "with the same arguments")

if __name__ == "__main__":
    print(f"error: {MOVED}", file=sys.stderr)
    sys.exit(2)
raise ImportError(MOVED)
