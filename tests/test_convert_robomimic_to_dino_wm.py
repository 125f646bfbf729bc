"""Tests for convert_robomimic_to_dino_wm.py: round trip, states-only rendering, options, bad input."""

from __future__ import annotations

import json
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
    meta = convert(src, tmp_path / "out", image_size=TINY_IMAGE_SIZE, progress=False)
    assert meta.extra["frames_source"] == "rendered" and meta.image_size == TINY_IMAGE_SIZE
    with h5py.File(tiny_lift_hdf5, "r") as f:
        for i, name in enumerate(meta.demo_keys):
            recorded = f[f"data/{name}/obs/agentview_image"][()]
            assert psnr(read_video(video_path(tmp_path / "out", i)), recorded) >= 30.0
            t = len(recorded)
            np.testing.assert_allclose(_load(tmp_path / "out", "states")[i, :t, :10].numpy(),
                                       f[f"data/{name}/obs/object"][()], atol=1e-6)


def test_options_filter_key_image_size_lossless_camera_overwrite(tiny_lift_hdf5, tmp_path):
    out = tmp_path / "d"
    meta = convert(tiny_lift_hdf5, out, camera="robot0_eye_in_hand", image_size=32, filter_key="train",
                   lossless=True, progress=False)
    assert meta.filter_key == "train" and meta.demo_keys == ["demo_0", "demo_1"] and meta.lossless
    assert meta.camera_names[0] == "robot0_eye_in_hand" and meta.image_size == 32
    frames = read_video(video_path(out, 0))
    assert frames.shape[1:] == (32, 32, 3) and (out / "obses" / "episode_00000.npy").is_file()
    with pytest.raises(InputError, match="exists"):
        convert(tiny_lift_hdf5, out, progress=False)
    meta2 = convert(tiny_lift_hdf5, out, overwrite=True, progress=False)
    assert meta2.n_episodes == 3 and not meta2.lossless and video_path(out, 2).is_file()
    assert not (out / "obses" / "episode_00000.npy").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no tmp / old dirs left


def test_old_controller_config_in_env_args_converts_and_builds(tiny_lift_hdf5, tmp_path):
    from tests.test_robosuite_env import OLD_OSC

    def edit(f):
        args = json.loads(f["data"].attrs["env_args"])
        args["env_kwargs"]["controller_configs"] = OLD_OSC
        f["data"].attrs["env_args"] = json.dumps(args)

    src = _copy_without(tiny_lift_hdf5, tmp_path / "old.hdf5", edit=edit)
    meta = convert(src, tmp_path / "out", progress=False)
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
        convert(tiny_lift_hdf5, tmp_path / "out", progress=False)
    assert list(tmp_path.iterdir()) == []
    assert (tiny_lift_hdf5.stat().st_mtime_ns, conv.sha256_of(tiny_lift_hdf5)) == before  # input untouched


# ---------------------------------------------------------------- bad input: one line, exit 2, no output
def _drop(key):
    def edit(f):
        del f[f"data/demo_1/{key}"]
    return edit


def _truncate_actions(f):
    a = f["data/demo_1/actions"][()]
    del f["data/demo_1/actions"]
    f["data/demo_1/actions"] = a[:-1]


def _nan_actions(f):
    f["data/demo_2/actions"][3, 1] = np.nan


def _no_data(f):
    del f["data"]


BAD = {
    "no_data": (_no_data, [], "no 'data' group"),
    "no_actions": (_drop("actions"), [], "demo_1: missing 'actions'"),
    "no_states": (_drop("states"), [], "demo_1: missing 'states'"),
    "length_mismatch": (_truncate_actions, [], "demo_1: 'actions' has"),
    "nan_actions": (_nan_actions, [], "demo_2: 'actions' contains NaN"),
    "unknown_camera": (None, ["--camera", "frontview_nope"], "unknown camera 'frontview_nope'"),
    "bad_filter_key": (None, ["--filter-key", "nope"], "mask/nope"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gives_one_line_exit_2_and_no_output(case, tiny_lift_hdf5, tmp_path, capsys):
    edit, extra, message = BAD[case]
    src = _copy_without(tiny_lift_hdf5, tmp_path / "in.hdf5", edit=edit)
    out = tmp_path / "out"
    assert main(["--input", str(src), "--output", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(src) in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.hdf5"]


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
    convert(src, tmp_path / "out", filter_key="valid", progress=False)
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
