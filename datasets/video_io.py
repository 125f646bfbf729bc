"""Read and write the RGB frame files of a converted dataset.

Two storage forms, chosen by the file name's suffix:

- ``.mp4``: H.264 via imageio-ffmpeg (libx264, ``-crf 10``: visually lossless, PSNR well above
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
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

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


def _tmp_name(final: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    return Path(name)


def write_video(path: str | Path, frames: np.ndarray, fps: float = 20, lossless: bool = False,
                *, pix_fmt: str | None = None) -> None:
    """Write uint8 RGB ``frames`` [T, H, W, 3] to ``path`` (``.mp4``), or to ``path.npy`` if lossless.

    ``pix_fmt`` (mp4 only): ``None`` picks ``yuv420p`` for even sizes and ``yuv444p`` for odd ones;
    ``"yuv444p"`` keeps full colour resolution (higher PSNR, what the converter uses for training
    frames). Raises ValueError on frames of the wrong shape or dtype. Never resizes.
    """
    frames = _check_frames(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    final = lossless_path(path) if lossless else path
    tmp = _tmp_name(final)
    try:
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
            writer = imageio.get_writer(
                tmp, format="FFMPEG", mode="I", fps=float(fps), codec="libx264", quality=None,
                pixelformat=pix_fmt, macro_block_size=1, ffmpeg_log_level="error",
                output_params=["-crf", str(CRF), "-preset", "medium"],
            )
            try:
                for frame in frames:
                    writer.append_data(frame)
            finally:
                writer.close()
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_video(path: str | Path) -> np.ndarray:
    """Read all frames of ``path`` as uint8 [T, H, W, 3] (``.mp4`` or its lossless ``.npy`` form)."""
    path = Path(path)
    if path.suffix == ".npy" or (not path.exists() and lossless_path(path).exists()):
        frames = np.load(lossless_path(path), allow_pickle=False)
        return _check_frames(frames)
    if not path.exists():
        raise FileNotFoundError(f"video file {path} not found")
    reader = imageio.get_reader(path, format="FFMPEG", mode="I")
    try:
        frames = [np.asarray(f)[..., :3] for f in reader]
    finally:
        reader.close()
    if not frames:
        raise ValueError(f"video file {path} holds no frames")
    return np.stack(frames).astype(np.uint8, copy=False)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 arrays of the same shape (inf if equal)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
