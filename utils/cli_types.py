"""argparse value types that refuse a bad number at parse time (argparse's one-line usage error, exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def positive_multiple_of(step: int) -> Callable[[str], int]:
    """The type of a positive multiple of ``step`` (an encoder input size: ``step`` = the patch size)."""

    def parse(text: str) -> int:
        value = positive_int(text)
        if value % step:
            lower, upper = value // step * step, (value // step + 1) * step
            near = f"{lower} or {upper}" if lower else f"{upper}"
            raise argparse.ArgumentTypeError(f"{value} is not a multiple of {step} (e.g. {near})")
        return value

    return parse
