"""Print the registered tasks (``tasks/builtin.py``), one name a line, in the registry's order.

    python -m tasks              # every task: lift, can, square
    python -m tasks --scripted   # the ones the demo generator can make demos of (a scripted policy)
    python -m tasks --on-hub     # the ones with robomimic files on the hub (a download_name)

``setup_and_prepare.sh`` reads its task names from here: the registry is the one list of tasks.
"""

from __future__ import annotations

import argparse
import sys

from tasks.registry import all_tasks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tasks", description="Print the registered tasks, one name a line.")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--scripted", action="store_true", help="only tasks with a scripted demo policy")
    which.add_argument("--on-hub", action="store_true", help="only tasks with robomimic files on the hub")
    args = p.parse_args(argv)
    for task in all_tasks():
        if (not args.scripted or task.has_policy) and (not args.on_hub or task.download_name):
            print(task.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
