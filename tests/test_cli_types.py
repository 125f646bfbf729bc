"""utils.cli_types: numbers refused by argparse itself (one usage line, exit 2)."""

from __future__ import annotations

import argparse

import pytest

from utils.cli_types import positive_int, positive_multiple_of


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tool")
    p.add_argument("--n", type=positive_int, default=1)
    p.add_argument("--size", type=positive_multiple_of(14), default=14)
    return p


def test_good_values_parse():
    args = parser().parse_args(["--n", "3", "--size", "196"])
    assert (args.n, args.size) == (3, 196)


@pytest.mark.parametrize("argv, says", [
    (["--n", "0"], "argument --n: 0 must be >= 1"),
    (["--n", "abc"], "argument --n: 'abc' is not a whole number"),
    (["--n", "2.5"], "argument --n: '2.5' is not a whole number"),
    (["--size", "100"], "argument --size: 100 is not a multiple of 14 (e.g. 98 or 112)"),
    (["--size", "-14"], "argument --size: -14 must be >= 1"),
    (["--size", "5"], "argument --size: 5 is not a multiple of 14 (e.g. 14)"),
])
def test_bad_values_are_one_usage_error(capsys, argv, says):
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"tool: error: {says}"
