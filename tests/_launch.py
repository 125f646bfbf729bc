"""What the tests that start ``accelerate launch`` share."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port that nothing listens on now (the rendezvous port of one launch; a fixed one could still be
    held by an earlier launch)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from Linux's ``/proc``)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def run_together(cmds: list[list[str]], cwd: Path, env: dict[str, str],
                 timeout: float) -> list[subprocess.CompletedProcess]:
    """Start every command at once and wait for all of them, ``timeout`` seconds in all.

    Output (stdout and stderr together) goes to files, so no process can block on a full pipe while the
    test waits for another. On timeout every process still running (the launcher and its workers, which
    torch's elastic agent starts in sessions of their own) is killed and the test fails, naming the
    commands still running and the end of their output, instead of leaving workers behind for the tests
    that follow.
    """
    logs = [tempfile.TemporaryFile("w+") for _ in cmds]
    procs = [subprocess.Popen(c, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True) for c, f in zip(cmds, logs)]
    end = time.monotonic() + timeout
    while time.monotonic() < end and any(p.poll() is None for p in procs):
        time.sleep(0.5)
    hung = [i for i, p in enumerate(procs) if p.poll() is None]
    for i in hung:
        for pid in [procs[i].pid, *descendants(procs[i].pid)]:  # the workers run in sessions of their own
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        procs[i].wait()
    outs = []
    for f in logs:
        f.seek(0)
        outs.append(f.read())
        f.close()
    if hung:
        pytest.fail("\n".join(f"still running after {timeout:.0f} s (killed): {' '.join(cmds[i][:8])} ...; "
                              f"output ends:\n{outs[i][-3000:]}" for i in hung))
    return [subprocess.CompletedProcess(p.args, p.returncode, out, "") for p, out in zip(procs, outs)]
