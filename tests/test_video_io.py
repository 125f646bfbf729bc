"""Tests for datasets/video_io.py: mp4 and lossless round trips, odd sizes, bad input, atomic writes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from datasets.video_io import lossless_path, psnr, read_video, write_video
from tests.conftest import ROOT


def _frames(t: int, h: int, w: int) -> np.ndarray:
    """Smooth synthetic RGB frames [t, h, w, 3] uint8 with motion (like rendered scenes)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for i in range(t):
        r = 120 + 90 * np.sin((xx + 2 * i) / 9.0)
        g = 110 + 80 * np.cos((yy - i) / 11.0)
        b = 60 + 0.5 * (xx + yy)
        out.append(np.stack([r, g, b], -1))
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [64, 84])
def test_mp4_round_trip_keeps_shape_and_quality(tmp_path, size):
    frames = _frames(12, size, size)
    path = tmp_path / "ep.mp4"
    write_video(path, frames, fps=20)
    back = read_video(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert psnr(frames, back) >= 35.0


def test_yuv444_is_more_faithful_than_default(tmp_path):
    frames = _frames(6, 64, 64)
    write_video(tmp_path / "a.mp4", frames)
    write_video(tmp_path / "b.mp4", frames, pix_fmt="yuv444p")
    assert psnr(frames, read_video(tmp_path / "b.mp4")) > psnr(frames, read_video(tmp_path / "a.mp4"))


def test_odd_size_is_written_without_resizing(tmp_path):
    frames = _frames(5, 63, 65)
    write_video(tmp_path / "odd.mp4", frames)
    back = read_video(tmp_path / "odd.mp4")
    assert back.shape == (5, 63, 65, 3)
    assert psnr(frames, back) >= 35.0
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd2.mp4", frames, pix_fmt="yuv420p")


def test_lossless_writes_npy_and_reader_finds_it_from_mp4_name(tmp_path):
    frames = _frames(4, 21, 30)
    path = tmp_path / "episode_00000.mp4"
    write_video(path, frames, lossless=True)
    assert not path.exists() and lossless_path(path).exists()
    np.testing.assert_array_equal(read_video(path), frames)
    np.testing.assert_array_equal(read_video(lossless_path(path)), frames)


@pytest.mark.parametrize("bad", [np.zeros((3, 8, 8), np.uint8), np.zeros((2, 8, 8, 3), np.float32),
                                 np.zeros((0, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 4), np.uint8)])
def test_bad_frames_raise_and_leave_no_file(tmp_path, bad):
    with pytest.raises(ValueError):
        write_video(tmp_path / "x.mp4", bad)
    assert list(tmp_path.iterdir()) == []


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_video(tmp_path / "nope.mp4")


def test_psnr():
    a = np.zeros((2, 2), np.uint8)
    assert psnr(a, a) == float("inf")
    assert psnr(a, a + 1) == pytest.approx(10 * np.log10(255.0**2))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="vfork is CPython's Linux spawn path")
def test_ffmpeg_starts_without_forking_the_caller(tmp_path):
    """A planning process with many simulators (GBs resident, tens of GBs mapped) failed to fork ffmpeg
    (ENOMEM). Our reader / writer start it without a preexec_fn: CPython then uses vfork, and runs no
    Python fork handlers. imageio-ffmpeg's own writer (the control) passes preexec_fn=os.setpgrp: a real fork."""
    code = textwrap.dedent("""
        import os, subprocess, sys
        import numpy as np
        forks = []
        os.register_at_fork(before=lambda: forks.append(1))
        from datasets.video_io import read_video, write_video
        frames = np.zeros((3, 16, 16, 3), np.uint8)
        write_video(sys.argv[1] + "/a.mp4", frames)
        assert read_video(sys.argv[1] + "/a.mp4").shape == frames.shape
        ours = len(forks)
        import imageio.v2 as iio
        iio.mimwrite(sys.argv[1] + "/b.mp4", frames, format="FFMPEG", macro_block_size=1)
        print(ours, len(forks) - ours, getattr(subprocess, "_USE_VFORK", True))  # 3.10: no switch, always on
    """)
    env = {k: v for k, v in os.environ.items() if k != "IMAGEIO_FFMPEG_NO_PREVENT_SIGINT"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True, timeout=120)
    ours, control, vfork = out.stdout.split()
    assert (ours, vfork) == ("0", "True") and int(control) >= 1
