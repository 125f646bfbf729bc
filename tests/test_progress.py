"""utils.progress: a tqdm bar on a terminal, a few plain log lines (no carriage returns) elsewhere."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest
from conftest import ROOT
from tqdm import tqdm

from utils.progress import PlainProgress, progress


class Tty(io.StringIO):
    def isatty(self):
        return True


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_a_terminal_gets_a_tqdm_bar_and_a_file_gets_plain_lines(caplog):
    tty = Tty()
    bar = progress(range(3), desc="x", stream=tty)
    assert isinstance(bar, tqdm) and list(bar) == [0, 1, 2]
    assert "\r" in tty.getvalue()
    caplog.set_level(logging.INFO, logger="progress")
    plain_stream = io.StringIO()
    bar = progress(range(1000), desc="epoch 1/2", unit="batch", stream=plain_stream)
    assert isinstance(bar, PlainProgress)
    for i in bar:
        if i % 100 == 0:
            bar.set_postfix(loss=f"{1.0 / (i + 1):.4f}")
    assert plain_stream.getvalue() == ""  # nothing written to the stream itself, only log records
    lines = [r.getMessage() for r in caplog.records if r.name == "progress"]
    assert 10 <= len(lines) <= 11, lines  # one per 10 %, plus the final one
    assert all("\r" not in m for m in lines)
    assert lines[0].startswith("epoch 1/2: 100/1000 batch (10%)") and "left" in lines[0]
    assert lines[-1].startswith("epoch 1/2: 1000/1000 batch (100%)") and lines[-1].endswith("(done)")
    assert "loss=0.0011" in lines[-1]


def test_plain_lines_are_time_based_without_a_total(caplog):
    caplog.set_level(logging.INFO, logger="progress")
    clock = FakeClock()
    bar = PlainProgress(None, "frames", None, "frame", every_s=30, every_pct=10, logger=logging.getLogger("progress"),
                        clock=clock)
    for _ in range(100):
        clock.t += 1.0
        bar.update(5)
    bar.close()
    bar.close()  # a second close writes nothing
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines  # at 30 s, 60 s, 90 s and the final line
    assert lines[0] == "frames: 150 frame, 5 frame/s, elapsed 0:30"
    assert lines[-1] == "frames: 500 frame, 5 frame/s, elapsed 1:40 (done)"


def test_update_and_context_manager_and_disable(caplog):
    caplog.set_level(logging.INFO, logger="progress")
    with progress(total=4, desc="demos", unit="ep", stream=io.StringIO()) as bar:
        for _ in range(4):
            bar.update(1)
            bar.set_postfix(success="1/1")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[-1].startswith("demos: 4/4 ep (100%)") and "success=1/1" in lines[-1]
    assert len(lines) == 4  # 25, 50, 75 % and done
    caplog.clear()
    off = progress(range(3), stream=io.StringIO(), disable=True)
    assert list(off) == [0, 1, 2] and caplog.records == []
    with pytest.raises(TypeError, match="without an iterable"):
        list(PlainProgress(None, "", 3, "it", 30, 10, logging.getLogger("progress")))


def test_generating_demos_into_a_log_file_writes_lines_not_carriage_returns(tmp_path):
    """The demo generator through its CLI, stderr redirected to a file (as under Slurm)."""
    log_file = tmp_path / "gen.log"
    with log_file.open("w") as err:
        proc = subprocess.run([sys.executable, "-m", "envs.generate_demos", "--task", "lift", "--n-episodes", "1",
                               "--output", str(tmp_path / "d.hdf5"), "--no-cameras", "--seed", "0"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True, timeout=300)
    text = log_file.read_text()
    assert proc.returncode == 0, text[-2000:]
    assert "\r" not in text
    assert "lift demos: 1/1 ep (100%)" in text
