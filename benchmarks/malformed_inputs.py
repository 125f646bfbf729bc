#!/usr/bin/env python
"""Sweep the converter with malformed inputs: does each give one line, exit 2, nothing written?

Builds variants of one valid small robomimic image file (generated here: one scripted Lift demo,
32x32 agentview + eye-in-hand, unless ``--input`` is given), runs the converter CLI on each in a
subprocess and prints a table: variant, exit code, the ``error:`` line (``$W``: the variant's temporary
folder), output written?, traceback?
A variant is handled cleanly when the exit code is 2, stderr has exactly one ``error:`` line and no
traceback, no output (and no ``*.tmp-*`` / ``*.old-*`` leftover) exists, and the input file's
sha256 and mtime are unchanged. The unmodified file (``valid``) must convert with exit 0.

    python benchmarks/malformed_inputs.py [--input lift.hdf5] [--only nan_obs,truncated]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEMO = "data/demo_0"


def _replace(f: h5py.File, key: str, value) -> None:
    del f[key]
    f[key] = value


def _env_args(f: h5py.File, edit: Callable[[dict], None]) -> None:
    args = json.loads(f["data"].attrs["env_args"])
    edit(args)
    f["data"].attrs["env_args"] = json.dumps(args)


def _set(path: str, value) -> Callable[[dict], None]:
    """An env_args edit: set a dotted ``path`` (e.g. ``env_kwargs.controller_configs.type``)."""
    def edit(args: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            args = args[p]
        args[last] = value
    return edit


def _scaled(key: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[h5py.File], None]:
    return lambda f: _replace(f, f"{DEMO}/{key}", fn(f[f"{DEMO}/{key}"][()]))


def _nan_at(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    a[len(a) // 2, 0] = np.nan
    return a


# name -> edit of the copied file (None: the file stays valid; the trouble is elsewhere)
EDITS: dict[str, Callable[[h5py.File], None] | None] = {
    "valid": None,
    "no_data_group": lambda f: f.__delitem__("data"),
    "missing_actions": lambda f: f.__delitem__(f"{DEMO}/actions"),
    "missing_states": lambda f: f.__delitem__(f"{DEMO}/states"),
    "actions_as_strings": _scaled("actions", lambda a: a.astype("S8")),
    "empty_demo": lambda f: (_scaled("actions", lambda a: a[:0])(f), _scaled("states", lambda a: a[:0])(f)),
    "nan_actions": _scaled("actions", _nan_at),
    "nan_obs_object": _scaled("obs/object", _nan_at),
    "inf_obs_eef_pos": _scaled("obs/robot0_eef_pos", lambda a: a * np.inf),
    "action_width_6": _scaled("actions", lambda a: a[:, :6]),
    "actions_out_of_range": _scaled("actions", lambda a: a * 5.0),
    "env_args_not_json": lambda f: f["data"].attrs.__setitem__("env_args", "{not json"),
    "unknown_env_name": lambda f: _env_args(f, _set("env_name", "LiftXYZ")),
    "unknown_controller_top": lambda f: _env_args(f, _set("env_kwargs.controller_configs.type", "FANCY")),
    "unknown_controller_part": lambda f: _env_args(
        f, _set("env_kwargs.controller_configs.body_parts.right.type", "OSC_FOO")),
    "image_length_mismatch": _scaled("obs/agentview_image", lambda a: a[:-1]),
    "states_length_mismatch": _scaled("states", lambda a: np.concatenate([a, a[-1:]])),
    "non_square_main_camera": _scaled("obs/agentview_image", lambda a: a[:, :, : a.shape[2] * 3 // 4]),
    "float_images": _scaled("obs/agentview_image", lambda a: a.astype(np.float32) / 255),
    "bad_model_xml": lambda f: f[DEMO].attrs.__setitem__("model_file", "<mujoco><worldbody></mujoco"),
    "missing_model_file": lambda f: f[DEMO].attrs.__delitem__("model_file"),
    "wrong_state_width": _scaled("states", lambda a: a[:, :20]),
    "obs_object_off_by_10cm": _scaled("obs/object", lambda a: a + np.r_[0.1, np.zeros(a.shape[1] - 1)]),
}
OUTPUT_CASES = ("output_parent_is_file", "output_in_readonly_sysfs", "output_is_a_file_with_overwrite")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_variant(name: str, valid: Path, work: Path) -> tuple[Path, Path, list[str]]:
    """(input file, output path, extra CLI args) of variant ``name``, built in the empty dir ``work``."""
    src, out, extra = work / "in.hdf5", work / "out" / "dataset", []
    shutil.copyfile(valid, src)
    if name == "truncated":
        src.write_bytes(valid.read_bytes()[: valid.stat().st_size // 2])
    elif name == "not_hdf5":
        src.write_text("this is not an hdf5 file\n")
    elif name == "output_parent_is_file":
        (work / "out").write_text("a file where the output's parent should be")
    elif name == "output_in_readonly_sysfs":
        out = Path("/sys/dino_wm_malformed_sweep/dataset")
    elif name == "output_is_a_file_with_overwrite":
        out.parent.mkdir()
        out.write_text("a regular file")
        extra = ["--overwrite"]
    elif EDITS.get(name) is not None:
        with h5py.File(src, "r+") as f:
            EDITS[name](f)
    return src, out, extra


def run_variant(name: str, valid: Path) -> dict:
    """Run the converter CLI on variant ``name``; the table row."""
    with tempfile.TemporaryDirectory(prefix=f"malformed_{name}_") as tmp:
        src, out, extra = make_variant(name, valid, Path(tmp))
        before = (sha256(src), src.stat().st_mtime_ns)
        existed = out.exists()
        proc = subprocess.run([sys.executable, str(ROOT / "convert_robomimic_to_dino_wm.py"), "--input", str(src),
                               "--output", str(out), *extra], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        try:
            siblings = list(out.parent.iterdir()) if out.parent.is_dir() else []
        except OSError:  # e.g. a name too long or a symlink loop: nothing can be there
            siblings = []
        leftovers = [p.name for p in siblings if ".tmp-" in p.name or ".old-" in p.name]
        written = (out.is_dir() and not existed) or bool(leftovers)
        message = (errors[-1] if errors else "").replace(tmp, "$W")
        row = {"variant": name, "rc": proc.returncode, "message": message,
               "written": written, "traceback": "Traceback" in proc.stderr,
               "input_untouched": (sha256(src), src.stat().st_mtime_ns) == before}
    if name == "valid":
        row["clean"] = row["rc"] == 0 and row["written"] and not row["traceback"]
    else:
        row["clean"] = (row["rc"] == 2 and len(errors) == 1 and not row["written"] and not row["traceback"]
                        and row["input_untouched"])
    return row


def make_valid(path: Path) -> Path:
    from envs.generate_demos import generate_demos

    generate_demos("lift", 1, path, ["agentview", "robot0_eye_in_hand"], image_size=32, seed=0, progress=False)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, help="a valid robomimic image file with demo_0 and two cameras "
                        "(default: generate one scripted Lift demo, 32x32)")
    parser.add_argument("--only", default="", help="comma-separated variant names to run")
    args = parser.parse_args(argv)
    names = ["valid", *[n for n in EDITS if n != "valid"], "truncated", "not_hdf5", *OUTPUT_CASES]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="malformed_valid_") as tmp:
        valid = args.input or make_valid(Path(tmp) / "lift.hdf5")
        rows = [run_variant(name, valid) for name in names]
    print("| variant | exit | message | output written | traceback | clean |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        message = r["message"].replace("|", "/")[:150]
        print(f"| {r['variant']} | {r['rc']} | {message} | {'yes' if r['written'] else 'no'} | "
              f"{'YES' if r['traceback'] else 'no'} | {'yes' if r['clean'] else 'NO'} |")
    bad = [r for r in rows if r["variant"] != "valid"]
    print(f"\n{sum(r['clean'] for r in bad)} of {len(bad)} malformed variants handled cleanly "
          f"(exit 2, one line, nothing written, input untouched); valid file converted: "
          f"{all(r['clean'] for r in rows if r['variant'] == 'valid')}")
    return 0 if all(r["clean"] for r in rows) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
