#!/usr/bin/env python3
"""Pick the least-loaded NVIDIA GPU(s) on this machine and print them.

Ranks every GPU visible to this shell (an existing CUDA_VISIBLE_DEVICES, e.g. a Slurm allocation, is
respected: only those are considered) by score = memory% x memory-weight + utilisation% x
util-weight (lower is better), the same code training and planning use (gpu_utils).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from gpu_utils.devices import query_devices
from gpu_utils.report import format_table, json_report, use_colour
from gpu_utils.run_selection import MIG_NOTE, warn_if_index_order_ambiguous
from gpu_utils.selection import DEFAULT_MEMORY_WEIGHT, DEFAULT_UTIL_WEIGHT, rank_devices, select_devices
from gpu_utils.visible import candidate_devices

PROG = "select_best_gpus"

EPILOG = """\
printed ids are physical (nvidia-smi) indices, or MIG UUIDs for MIG instances, to be used with
CUDA_DEVICE_ORDER=PCI_BUS_ID; inside the process the chosen GPUs are then cuda:0..n-1. A MIG instance is
only ever chosen alone: CUDA shows a process one MIG instance at most.

examples:
  ./select_best_gpus.py                              # = multi --quiet: every GPU that fits, best first (e.g. 3,1,0)
  ./select_best_gpus.py single                       # table + the best GPU
  export CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=$(./select_best_gpus.py single --quiet)
  ./select_best_gpus.py multi -n 2 --min-free-memory 20 --quiet     # e.g. 3,1
  ./select_best_gpus.py multi --json                 # every GPU that fits, as JSON (also: --json alone)

status icons: 🟢 score < 20, 🟡 20-50, 🔴 > 50 (colour only on a terminal; NO_COLOR disables it).
exit status: 0 = GPU(s) chosen; 1 = no NVIDIA driver/GPU, no GPU fits, or fewer than -n fit (unless
--allow-fewer); 2 = bad arguments.
"""


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


class _OneLineErrorParser(argparse.ArgumentParser):
    """Bad input -> one line on stderr and exit status 2 (not argparse's usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    common = _OneLineErrorParser(add_help=False)
    out = common.add_mutually_exclusive_group()
    out.add_argument("-q", "--quiet", action="store_true",
                     help="print only the chosen ids, comma separated (for CUDA_VISIBLE_DEVICES=$(...))")
    out.add_argument("--json", action="store_true", help="print the whole ranking and the choice as JSON")
    common.add_argument("--memory-weight", type=_non_negative_float, default=DEFAULT_MEMORY_WEIGHT,
                        metavar="W", help="weight of memory %% in the score (default: %(default)s)")
    common.add_argument("--util-weight", type=_non_negative_float, default=DEFAULT_UTIL_WEIGHT,
                        metavar="W", help="weight of utilisation %% in the score (default: %(default)s)")
    common.add_argument("--min-free-memory", type=_non_negative_float, default=0.0, metavar="GB",
                        help="leave out GPUs with less free memory than this, in GiB (default: 0)")
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging of the NVML queries")

    parser = _OneLineErrorParser(prog="select_best_gpus.py", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{single,multi}")
    sub.add_parser("single", parents=[common], help="choose the single best GPU",
                   description="Choose the single best GPU.", epilog=EPILOG,
                   formatter_class=argparse.RawDescriptionHelpFormatter).set_defaults(num_gpus=1)
    multi = sub.add_parser("multi", parents=[common], help="choose several GPUs (-n N, default: all that fit)",
                           description="Choose the N best GPUs (default: all that fit), best first.",
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    multi.add_argument("-n", "--num-gpus", type=int, default=0, metavar="N",
                       help="how many GPUs (default: 0 = all that fit); fewer fitting is an error (exit 1)")
    multi.add_argument("--allow-fewer", action="store_true",
                       help="with -n N: accept fewer than N fitting GPUs (exit 0, a warning on stderr)")
    return parser


def with_default_command(argv: list[str]) -> list[str]:
    """The spelling of the tool this one replaces: no subcommand means ``multi`` (``--quiet`` unless ``--json``).

    ``BEST_GPUS=$(./select_best_gpus.py)`` printed every fitting GPU as a comma list; so it still does.
    """
    if argv and (argv[0] in ("single", "multi") or argv[0] in ("-h", "--help")):
        return argv
    if any(a in ("-h", "--help") for a in argv):
        return ["--help"]
    quiet = [] if any(a in ("--json", "-q", "--quiet") for a in argv) else ["--quiet"]
    return ["multi", *quiet, *argv]


def _problem(args: argparse.Namespace, query, preset: str | None, view: list, selected: list) -> str | None:
    """Why nothing can be printed as the choice (exit 1), or None."""
    if not query.has_gpu:
        return f"no NVIDIA driver/GPU found ({query.reason}): running on CPU, nothing to select"
    if not view:
        return f"CUDA_VISIBLE_DEVICES={preset!r} leaves no GPU visible"
    if not selected:
        return f"no GPU has {args.min_free_memory:g} GiB free (of {len(view)} visible)"
    if len(selected) < args.num_gpus and not getattr(args, "allow_fewer", False):
        mig = MIG_NOTE if any(d.is_mig for d in view) else ""
        return (f"asked for {args.num_gpus} GPU(s), only {len(selected)} fit (--min-free-memory "
                f"{args.min_free_memory:g}){mig}: pass --allow-fewer to accept fewer")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(with_default_command(sys.argv[1:] if argv is None else list(argv)))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format=f"{PROG}: %(message)s", stream=sys.stderr)
    if args.memory_weight == 0 and args.util_weight == 0:
        parser.error("--memory-weight and --util-weight cannot both be 0")
    if args.num_gpus < 0:
        parser.error(f"-n must be >= 0, got {args.num_gpus}")

    query = query_devices()
    preset = os.environ.get("CUDA_VISIBLE_DEVICES")
    view = candidate_devices(preset, query.devices) if query.has_gpu else []
    warn_if_index_order_ambiguous(preset, view)
    ranked = rank_devices(view, args.memory_weight, args.util_weight, args.min_free_memory)
    selected = select_devices(view, args.num_gpus, args.memory_weight, args.util_weight, args.min_free_memory)
    problem = _problem(args, query, preset, view, selected)
    if problem is not None:
        selected = []  # never hand a launch for N processes fewer GPUs than it asked for

    if args.json:
        report = json_report(ranked, selected, backend=query.backend, error=problem, preset=preset,
                             memory_weight=args.memory_weight, util_weight=args.util_weight,
                             min_free_memory_gb=args.min_free_memory)
        print(json.dumps(report, indent=2))
    elif args.quiet:
        if selected:
            print(",".join(d.cuda_id for d in selected))
    elif ranked:
        if preset is not None:
            print(f"choosing among CUDA_VISIBLE_DEVICES={preset}")
        print(format_table(ranked, selected, use_colour(sys.stdout), args.min_free_memory))
        if selected:
            ids = ",".join(d.cuda_id for d in selected)
            print(f"selected: {ids}    (CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES={ids})")

    if problem is not None:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 1
    if 0 < args.num_gpus and len(selected) < args.num_gpus:  # --allow-fewer
        print(f"{PROG}: asked for {args.num_gpus} GPU(s), only {len(selected)} fit: "
              f"using {len(selected)} (--allow-fewer)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
