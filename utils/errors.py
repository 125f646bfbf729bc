"""The one line of an exception that a one-line error message quotes."""

from __future__ import annotations


def first_line(exc: BaseException, limit: int = 300) -> str:
    """``exc``'s message, first line only and at most ``limit`` characters; its type when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
