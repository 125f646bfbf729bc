"""The robomimic downloader without a network: the hub call replaced by a stand-in that serves a local file
or raises the hub's own errors (the real hub is reached only by users, with the same code around it)."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

from datasets.download_robomimic import STAGING, DownloadError, download, hub_filename, main


@pytest.fixture()
def hub(monkeypatch, tmp_path):
    """A hub whose files are under tmp_path/hub, served the way ``hf_hub_download(local_dir=...)`` serves them
    (its metadata folder made first, the file written at ``local_dir/<path in the repo>``); records every
    request and the inode of every file it wrote."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    asked, written = [], []

    def fake(repo_id, repo_type, filename, local_dir=None):
        asked.append((repo_id, repo_type, filename, local_dir))
        assert local_dir is not None, "downloaded into the HF cache, to be copied out again"
        (Path(local_dir) / ".cache" / "huggingface" / "download").mkdir(parents=True, exist_ok=True)
        source = tmp_path / "hub" / filename
        if not source.is_file():
            raise EntryNotFoundError(f"404 {filename}")
        out = Path(local_dir) / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(source.read_bytes())
        written.append(out.stat().st_ino)
        return str(out)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    return tmp_path / "hub", asked, written


def test_the_file_is_fetched_from_its_hub_path_once_and_then_reused(hub, tmp_path):
    root, asked, written = hub
    assert hub_filename("can", "mh") == "v1.5/can/mh/demo_v15.hdf5"
    (root / "v1.5/can/mh").mkdir(parents=True)
    (root / "v1.5/can/mh/demo_v15.hdf5").write_bytes(b"hdf5 bytes")
    got = download("can", "mh", tmp_path / "dest")
    assert got == tmp_path / "dest" / "demo_v15.hdf5" and got.read_bytes() == b"hdf5 bytes"
    assert asked == [("amandlek/robomimic", "dataset", "v1.5/can/mh/demo_v15.hdf5", tmp_path / "dest" / STAGING)]
    assert got.stat().st_ino == written[0]  # the file the hub client wrote, renamed: written once, never copied
    assert download("can", "mh", tmp_path / "dest") == got and len(asked) == 1  # already there: no request
    assert [p.name for p in (tmp_path / "dest").iterdir()] == ["demo_v15.hdf5"]  # no staging folder left


def test_hub_errors_become_one_line_download_errors(hub, tmp_path, monkeypatch, capsys):
    with pytest.raises(DownloadError, match="^amandlek/robomimic has no file v1.5/lift/ph/demo_v15.hdf5$"):
        download("lift", "ph", tmp_path / "d")
    for exc, says in ((LocalEntryNotFoundError("no connection"), "cannot reach the hub"),
                      (ConnectionError("reset by peer"), r"failed \(ConnectionError\)")):
        def raising(*a, exc=exc, **k):
            raise exc
        monkeypatch.setattr(huggingface_hub, "hf_hub_download", raising)
        with pytest.raises(DownloadError, match=says) as info:
            download("lift", "ph", tmp_path / "d")
        assert "\n" not in str(info.value) and "setup_and_prepare.sh --demo" in str(info.value)
    assert main(["--task", "lift", "--dest", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: download of amandlek/robomimic/v1.5/lift/ph")
    assert not (tmp_path / "d").exists()  # a failed download leaves no empty destination behind


def test_a_failed_download_into_an_existing_folder_leaves_only_what_was_there(hub, tmp_path):
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(DownloadError, match="has no file"):
        download("lift", "ph", dest)
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]  # the hub client's staging folder is gone


def test_unknown_task_or_dataset_type_is_refused_before_any_request(hub):
    _, asked, _ = hub
    with pytest.raises(DownloadError, match="unknown task 'stack'"):
        download("stack")
    with pytest.raises(DownloadError, match="unknown dataset type 'xx'"):
        download("can", "xx")
    assert asked == []


def test_a_bad_file_name_or_a_file_as_destination_is_refused_before_any_request(hub, tmp_path):
    _, asked, _ = hub
    for name in ("", "../x.hdf5", "demo.txt"):
        with pytest.raises(DownloadError, match="is not an hdf5 file name"):
            download("can", "ph", tmp_path / "d", filename=name)
    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(DownloadError, match=f"^--dest {a_file} is a file, not a directory$"):
        download("can", "ph", a_file)
    assert asked == [] and a_file.read_text() == "x" and not (tmp_path / "d").exists()
