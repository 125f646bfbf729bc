"""The end of a benchmark CLI that measures, prints a table and optionally writes JSON: one place for the exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable


def run_parser(doc: str) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of ``doc`` whose first argument is the training run directory."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                 epilog="Prints a table; --json writes it too. Exit code 2 on bad input.")
    ap.add_argument("run", help="training run directory")
    return ap


def model_arguments(ap: argparse.ArgumentParser) -> None:
    """The options every benchmark of a training run takes: its checkpoint, the device, the JSON output."""
    ap.add_argument("--model-epoch", default="latest", help="checkpoint: latest or a training step")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")


def report(measure: Callable[[], dict], format_table: Callable[[dict], str], json_path: str | None,
           bad_input: type[Exception]) -> int:
    """Run ``measure``; print its table and write ``json_path`` (atomically) if given: exit code 0. ``bad_input``
    raised by ``measure`` is printed as one line on stderr with nothing written: exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        res = measure()
    except bad_input as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(res))
    if json_path:
        from utils.atomic_files import atomic_write_text

        atomic_write_text(json_path, json.dumps(res, indent=1))
    return 0
