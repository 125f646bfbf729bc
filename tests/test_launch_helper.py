"""tests/_launch.py: launches that hang are killed with their children, and their output is kept."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from _launch import free_port, run_together


def test_outputs_and_exit_codes_come_back_in_order(tmp_path):
    py = sys.executable
    cmds = [[py, "-c", "print('a'); import sys; sys.exit(3)"],
            [py, "-c", "import sys; print('b', file=sys.stderr)"]]
    procs = run_together(cmds, tmp_path, dict(os.environ), timeout=60)
    assert [(p.returncode, p.stdout.strip()) for p in procs] == [(3, "a"), (0, "b")]


def test_a_hung_launch_fails_the_test_and_its_children_are_killed(tmp_path):
    child_pid = tmp_path / "child.pid"
    # a child in a session of its own, as torch's launcher starts its workers
    script = ("import subprocess, sys; "
              "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], "
              "start_new_session=True); "
              f"open({str(child_pid)!r}, 'w').write(str(c.pid)); print('started', flush=True); c.wait()")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)still running after 3 s.*started"):
        run_together([[sys.executable, "-c", script]], tmp_path, dict(os.environ), timeout=3)
    pid = int(Path(child_pid).read_text())
    for _ in range(50):  # the killed grandchild is gone (or a zombie of a dead parent, reaped by init)
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            break
        if state == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the launch's child {pid} survived")


def test_free_port_can_be_bound():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))
