"""Read and write the RGB frame files of a converted dataset.

Two storage forms, chosen by the file name's suffix:

- ``.mp4``: H.264 through the ffmpeg binary that imageio-ffmpeg ships (libx264, ``-crf 10``: visually lossless, PSNR well above
  35 dB on rendered robosuite frames). Any frame size works: ``macro_block_size=1`` so nothing is
  ever resized. Even sizes use ``yuv420p`` (plays everywhere); odd widths/heights cannot be
  chroma-subsampled, so they are written as ``yuv444p`` (H.264 High 4:4:4; decoded by ffmpeg
  fine, some browsers will not play it). A warning is logged for odd sizes.
- ``.npy``: the exact uint8 frames (``lossless=True``). ``write_video`` with ``lossless=True``
  writes ``path.with_suffix(".npy")``; ``read_video`` on an ``.mp4`` path whose file is missing
  but whose ``.npy`` sibling exists reads the ``.npy``, so consumers may always ask for the
  ``.mp4`` name from ``datasets.meta.video_path``.

Files are written to a temporary name in the same directory and renamed, so a crash never leaves
a half-written file under the final name.

ffmpeg runs as a child process fed through pipes, started by :func:`spawn_ffmpeg` without a
``preexec_fn``: CPython then starts it with ``vfork`` (Linux, Python >= 3.10), which shares the
parent's memory until ``exec`` instead of duplicating it. imageio-ffmpeg's own writer / reader pass
``preexec_fn=os.setpgrp``, which forces a real ``fork``: a planning process holding many simulators
(gigabytes resident, tens of gigabytes of address space) then failed with ``[Errno 12] Cannot
allocate memory`` when it wrote its videos. ``start_new_session`` keeps what ``setpgrp`` was for
(Ctrl-C in the terminal does not reach ffmpeg) and is allowed with ``vfork``.
"""

from __future__ import annotations

import logging
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from utils.atomic_files import atomic_path

log = logging.getLogger(__name__)

CRF = 10  # libx264 constant rate factor (0 = lossless, 23 = default); 10 is near-transparent


def lossless_path(path: str | Path) -> Path:
    """The ``.npy`` file that holds the lossless form of video ``path``."""
    return Path(path).with_suffix(".npy")


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3], got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    if frames.shape[0] == 0:
        raise ValueError("cannot write a video with 0 frames")
    return np.ascontiguousarray(frames)


def spawn_ffmpeg(args: list[str], **popen_kwargs) -> subprocess.Popen:
    """Start ``ffmpeg ARGS`` without duplicating this process (see the module docstring).

    No ``preexec_fn``, user or group change: the conditions under which CPython uses ``vfork``.
    Raises OSError when the process cannot be started.
    """
    import imageio_ffmpeg

    return subprocess.Popen([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
                            close_fds=True, start_new_session=True, **popen_kwargs)


def _ffmpeg_error(what: str, path: Path, code: int, stderr: bytes) -> OSError:
    lines = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return OSError(f"ffmpeg failed {what} {path} (exit {code}): {lines[-1] if lines else 'no message'}")


def _encode(path: Path, frames: np.ndarray, fps: float, pix_fmt: str) -> None:
    """Encode uint8 [T, H, W, 3] to H.264 mp4 ``path`` (frames go through ffmpeg's stdin)."""
    t, h, w, _ = frames.shape
    args = ["-y", "-loglevel", "error", "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{w}x{h}",
            "-pix_fmt", "rgb24", "-r", str(Fraction(float(fps)).limit_denominator()), "-i", "-", "-an",
            "-vcodec", "libx264", "-pix_fmt", pix_fmt, "-crf", str(CRF), "-preset", "medium", "-f", "mp4", str(path)]
    proc = spawn_ffmpeg(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = proc.communicate(memoryview(frames.reshape(-1)))
    if proc.returncode != 0:
        raise _ffmpeg_error("writing", path, proc.returncode, err)


_SIZE = re.compile(r"Video: .*?, (\d+)x(\d+)[ ,\[]")


def _decode(path: Path) -> np.ndarray:
    """All frames of the first video stream of ``path`` as uint8 [T, H, W, 3] (RGB)."""
    proc = spawn_ffmpeg(["-i", str(path), "-map", "0:v:0", "-f", "rawvideo", "-vcodec", "rawvideo",
                         "-pix_fmt", "rgb24", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise _ffmpeg_error("reading", path, proc.returncode, err)
    size = _SIZE.search(err.decode(errors="replace"))  # the input stream's line comes first
    if size is None:
        raise ValueError(f"video file {path}: ffmpeg reported no frame size")
    w, h = int(size.group(1)), int(size.group(2))
    if not out or len(out) % (h * w * 3):
        raise ValueError(f"video file {path} holds no frames" if not out else
                         f"video file {path}: {len(out)} bytes is not a whole number of {w}x{h} frames")
    return np.frombuffer(out, np.uint8).reshape(-1, h, w, 3)


def write_video(path: str | Path, frames: np.ndarray, fps: float = 20, lossless: bool = False,
                *, pix_fmt: str | None = None) -> None:
    """Write uint8 RGB ``frames`` [T, H, W, 3] to ``path`` (``.mp4``), or to ``path.npy`` if lossless.

    ``pix_fmt`` (mp4 only): ``None`` picks ``yuv420p`` for even sizes and ``yuv444p`` for odd ones;
    ``"yuv444p"`` keeps full colour resolution (higher PSNR, what the converter uses for training
    frames). Raises ValueError on frames of the wrong shape or dtype. Never resizes.
    """
    frames = _check_frames(frames)
    path = Path(path)
    final = lossless_path(path) if lossless else path
    with atomic_path(final) as tmp:
        if lossless:
            with open(tmp, "wb") as f:
                np.save(f, frames)
        else:
            _, h, w, _ = frames.shape
            if pix_fmt is None:
                pix_fmt = "yuv420p" if (h % 2 == 0 and w % 2 == 0) else "yuv444p"
            elif pix_fmt == "yuv420p" and (h % 2 or w % 2):
                raise ValueError(f"yuv420p needs even frame sizes, got {h}x{w}: use pix_fmt='yuv444p'")
            if pix_fmt != "yuv420p" and (h % 2 or w % 2):
                log.warning("frame size %dx%d is odd: writing %s as yuv444p (not yuv420p)", h, w, final)
            _encode(tmp, frames, fps, pix_fmt)


def read_video(path: str | Path) -> np.ndarray:
    """Read all frames of ``path`` as uint8 [T, H, W, 3] (``.mp4`` or its lossless ``.npy`` form)."""
    path = Path(path)
    if path.suffix == ".npy" or (not path.exists() and lossless_path(path).exists()):
        frames = np.load(lossless_path(path), allow_pickle=False)
        return _check_frames(frames)
    if not path.exists():
        raise FileNotFoundError(f"video file {path} not found")
    return _decode(path)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 arrays of the same shape (inf if equal)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
