#!/usr/bin/env python
"""Convert a robomimic hdf5 file into the dino-wm dataset directory (see ``datasets/meta.py``).

Accepts files with camera images (``image_v15.hdf5``, the generated demos) and states-only files
(``demo_v15.hdf5``): for those the frames are rendered by resetting the simulator to every
recorded state. Streams episode by episode, builds the output in ``DIR.tmp-*`` and renames it at
the end; the input is opened read-only.

    python convert_robomimic_to_dino_wm.py --input demo.hdf5 --output data/lift [--camera agentview]
        [--image-size 84] [--filter-key train] [--overwrite] [--lossless]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from datasets.episode_source import (
    detect_object_layout,
    episode_from_hdf5,
    episode_from_sim,
    has_low_dim,
    model_xml_of,
)
from datasets.hdf5_checks import InputError, SourceInfo, open_input, validate
from datasets.meta import TENSOR_FILES, DatasetMeta, video_path
from datasets.model_files import save_model_xml
from datasets.state_layout import vector_slices
from datasets.video_io import write_video

log = logging.getLogger("convert_robomimic_to_dino_wm")

DEFAULT_RENDER_SIZE = 84
PIX_FMT = "yuv444p"  # full colour resolution: training frames, decoded by ffmpeg (not browsers)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _build_env(info: SourceInfo, camera: str, image_size: int, render: bool):
    from envs.robosuite_env import RobosuiteEnv

    try:
        return RobosuiteEnv(info.env_name, info.env_kwargs, camera_name=camera, image_size=image_size,
                            render=render)
    except ValueError as exc:
        if "camera" in str(exc):
            raise InputError(f"{info.path}: unknown camera {camera!r} for {info.env_name} ({exc})") from None
        raise


def _choose_source(info: SourceInfo, camera: str, image_size: int | None) -> tuple[bool, int]:
    """(frames from the file?, output image size); raise InputError for an unknown camera."""
    if info.image_cameras:
        if camera not in info.image_cameras:
            raise InputError(f"{info.path}: {info.demo_keys[0]}: unknown camera {camera!r}: no "
                             f"'obs/{camera}_image' (cameras in the file: {info.image_cameras})")
        h, w = info.image_shape[:2]
        if image_size is None and h != w:
            raise InputError(f"{info.path}: images are {h}x{w}, not square: pass --image-size")
        return True, int(image_size or h)
    return False, int(image_size or DEFAULT_RENDER_SIZE)


def _camera_names(info: SourceInfo, camera: str) -> list[str]:
    stored = info.env_kwargs.get("camera_names") or []
    stored = [stored] if isinstance(stored, str) else list(stored)
    others = [c for c in (*info.image_cameras, *stored) if c != camera]
    return [camera, *dict.fromkeys(others)]


def _write_tensors(out: Path, arrays: dict[str, np.ndarray]) -> None:
    for key, fname in TENSOR_FILES.items():
        torch.save(torch.from_numpy(arrays[key]), out / fname)


def _convert_into(tmp: Path, f, info: SourceInfo, camera: str, image_size: int, from_file: bool,
                  lossless: bool, progress: bool) -> dict:
    """Fill ``tmp`` with videos + tensors; return meta fields found on the way."""
    n, t_max = len(info.demo_keys), max(info.lengths)
    data = f["data"]
    low_dim = all(has_low_dim(data[k]) for k in info.demo_keys)
    env = None
    if not from_file:
        env = _build_env(info, camera, image_size, render=True)
    elif not low_dim:  # images in the file, vectors from the simulator
        env = _build_env(info, camera, image_size, render=False)
    else:
        try:
            env = _build_env(info, camera, image_size, render=False)
        except InputError:
            raise
        except Exception as exc:  # the env only serves the layout check here
            log.warning("cannot build %s to check obs/object's layout (%s); assuming canonical", info.env_name, exc)
    try:
        first = data[info.demo_keys[0]]
        layout = detect_object_layout(first, info.env_name, env) if low_dim else "canonical"
        arrays: dict[str, np.ndarray] = {
            "actions": np.zeros((n, t_max, info.action_dim), np.float32),
            "seq_lengths": np.asarray(info.lengths, dtype=np.int64),
            "sim_states": np.zeros((n, t_max, info.sim_state_dim), np.float64),
        }
        object_dim, model_files = None, []
        fps = float(info.env_kwargs.get("control_freq", 20.0))
        for i, key in enumerate(tqdm(info.demo_keys, desc="converting", unit="ep", disable=not progress)):
            demo, length = data[key], info.lengths[i]
            if from_file:
                ep = episode_from_hdf5(demo, camera, image_size, info.env_name, layout, env)
            else:
                ep = episode_from_sim(demo, env, low_dim, info.env_name, layout)
            for name, tensor_key in (("state", "states"), ("proprio", "proprios"), ("velocity", "velocities")):
                if ep[name].shape[0] != length:
                    raise InputError(f"{info.path}: {key}: obs give {ep[name].shape[0]} steps, 'actions' {length}")
                if tensor_key not in arrays:
                    arrays[tensor_key] = np.zeros((n, t_max, ep[name].shape[-1]), np.float32)
                arrays[tensor_key][i, :length] = ep[name]
            object_dim = ep["state"].shape[-1] - 9
            arrays["actions"][i, :length] = demo["actions"][()]
            arrays["sim_states"][i, :length] = demo["states"][()]
            write_video(video_path(tmp, i), ep["frames"], fps=fps, lossless=lossless, pix_fmt=PIX_FMT)
            model_files.append(save_model_xml(tmp, model_xml_of(demo)))
        _write_tensors(tmp, arrays)
        return {"object_dim": object_dim, "object_layout": layout, "fps": fps, "model_files": model_files,
                "n_frames": int(sum(info.lengths))}
    finally:
        if env is not None:
            env.close()


def convert(input_path: str | Path, output_dir: str | Path, camera: str = "agentview",
            image_size: int | None = None, filter_key: str | None = None, overwrite: bool = False,
            lossless: bool = False, progress: bool = True) -> DatasetMeta:
    """Convert ``input_path`` (robomimic hdf5) into the dataset directory ``output_dir``.

    Args:
        camera: main camera; frames come from ``obs/<camera>_image`` or are rendered from it.
        image_size: output frame size; default the stored image size, or 84 when rendering.
        filter_key: convert only the demos listed in ``mask/<filter_key>`` (e.g. "train").
        overwrite: replace an existing ``output_dir``.
        lossless: store exact uint8 frames (``.npy``) instead of H.264 mp4.
    Raises:
        InputError: bad input (message names file, demo and key); nothing is written then.
    """
    import robosuite

    input_path, output_dir = Path(input_path).resolve(), Path(output_dir)
    if output_dir.exists() and not overwrite:
        raise InputError(f"{output_dir}: output directory exists (pass --overwrite to replace it)")
    if output_dir.resolve() == input_path.parent or output_dir.resolve() in input_path.parents:
        raise InputError(f"{output_dir}: the output directory holds the input {input_path.name}; "
                         "choose another --output (replacing it would delete the input)")
    if image_size is not None and image_size < 8:
        raise InputError(f"--image-size must be >= 8, got {image_size}")
    with open_input(input_path) as f:
        info = validate(f, input_path, filter_key)
        from_file, size = _choose_source(info, camera, image_size)
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = output_dir.with_name(f"{output_dir.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            found = _convert_into(tmp, f, info, camera, size, from_file, lossless, progress)
            state_sl, proprio_sl, vel_sl = vector_slices(info.env_name, found["object_dim"])
            meta = DatasetMeta(
                env_name=info.env_name, env_kwargs=info.env_kwargs, camera_names=_camera_names(info, camera),
                image_size=size, action_dim=info.action_dim, state_slices=state_sl, proprio_slices=proprio_sl,
                velocity_slices=vel_sl, sim_state_dim=info.sim_state_dim, n_episodes=len(info.demo_keys),
                n_frames=found["n_frames"], demo_keys=info.demo_keys, source_path=str(input_path),
                source_sha256=sha256_of(input_path), env_type=info.env_type, filter_key=filter_key,
                control_freq=found["fps"], fps=found["fps"], lossless=lossless,
                robosuite_version=robosuite.__version__,
                model_files=found["model_files"],
                extra={"frames_source": "hdf5" if from_file else "rendered", "object_layout": found["object_layout"]},
            )
            meta.save(tmp)
            if output_dir.exists():
                trash = output_dir.with_name(f"{output_dir.name}.old-{os.getpid()}")
                os.replace(output_dir, trash)
                os.replace(tmp, output_dir)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, output_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log.info("wrote %d episodes (%d frames, %dx%d %s frames) to %s", meta.n_episodes, meta.n_frames,
             size, size, meta.extra["frames_source"], output_dir)
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Convert a robomimic hdf5 file (image or states-only) to the dino-wm dataset format.")
    parser.add_argument("--input", required=True, type=Path, help="robomimic hdf5 file (read-only)")
    parser.add_argument("--output", required=True, type=Path, help="dataset directory to create")
    parser.add_argument("--camera", default="agentview", help="main camera (default agentview)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="frame size (default: the stored image size; 84 when rendering a states-only file)")
    parser.add_argument("--filter-key", default=None, help="convert only the demos in mask/<key> (e.g. train)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("--lossless", action="store_true", help="store exact uint8 frames (.npy) instead of mp4")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        meta = convert(args.input, args.output, args.camera, args.image_size, args.filter_key,
                       args.overwrite, args.lossless)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    print(f"converted {meta.n_episodes} episodes ({meta.n_frames} frames) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
