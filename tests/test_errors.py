"""utils.errors.first_line: what a one-line error quotes of an exception."""

from utils.errors import first_line


def test_the_first_line_cut_to_the_limit_or_the_type():
    assert first_line(ValueError("  bad value\nTraceback details\n")) == "bad value"
    assert first_line(RuntimeError("x" * 500), limit=10) == "x" * 10
    assert first_line(EOFError()) == "EOFError"
