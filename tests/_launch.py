"""What the tests that start ``accelerate launch`` share."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port that nothing listens on now (the rendezvous port of one launch; a fixed one could still be
    held by an earlier launch)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
