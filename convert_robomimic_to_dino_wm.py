#!/usr/bin/env python
"""Convert a robomimic hdf5 file into the dino-wm dataset directory (see ``datasets/meta.py``).

Accepts files with camera images (``image_v15.hdf5``, the generated demos) and states-only files
(``demo_v15.hdf5``): for those the frames are rendered by resetting the simulator to every
recorded state. Streams episode by episode, builds the output in a hidden ``.DIR.tmp-*`` beside it
and renames it at the end (``utils/atomic_files.py``); the input is opened read-only.

Before anything is written the input is checked, by the file alone (``datasets/hdf5_checks.py``,
``datasets/demo_checks.py``) and against the simulator its ``env_args`` name
(``conversion/env_checks.py``). Any bad input or unwritable output path: one line
``error: FILE: DEMO: 'KEY' ...`` on stderr, exit code 2, nothing written, the input untouched.

    python convert_robomimic_to_dino_wm.py --input demo.hdf5 --output data/lift [--camera agentview]
        [--image-size 84] [--filter-key train] [--overwrite] [--lossless] [--allow-unknown-env]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from conversion.env_checks import check_actions, check_model_files, check_state_width, object_layout, open_env
from conversion.episode_source import episode_from_hdf5, episode_from_sim, model_xml_of
from datasets.hdf5_checks import InputError, SourceInfo, open_input, validate
from datasets.meta import META_FILE, TENSOR_FILES, DatasetMeta, video_path
from datasets.model_files import save_model_xml
from datasets.state_layout import vector_slices
from datasets.video_io import write_video
from envs.generate_demos import DEFAULT_CAMERAS
from tasks.state_layout import PROPRIO_DIM
from utils.atomic_files import atomic_directory
from utils.progress import progress as progress_bar

log = logging.getLogger("convert_robomimic_to_dino_wm")

DEFAULT_RENDER_SIZE = 84
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024  # --image-size bounds (the model reads 224 or less)
PIX_FMT = "yuv444p"  # full colour resolution: training frames, decoded by ffmpeg (not browsers)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _choose_source(info: SourceInfo, cameras: list[str], image_size: int | None) -> tuple[bool, int]:
    """(frames from the file?, output image size); the stored size checked is the main camera's.

    Frames come from the file when it stores every camera asked for; a file with images but not of the main camera
    is refused; a file lacking only a further view (robomimic's image files store agentview and the wrist camera,
    generated ones agentview alone) has all its views rendered from its states, so the views match each other."""
    camera = cameras[0]
    if info.image_cameras:
        if camera not in info.image_shapes:
            raise InputError(f"{info.path}: {info.demo_keys[0]}: unknown camera {camera!r}: no "
                             f"'obs/{camera}_image' (cameras in the file: {info.image_cameras})")
        h, w = info.image_shapes[camera]
        if image_size is None and h != w:
            raise InputError(f"{info.path}: {info.demo_keys[0]}: 'obs/{camera}_image' frames are {h}x{w}, "
                             "not square: pass --image-size")
        if image_size is None and h < MIN_IMAGE_SIZE:
            raise InputError(f"{info.path}: {info.demo_keys[0]}: 'obs/{camera}_image' frames are {h}x{w}, "
                             f"smaller than {MIN_IMAGE_SIZE}: pass --image-size")
        missing = [c for c in cameras if c not in info.image_shapes]
        if not missing:
            return True, int(image_size or h)
        log.info("%s stores no 'obs/%s_image': rendering every view from the states at %d px", info.path,
                 missing[0], image_size or h)
        return False, int(image_size or h)
    return False, int(image_size or DEFAULT_RENDER_SIZE)


def _camera_names(info: SourceInfo, cameras: list[str]) -> list[str]:
    stored = info.env_kwargs.get("camera_names") or []
    stored = [stored] if isinstance(stored, str) else list(stored)
    others = [c for c in (*info.image_cameras, *stored) if c not in cameras]
    return [*cameras, *dict.fromkeys(others)]


def _views(camera: str | Sequence[str]) -> list[str]:
    """The cameras of each frame, the main one first (one name, or several); InputError for none or a repeat."""
    cameras = [camera] if isinstance(camera, str) else list(camera)
    if not cameras or len(set(cameras)) != len(cameras):
        raise InputError(f"--camera needs one or more distinct camera names, got {cameras}")
    return cameras


def _check_output(input_path: Path, output_dir: Path, overwrite: bool) -> None:
    """Refuse an output path that exists (unless --overwrite may replace it) or that holds the input."""
    try:
        if output_dir.resolve() == input_path.parent or output_dir.resolve() in input_path.parents:
            raise InputError(f"{output_dir}: the output directory holds the input {input_path.name}; "
                             "choose another --output (replacing it would delete the input)")
        if not (output_dir.exists() or output_dir.is_symlink()):
            return
        if not overwrite:
            raise InputError(f"{output_dir}: output directory exists (pass --overwrite to replace it)")
        if output_dir.is_symlink() or not output_dir.is_dir():
            raise InputError(f"{output_dir}: exists and is not a directory; --overwrite only replaces a "
                             "converted dataset directory")
        if any(output_dir.iterdir()) and not (output_dir / META_FILE).is_file():
            raise InputError(f"{output_dir}: is not a converted dataset (no {META_FILE}); --overwrite only "
                             "replaces a converted dataset directory")
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, for Python < 3.13's resolve()
        raise InputError(f"{output_dir}: cannot inspect the output path ({exc})") from None


def _make_parents(path: Path) -> list[Path]:
    """Create the missing parents of ``path``; return those created (outermost first)."""
    missing = [p for p in reversed(path.parents) if not p.exists()]
    for p in missing:
        p.mkdir()
    return missing


def _read_episode(f, info: SourceInfo, i: int, cameras: list[str], size: int, from_file: bool, layout: str,
                  env) -> dict[str, np.ndarray]:
    """Episode ``i`` as arrays (frames, vectors, actions, sim states); read errors become InputError."""
    key = info.demo_keys[i]
    demo = f["data"][key]
    try:
        if from_file:
            ep = episode_from_hdf5(demo, cameras, size, info.env_name, layout, env)
        else:
            ep = episode_from_sim(demo, env, info.low_dim, info.env_name, layout)
        ep["actions"], ep["sim_states"], ep["xml"] = demo["actions"][()], demo["states"][()], model_xml_of(demo)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise InputError(f"{info.path}: {key}: cannot read it ({type(exc).__name__}: {exc})") from None
    for name in ("frames", "state", "proprio", "velocity"):
        if ep[name].shape[0] != info.lengths[i]:
            raise InputError(f"{info.path}: {key}: {name} has {ep[name].shape[0]} steps, 'actions' {info.lengths[i]}")
    return ep


def _convert_into(tmp: Path, f, info: SourceInfo, env, cameras: list[str], image_size: int, from_file: bool,
                  layout: str, lossless: bool, progress: bool) -> dict:
    """Fill ``tmp`` with videos + tensors; return meta fields found on the way."""
    n, t_max = len(info.demo_keys), max(info.lengths)
    arrays: dict[str, np.ndarray] = {
        "actions": np.zeros((n, t_max, info.action_dim), np.float32),
        "seq_lengths": np.asarray(info.lengths, dtype=np.int64),
        "sim_states": np.zeros((n, t_max, info.sim_state_dim), np.float64),
    }
    object_dim, model_files = None, []
    for i in progress_bar(range(n), desc="converting", unit="ep", disable=not progress):
        ep, length = _read_episode(f, info, i, cameras, image_size, from_file, layout, env), info.lengths[i]
        for name, tensor_key in (("state", "states"), ("proprio", "proprios"), ("velocity", "velocities")):
            if tensor_key not in arrays:
                arrays[tensor_key] = np.zeros((n, t_max, ep[name].shape[-1]), np.float32)
            arrays[tensor_key][i, :length] = ep[name]
        object_dim = ep["state"].shape[-1] - PROPRIO_DIM
        arrays["actions"][i, :length] = ep["actions"]
        arrays["sim_states"][i, :length] = ep["sim_states"]
        write_video(video_path(tmp, i), ep["frames"], fps=info.control_freq, lossless=lossless, pix_fmt=PIX_FMT)
        model_files.append(save_model_xml(tmp, ep["xml"]))
    for key, fname in TENSOR_FILES.items():
        torch.save(torch.from_numpy(arrays[key]), tmp / fname)
    return {"object_dim": object_dim, "model_files": model_files, "n_frames": int(sum(info.lengths))}


def _write_output(output_dir: Path, fill) -> DatasetMeta:
    """Build ``output_dir`` atomically with ``fill(tmp) -> DatasetMeta``; filesystem errors become InputError.

    On any failure nothing is left: no output, no temporary directory, no parent created here.
    """
    created: list[Path] = []
    try:
        created = _make_parents(output_dir)
        with atomic_directory(output_dir) as tmp:
            meta = fill(tmp)
            meta.save(tmp)
        return meta
    except BaseException as exc:
        for p in reversed(created):
            with contextlib.suppress(OSError):
                p.rmdir()
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            raise InputError(f"{output_dir}: cannot create the output: a part of the path is a file, not a "
                             f"directory ({exc})") from None
        if isinstance(exc, OSError):
            raise InputError(f"{output_dir}: cannot write the output ({exc})") from None
        raise


def _meta(info: SourceInfo, cameras: list[str], size: int, found: dict, **fields) -> DatasetMeta:
    """The dataset's meta.json from the file's facts, what conversion found and the other ``fields``."""
    state_sl, proprio_sl, vel_sl = vector_slices(info.env_name, found["object_dim"])
    return DatasetMeta(
        env_name=info.env_name, env_kwargs=info.env_kwargs, camera_names=_camera_names(info, cameras),
        views=len(cameras),
        image_size=size, action_dim=info.action_dim, state_slices=state_sl, proprio_slices=proprio_sl,
        velocity_slices=vel_sl, sim_state_dim=info.sim_state_dim, n_episodes=len(info.demo_keys),
        n_frames=found["n_frames"], demo_keys=info.demo_keys, source_path=str(info.path),
        env_type=info.env_type, control_freq=info.control_freq, fps=info.control_freq,
        model_files=found["model_files"], **fields,
    )


def _simulator_checks(f, info: SourceInfo, env) -> str:
    """Check the file against ``env`` (skipped if None); the obs/object layout."""
    check_model_files(f, info)
    if env is None:
        return "canonical"
    check_actions(f, info, env)
    check_state_width(info, env)
    return object_layout(f, info, env)


def convert(input_path: str | Path, output_dir: str | Path, camera: str | Sequence[str] = DEFAULT_CAMERAS,
            image_size: int | None = None, filter_key: str | None = None, overwrite: bool = False,
            lossless: bool = False, progress: bool = True, allow_unknown_env: bool = False,
            explore_branches: int = 2, explore_replays: int | None = None) -> DatasetMeta:
    """Convert ``input_path`` (robomimic hdf5) into the dataset directory ``output_dir``.

    Args:
        camera: the main camera, or several cameras (the main one first) stored side by side in every frame
            (``meta.views``); the default is agentview + the wrist camera robot0_eye_in_hand (the wrist view shows
            whether a grasp closed on the object: docs/experiments.md, round 11); frames come from
            ``obs/<camera>_image`` or are rendered from the states.
        image_size: output frame size; default the stored image size, or 84 when rendering.
        filter_key: convert only the demos listed in ``mask/<filter_key>`` (e.g. "train").
        overwrite: replace an existing ``output_dir`` (only an empty or converted dataset directory).
        lossless: store exact uint8 frames (``.npy``) instead of H.264 mp4.
        allow_unknown_env: if ``env_args`` names what robosuite does not know (or the env does not
            build), convert without the simulator checks (see ``conversion/env_checks.py``) instead
            of refusing; files whose frames or vectors come from the simulator still need it.
        explore_branches: exploration branches per demonstration (``conversion.exploration``: random action
            chunks from demonstration states, the simulator's answer to actions the demos never take; 0: none).
            They need the simulator; with ``allow_unknown_env`` and no env they are skipped with a warning.
        explore_replays: noisy replays per demonstration (``conversion.exploration``: the demonstration's own
            actions with a constant arm drift and the gripper's timing shifted: near misses); None: the default.
    Raises:
        InputError: bad input or output path (message names file, demo and key); nothing is written then.
    """
    input_path, output_dir = Path(input_path).resolve(), Path(output_dir)
    _check_output(input_path, output_dir, overwrite)
    if image_size is not None and not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise InputError(f"--image-size must be in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}], got {image_size}")
    cameras = _views(camera)
    with open_input(input_path) as f:
        info = validate(f, input_path, filter_key)
        from_file, size = _choose_source(info, cameras, image_size)
        env = open_env(info, cameras, size, render=not from_file, needed=not (from_file and info.low_dim),
                       allow_unknown=allow_unknown_env)
        try:
            layout = _simulator_checks(f, info, env)
            import robosuite

            fields = {"source_sha256": _input_sha256(input_path), "filter_key": filter_key, "lossless": lossless,
                      "robosuite_version": robosuite.__version__,
                      "extra": {"frames_source": "hdf5" if from_file else "rendered", "object_layout": layout,
                                "simulator_checks": "done" if env is not None else "skipped"}}

            def fill(tmp: Path) -> DatasetMeta:
                found = _convert_into(tmp, f, info, env, cameras, size, from_file, layout, lossless, progress)
                meta = _meta(info, cameras, size, found, **fields)
                return _explore(tmp, meta, explore_branches if env is not None else 0,
                                explore_replays if env is not None else 0, progress)

            meta = _write_output(output_dir, fill)
        finally:
            if env is not None:
                env.close()
    log.info("wrote %d episodes (%d frames, %dx%d %s frames of %s) to %s", meta.n_episodes, meta.n_frames,
             size, size * len(cameras), meta.extra["frames_source"], " + ".join(cameras), output_dir)
    return meta


def _explore(tmp: Path, meta: DatasetMeta, branches: int, replays: int | None, progress: bool) -> DatasetMeta:
    """``meta`` saved in ``tmp``, then ``branches`` exploration branches and ``replays`` noisy replays per
    demonstration appended there."""
    from conversion.exploration import REPLAYS, ExploreSettings, add_exploration

    meta.save(tmp)
    replays = REPLAYS if replays is None else replays
    if branches <= 0 and replays <= 0:
        return meta
    return add_exploration(tmp, tmp, ExploreSettings(branches=branches, replays=replays), progress=progress)


def _input_sha256(path: Path) -> str:
    try:
        return sha256_of(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the input ({exc})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Convert a robomimic hdf5 file (image or states-only) to the dino-wm dataset format.")
    parser.add_argument("--input", required=True, type=Path, help="robomimic hdf5 file (read-only)")
    parser.add_argument("--output", required=True, type=Path, help="dataset directory to create")
    parser.add_argument("--camera", nargs="+", default=list(DEFAULT_CAMERAS), metavar="NAME",
                        help="the cameras of every frame, the main one first, stored side by side and encoded each "
                             f"on its own (default: {' '.join(DEFAULT_CAMERAS)}, agentview and the wrist camera, "
                             "rendered from the states when the file does not store them all; --camera agentview "
                             "converts one view)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="frame size (default: the stored image size; 84 when rendering a states-only file)")
    parser.add_argument("--filter-key", default=None, help="convert only the demos in mask/<key> (e.g. train)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("--lossless", action="store_true", help="store exact uint8 frames (.npy) instead of mp4")
    parser.add_argument("--explore-branches", type=int, default=2, metavar="N",
                        help="exploration branches per demonstration: from a seeded random frame the simulator steps "
                             "4 chunks of random actions (5 env steps each) and records what the camera sees, so the "
                             "world model also learns what actions the demos never take do (default 2; 0: none; "
                             "python -m conversion.exploration adds them to a converted dataset later)")
    parser.add_argument("--explore-replays", type=int, default=None, metavar="N",
                        help="noisy replays per demonstration: its own actions from a frame in its first half with "
                             "the arm drifting off its path and the gripper's timing shifted, so the world model "
                             "sees near misses (grasps that close beside the object); default: "
                             "conversion.exploration's REPLAYS; 0: none")
    parser.add_argument("--allow-unknown-env", action="store_true",
                        help="convert even if env_args names an env, robot or controller type this robosuite "
                             "does not know, or the env does not build: SKIPS the simulator checks (action "
                             "width and range, state width against the env, obs/object against the simulator); "
                             "files whose frames or vectors need the simulator still fail")
    args = parser.parse_args(argv)
    if args.explore_branches < 0:
        parser.error("--explore-branches must be >= 0")
    if args.explore_replays is not None and args.explore_replays < 0:
        parser.error("--explore-replays must be >= 0")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        meta = convert(args.input, args.output, args.camera, args.image_size, args.filter_key,
                       args.overwrite, args.lossless, allow_unknown_env=args.allow_unknown_env,
                       explore_branches=args.explore_branches, explore_replays=args.explore_replays)
    except InputError as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)  # always one line
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    n_branches = sum(s >= 0 for s in meta.explore_sources)
    print(f"converted {meta.n_episodes - n_branches} episodes + {n_branches} exploration branches "
          f"({meta.n_frames} frames) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
