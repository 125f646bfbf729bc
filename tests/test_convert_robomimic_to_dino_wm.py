"""Tests for convert_robomimic_to_dino_wm.py: round trip, states-only rendering, options, bad input."""

from __future__ import annotations

import json
import re
import shutil

import h5py
import numpy as np
import pytest
import torch

from convert_robomimic_to_dino_wm import convert, main
from datasets.download_robomimic import main as download_main
from datasets.hdf5_checks import InputError
from datasets.meta import TENSOR_FILES, DatasetMeta, video_path
from datasets.model_files import episode_model_xml
from datasets.video_io import psnr, read_video
from envs.robosuite_env import RobosuiteEnv
from tests.conftest import ROOT, TINY_IMAGE_SIZE


def _load(dataset_dir, key):
    return torch.load(dataset_dir / TENSOR_FILES[key], weights_only=True)


def _copy_without(src, dst, drop_images=False, edit=None):
    """Copy an hdf5 file, optionally without camera images and with ``edit(file)`` applied."""
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        if drop_images:
            for name in f["data"]:
                for key in [k for k in f[f"data/{name}/obs"] if k.endswith("_image")]:
                    del f[f"data/{name}/obs/{key}"]
        if edit is not None:
            edit(f)
    return dst


# ---------------------------------------------------------------- round trip
def test_round_trip_frames_vectors_and_meta(tiny_lift_hdf5, tiny_lift_dataset):
    meta = DatasetMeta.load(tiny_lift_dataset)
    lengths = _load(tiny_lift_dataset, "seq_lengths")
    actions, sim_states = _load(tiny_lift_dataset, "actions"), _load(tiny_lift_dataset, "sim_states")
    states = _load(tiny_lift_dataset, "states")
    assert lengths.dtype == torch.int64 and sim_states.dtype == torch.float64 and actions.dtype == torch.float32
    with h5py.File(tiny_lift_hdf5, "r") as f:
        assert meta.demo_keys == ["demo_0", "demo_1", "demo_2"] and meta.n_episodes == 3
        assert meta.env_name == "Lift" and meta.env_kwargs == json.loads(f["data"].attrs["env_args"])["env_kwargs"]
        assert meta.camera_names[0] == "agentview" and meta.image_size == TINY_IMAGE_SIZE
        assert meta.action_dim == 7 and meta.sim_state_dim == 32 and meta.state_dim == 19
        assert meta.n_frames == int(lengths.sum()) == f["data"].attrs["total"]
        assert len(meta.source_sha256) == 64 and meta.robosuite_version
        t_max = int(lengths.max())
        assert actions.shape == (3, t_max, 7) and states.shape == (3, t_max, 19)
        for i, name in enumerate(meta.demo_keys):
            g = f[f"data/{name}"]
            t = int(g.attrs["num_samples"])
            assert lengths[i] == t
            frames = read_video(video_path(tiny_lift_dataset, i))
            assert frames.shape == (t, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3)
            assert psnr(frames, g["obs/agentview_image"][()]) >= 35.0
            np.testing.assert_allclose(actions[i, :t].numpy(), g["actions"][()], atol=1e-7)
            np.testing.assert_array_equal(sim_states[i, :t].numpy(), g["states"][()])
            np.testing.assert_allclose(states[i, :t, :10].numpy(), g["obs/object"][()], atol=1e-6)
            assert not actions[i, t:].any() and not sim_states[i, t:].any()  # zero padding


def test_sim_states_reset_the_simulator_to_the_recorded_object_pose(tiny_lift_dataset):
    meta = DatasetMeta.load(tiny_lift_dataset)
    sim_states, states = _load(tiny_lift_dataset, "sim_states").numpy(), _load(tiny_lift_dataset, "states").numpy()
    env = RobosuiteEnv.from_meta(meta, render=False)
    try:
        for i in range(meta.n_episodes):
            for t in (0, 12):
                obs = env.reset_to(sim_states[i, t], model_xml=episode_model_xml(tiny_lift_dataset, meta, i))
                assert np.abs(obs["state"][:3] - states[i, t, :3]).max() <= 1e-6
    finally:
        env.close()


def test_states_only_file_renders_frames_close_to_the_recorded_ones(tiny_lift_hdf5, tmp_path):
    src = _copy_without(tiny_lift_hdf5, tmp_path / "states_only.hdf5", drop_images=True)
    with h5py.File(src, "r+") as f:  # a states-only file has no low-dim obs either
        for name in f["data"]:
            del f[f"data/{name}/obs"]
    meta = convert(src, tmp_path / "out", image_size=TINY_IMAGE_SIZE, progress=False, explore_branches=0)
    assert meta.extra["frames_source"] == "rendered" and meta.image_size == TINY_IMAGE_SIZE
    assert meta.frame_cameras == ["agentview", "robot0_eye_in_hand"]  # the default: agentview and the wrist camera
    s = TINY_IMAGE_SIZE
    with h5py.File(tiny_lift_hdf5, "r") as f:
        for i, name in enumerate(meta.demo_keys):
            recorded = f[f"data/{name}/obs/agentview_image"][()]
            frames = read_video(video_path(tmp_path / "out", i))
            assert psnr(frames[:, :, :s], recorded) >= 30.0
            assert psnr(frames[:, :, s:], f[f"data/{name}/obs/robot0_eye_in_hand_image"][()]) >= 30.0
            t = len(recorded)
            np.testing.assert_allclose(_load(tmp_path / "out", "states")[i, :t, :10].numpy(),
                                       f[f"data/{name}/obs/object"][()], atol=1e-6)


def test_options_filter_key_image_size_lossless_camera_overwrite(tiny_lift_hdf5, tmp_path):
    out = tmp_path / "d"
    meta = convert(tiny_lift_hdf5, out, camera="robot0_eye_in_hand", image_size=32, filter_key="train",
                   lossless=True, progress=False, explore_branches=0)
    assert meta.filter_key == "train" and meta.demo_keys == ["demo_0", "demo_1"] and meta.lossless
    assert meta.camera_names[0] == "robot0_eye_in_hand" and meta.image_size == 32
    frames = read_video(video_path(out, 0))
    assert frames.shape[1:] == (32, 32, 3) and (out / "obses" / "episode_00000.npy").is_file()
    with pytest.raises(InputError, match="exists"):
        convert(tiny_lift_hdf5, out, progress=False, explore_branches=0)
    meta2 = convert(tiny_lift_hdf5, out, overwrite=True, progress=False)  # the defaults: 2 exploration branches each
    assert meta2.n_episodes == 9 and not meta2.lossless and video_path(out, 8).is_file()
    assert meta2.explore_sources == [-1] * 3 + [0, 0, 1, 1, 2, 2] and meta2.demo_keys[3] == "explore_demo_0_0"
    assert not (out / "obses" / "episode_00000.npy").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no tmp / old dirs left


def test_old_controller_config_in_env_args_converts_and_builds(tiny_lift_hdf5, tmp_path):
    from tests.test_robosuite_env import OLD_OSC

    def edit(f):
        args = json.loads(f["data"].attrs["env_args"])
        args["env_kwargs"]["controller_configs"] = OLD_OSC
        f["data"].attrs["env_args"] = json.dumps(args)

    src = _copy_without(tiny_lift_hdf5, tmp_path / "old.hdf5", edit=edit)
    meta = convert(src, tmp_path / "out", progress=False, explore_branches=0)
    assert meta.env_kwargs["controller_configs"]["type"] == "OSC_POSE"
    env = RobosuiteEnv.from_meta(meta, render=False)
    env.close()


def test_interrupt_leaves_no_output(tiny_lift_hdf5, tmp_path, monkeypatch):
    import convert_robomimic_to_dino_wm as conv

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(conv, "write_video", boom)
    before = (tiny_lift_hdf5.stat().st_mtime_ns, conv.sha256_of(tiny_lift_hdf5))
    with pytest.raises(KeyboardInterrupt):
        convert(tiny_lift_hdf5, tmp_path / "out", progress=False, explore_branches=0)
    assert list(tmp_path.iterdir()) == []
    assert (tiny_lift_hdf5.stat().st_mtime_ns, conv.sha256_of(tiny_lift_hdf5)) == before  # input untouched


# ---------------------------------------------------------------- bad input: one line, exit 2, no output
def _drop(key):
    def edit(f):
        del f[f"data/demo_1/{key}"]
    return edit


def _replace(key, fn, demo="demo_1"):
    def edit(f):
        value = fn(f[f"data/{demo}/{key}"][()])
        del f[f"data/{demo}/{key}"]
        f[f"data/{demo}/{key}"] = value
    return edit


def _in_every_demo(key, fn):
    def edit(f):
        for demo in f["data"]:
            _replace(key, fn, demo)(f)
    return edit


def _nan_at(t, d):
    def fn(a):
        a = a.astype(np.float64)
        a[t, d] = np.nan
        return a
    return fn


def _env_args(path, value):
    """Set ``env_args[path]`` (dotted, e.g. ``env_kwargs.controller_configs.type``)."""
    def edit(f):
        args = json.loads(f["data"].attrs["env_args"])
        node, keys = args, path.split(".")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
        f["data"].attrs["env_args"] = json.dumps(args)
    return edit


def _model_file(xml):
    def edit(f):
        f["data/demo_1"].attrs["model_file"] = xml
    return edit


def _no_data(f):
    del f["data"]


BAD = {
    "no_data": (_no_data, [], "no 'data' group"),
    "no_actions": (_drop("actions"), [], "demo_1: missing 'actions'"),
    "no_states": (_drop("states"), [], "demo_1: missing 'states'"),
    "length_mismatch": (_replace("actions", lambda a: a[:-1]), [], "demo_1: 'states' has"),
    "nan_actions": (_replace("actions", _nan_at(3, 1), "demo_2"), [], "demo_2: 'actions' has a non-finite"),
    "unknown_camera": (None, ["--camera", "frontview_nope"], "unknown camera 'frontview_nope'"),
    "bad_filter_key": (None, ["--filter-key", "nope"], "mask/nope"),
    "huge_image_size": (None, ["--image-size", "100000"], "--image-size must be in [8, 1024], got 100000"),
    # the cases of issue 14, in its order
    "1_nan_obs_object": (_replace("obs/object", _nan_at(5, 2)), [], "demo_1: 'obs/object' has a non-finite"),
    "2_action_width_6": (_in_every_demo("actions", lambda a: a[:, :6]),
                         [], "demo_0: 'actions' has width 6; Lift with controller BASIC (right OSC_POSE, "
                         "right.gripper GRIP) takes 7"),
    "3_unknown_env_name": (_env_args("env_name", "LiftXYZ"), [], "does not know env name 'LiftXYZ'"),
    "3_unknown_part_controller": (_env_args("env_kwargs.controller_configs.body_parts.right.type", "OSC_FOO"), [],
                                  "controller type 'OSC_FOO' (controller_configs.body_parts.right.type)"),
    "3_unknown_top_controller": (_env_args("env_kwargs.controller_configs.type", "FANCY"), [],
                                 "controller type 'FANCY' (controller_configs.type)"),
    "4_non_square_main_camera": (_in_every_demo("obs/agentview_image", lambda a: a[:, :, :48]),
                                 [], "demo_0: 'obs/agentview_image' frames are 64x48, not square"),
    "5_no_model_file": (lambda f: f["data/demo_1"].attrs.__delitem__("model_file"), [],
                        "demo_1: no 'model_file' attribute"),
    "7_float_images": (_replace("obs/agentview_image", lambda a: a.astype(np.float32) / 255), [],
                       "demo_1: 'obs/agentview_image' has dtype float32; images must be uint8"),
    "8_model_file_not_xml": (_model_file("<mujoco><worldbody></mujoco>"), [],
                             "demo_1: attribute 'model_file' is not valid XML"),
    "8_model_file_does_not_compile": (_model_file("<mujoco><worldbody><geom type='blob'/></worldbody></mujoco>"),
                                      [], "demo_1: attribute 'model_file' does not load in MuJoCo"),
    "9_state_width_20": (_in_every_demo("states", lambda a: a[:, :20]),
                         [], "demo_0: 'states' has width 20, but the flattened state of its 'model_file' has 32"),
    # more values a file can get wrong
    "actions_out_of_range": (_replace("actions", lambda a: a * 3), [], "demo_1: 'actions' value"),
    "obs_object_off_the_recorded_state": (_replace("obs/object", lambda a: a + 0.05), [], "demo_1: 'obs/object' pose"),
    "unknown_robot": (_env_args("env_kwargs.robots", ["Pandaa"]), [], "robot 'Pandaa'"),
    "bad_env_kwarg": (_env_args("env_kwargs.no_such_kwarg", 1), [], "cannot build Lift from its env_kwargs"),
}


def _assert_refused(src, args, message, capsys, out=None):
    """Exit 2, one stderr line with ``message``, nothing written beside ``src`` (or at ``out``), ``src``
    byte-identical and not touched; returns the line."""
    from convert_robomimic_to_dino_wm import sha256_of

    before, listing = (sha256_of(src), src.stat().st_mtime_ns), sorted(src.parent.iterdir())
    out = out or src.parent / "out"
    out_before = out.exists()
    capsys.readouterr()
    assert main(["--input", str(src), "--output", str(out), *args]) == 2
    lines = [x for x in re.split(r"[\r\n]+", capsys.readouterr().err) if x.strip() and not x.startswith("converting:")]
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error: "), lines  # a progress bar aside
    err = lines[0]
    assert out.exists() == out_before and sorted(src.parent.iterdir()) == listing
    assert (sha256_of(src), src.stat().st_mtime_ns) == before
    return err


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gives_one_line_exit_2_and_no_output(case, tiny_lift_hdf5, tmp_path, capsys):
    edit, extra, message = BAD[case]
    src = _copy_without(tiny_lift_hdf5, tmp_path / "in.hdf5", edit=edit)
    err = _assert_refused(src, extra, message, capsys)
    assert message.startswith("--") or f"error: {src}: " in err
    assert "demo_" not in message or f"{src}: {message}" in err


def test_issue_6_truncated_hdf5_is_one_line(tiny_lift_hdf5, tmp_path, capsys):
    src = tmp_path / "in.hdf5"
    src.write_bytes(tiny_lift_hdf5.read_bytes()[: tiny_lift_hdf5.stat().st_size // 3])
    _assert_refused(src, [], "cannot open the hdf5 file (truncated or corrupt?)", capsys)


def test_the_size_check_reads_the_converted_camera(tiny_lift_hdf5, tmp_path):
    src = _copy_without(tiny_lift_hdf5, tmp_path / "in.hdf5",
                        edit=BAD["4_non_square_main_camera"][0])  # agentview 64x48, eye-in-hand 64x64
    meta = convert(src, tmp_path / "out", camera="robot0_eye_in_hand", filter_key="valid", progress=False, explore_branches=0)
    assert meta.image_size == TINY_IMAGE_SIZE and read_video(video_path(tmp_path / "out", 0)).shape[1:3] == (64, 64)


def test_allow_unknown_env_converts_without_the_simulator_checks(tiny_lift_hdf5, tmp_path, capsys, caplog):
    src = _copy_without(tiny_lift_hdf5, tmp_path / "in.hdf5", edit=_env_args("env_name", "LiftXYZ"))
    out = tmp_path / "out"
    assert main(["--input", str(src), "--output", str(out), "--filter-key", "valid", "--allow-unknown-env"]) == 0
    assert (meta := DatasetMeta.load(out)).env_name == "LiftXYZ" and meta.extra["simulator_checks"] == "skipped"
    assert "skipping the checks that need the simulator" in caplog.text and "action width" in caplog.text
    assert "\r" not in capsys.readouterr().err  # progress off a terminal: plain log lines, no bar redraws
    (tmp_path / "so").mkdir()
    states_only = _copy_without(src, tmp_path / "so" / "in.hdf5", drop_images=True)  # frames need the simulator
    _assert_refused(states_only, ["--allow-unknown-env"], "needs the simulator for its frames", capsys)


# ---------------------------------------------------------------- output path errors (issue 14 case 10)
def test_output_under_a_regular_file_is_one_line(tiny_lift_hdf5, tmp_path, capsys):
    src = _copy_without(tiny_lift_hdf5, tmp_path / "in.hdf5")
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile" / "out", tmp_path / "afile" / "a" / "out"):
        _assert_refused(src, [], "a part of the path is a file, not a directory", capsys, out=out)
    assert (tmp_path / "afile").read_text() == "x"
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    _assert_refused(src, [], "cannot inspect the output path", capsys, out=tmp_path / "loop" / "out")


def test_read_only_location_and_full_disk_leave_nothing(tiny_lift_hdf5, tmp_path, capsys, monkeypatch):
    import errno
    import tempfile

    import convert_robomimic_to_dino_wm as conv

    src = _copy_without(tiny_lift_hdf5, tmp_path / "in.hdf5")
    out = tmp_path / "new" / "deeper" / "out"  # the parents made for it go again on failure

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(out.parent))

    with monkeypatch.context() as m:  # root ignores chmod, so the filesystem's answer is simulated
        m.setattr(tempfile, "mkdtemp", read_only)
        _assert_refused(src, [], "cannot write the output ([Errno 30] Read-only file system", capsys, out=out)
    written = []

    def disk_full(path, *a, **k):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(path)
        conv_write(path, *a, **k)

    conv_write = conv.write_video
    monkeypatch.setattr(conv, "write_video", disk_full)
    _assert_refused(src, [], "No space left on device", capsys, out=out)
    assert written and not (tmp_path / "new").exists()


def test_overwrite_replaces_only_a_converted_dataset(tiny_lift_hdf5, tmp_path, capsys):
    src = _copy_without(tiny_lift_hdf5, tmp_path / "in.hdf5")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    _assert_refused(src, ["--overwrite"], "is not a converted dataset", capsys, out=tmp_path / "notes")
    (tmp_path / "file").write_text("keep me too")
    _assert_refused(src, ["--overwrite"], "exists and is not a directory", capsys, out=tmp_path / "file")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


def test_not_hdf5_and_existing_dir(tmp_path, capsys, tiny_lift_hdf5):
    bad = tmp_path / "x.hdf5"
    bad.write_text("not an hdf5 file")
    assert main(["--input", str(bad), "--output", str(tmp_path / "o")]) == 2
    assert "not an hdf5 file" in capsys.readouterr().err and not (tmp_path / "o").exists()
    (tmp_path / "exists").mkdir()
    assert main(["--input", str(tiny_lift_hdf5), "--output", str(tmp_path / "exists")]) == 2
    assert "--overwrite" in capsys.readouterr().err and list((tmp_path / "exists").iterdir()) == []


def test_overwrite_never_deletes_the_input(tmp_path, capsys, tiny_lift_hdf5):
    import shutil

    src = tmp_path / "data" / "demo.hdf5"
    src.parent.mkdir()
    shutil.copy(tiny_lift_hdf5, src)
    for out in (src.parent, tmp_path):  # the input's folder, or a folder above it
        assert main(["--input", str(src), "--output", str(out), "--overwrite"]) == 2
        assert "holds the input" in capsys.readouterr().err
    assert src.is_file() and src.stat().st_size == tiny_lift_hdf5.stat().st_size


@pytest.mark.parametrize("flag", ["--explore-branches", "--explore-replays"])
def test_negative_exploration_counts_are_refused_before_anything_is_read(flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--input", str(tmp_path / "missing.hdf5"), "--output", str(tmp_path / "o"), flag, "-1"])
    assert exc.value.code == 2 and f"{flag} must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_subprocess_exit_code(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "x.hdf5"
    bad.write_text("nope")
    proc = subprocess.run([sys.executable, "convert_robomimic_to_dino_wm.py", "--input", str(bad), "--output",
                           str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error:")
    assert "Traceback" not in proc.stderr


def test_download_offline_is_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert download_main(["--task", "can", "--dest", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "network" in err and "--demo" in err
    assert list(tmp_path.iterdir()) == []


def test_images_without_low_dim_obs_get_vectors_from_the_simulator(tiny_lift_hdf5, tiny_lift_dataset, tmp_path):
    def edit(f):
        for name in f["data"]:
            for key in [k for k in f[f"data/{name}/obs"] if not k.endswith("_image")]:
                del f[f"data/{name}/obs/{key}"]

    src = _copy_without(tiny_lift_hdf5, tmp_path / "images_only.hdf5", edit=edit)
    convert(src, tmp_path / "out", filter_key="valid", progress=False, explore_branches=0)
    ref = DatasetMeta.load(tiny_lift_dataset)
    i_ref = ref.demo_keys.index("demo_2")
    t = int(_load(tiny_lift_dataset, "seq_lengths")[i_ref])
    for key in ("states", "proprios", "velocities"):
        np.testing.assert_allclose(_load(tmp_path / "out", key)[0, :t].numpy(),
                                   _load(tiny_lift_dataset, key)[i_ref, :t].numpy(), atol=1e-6)


def test_states_only_unknown_camera_is_one_line_exit_2(tiny_lift_hdf5, tmp_path, capsys):
    src = _copy_without(tiny_lift_hdf5, tmp_path / "in.hdf5", drop_images=True)
    assert main(["--input", str(src), "--output", str(tmp_path / "out"), "--camera", "nope_cam"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown camera 'nope_cam'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.hdf5"]


# ---------------------------------------------------------------- several cameras (views) per frame
def test_two_cameras_are_stored_side_by_side_from_the_file(tiny_lift_hdf5, tmp_path):
    meta = convert(tiny_lift_hdf5, tmp_path / "v2", camera=["agentview", "robot0_eye_in_hand"], lossless=True,
                   progress=False, explore_branches=1)
    assert meta.views == 2 and meta.frame_cameras == ["agentview", "robot0_eye_in_hand"]
    assert meta.extra["frames_source"] == "hdf5" and DatasetMeta.load(tmp_path / "v2").views == 2
    s = TINY_IMAGE_SIZE
    with h5py.File(tiny_lift_hdf5, "r") as f:
        frames = read_video(video_path(tmp_path / "v2", 0))
        assert frames.shape[1:] == (s, 2 * s, 3)
        np.testing.assert_array_equal(frames[:, :, :s], f["data/demo_0/obs/agentview_image"][()])
        np.testing.assert_array_equal(frames[:, :, s:], f["data/demo_0/obs/robot0_eye_in_hand_image"][()])
    branch = read_video(video_path(tmp_path / "v2", 3))  # an exploration branch, rendered with both cameras
    assert meta.is_exploration(3) and branch.shape[1:] == (s, 2 * s, 3)
    assert branch[:, :, s:].std() > 1 and np.abs(branch[:, :, :s].astype(int) - branch[:, :, s:]).mean() > 5


def test_a_view_the_file_lacks_renders_every_view_from_the_states(tiny_lift_hdf5, tmp_path):
    def drop_wrist(f):
        for name in f["data"]:
            del f[f"data/{name}/obs/robot0_eye_in_hand_image"]

    src = _copy_without(tiny_lift_hdf5, tmp_path / "agentview_only.hdf5", edit=drop_wrist)
    meta = convert(src, tmp_path / "v2", camera=["agentview", "robot0_eye_in_hand"], progress=False,
                   explore_branches=0)
    assert meta.views == 2 and meta.extra["frames_source"] == "rendered" and meta.image_size == TINY_IMAGE_SIZE
    s = TINY_IMAGE_SIZE
    with h5py.File(tiny_lift_hdf5, "r") as f:
        frames = read_video(video_path(tmp_path / "v2", 1))
        assert psnr(frames[:, :, :s], f["data/demo_1/obs/agentview_image"][()]) >= 30.0
        assert psnr(frames[:, :, s:], f["data/demo_1/obs/robot0_eye_in_hand_image"][()]) >= 30.0


def test_a_repeated_or_unknown_second_camera_is_one_line_exit_2(tiny_lift_hdf5, tmp_path, capsys):
    src = _copy_without(tiny_lift_hdf5, tmp_path / "in.hdf5")
    _assert_refused(src, ["--camera", "agentview", "agentview"], "distinct camera names", capsys)
    _assert_refused(src, ["--camera", "agentview", "nope_cam"], "unknown camera 'nope_cam'", capsys)
