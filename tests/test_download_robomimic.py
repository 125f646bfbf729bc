"""The robomimic downloader without a network: the hub call replaced by a stand-in that serves a local file
or raises the hub's own errors (the real hub is reached only by users, with the same code around it)."""

from __future__ import annotations

import huggingface_hub
import pytest
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

from datasets.download_robomimic import DownloadError, download, hub_filename, main


@pytest.fixture()
def hub(monkeypatch, tmp_path):
    """A hub whose files are under tmp_path/hub; records every request."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    asked = []

    def fake(repo_id, repo_type, filename):
        asked.append((repo_id, repo_type, filename))
        path = tmp_path / "hub" / filename
        if not path.is_file():
            raise EntryNotFoundError(f"404 {filename}")
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    return tmp_path / "hub", asked


def test_the_file_is_fetched_from_its_hub_path_once_and_then_reused(hub, tmp_path):
    root, asked = hub
    assert hub_filename("can", "mh") == "v1.5/can/mh/demo_v15.hdf5"
    (root / "v1.5/can/mh").mkdir(parents=True)
    (root / "v1.5/can/mh/demo_v15.hdf5").write_bytes(b"hdf5 bytes")
    got = download("can", "mh", tmp_path / "dest")
    assert got == tmp_path / "dest" / "demo_v15.hdf5" and got.read_bytes() == b"hdf5 bytes"
    assert asked == [("amandlek/robomimic", "dataset", "v1.5/can/mh/demo_v15.hdf5")]
    assert download("can", "mh", tmp_path / "dest") == got and len(asked) == 1  # already there: no request
    assert [p.name for p in (tmp_path / "dest").iterdir()] == ["demo_v15.hdf5"]  # no temporary file left


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


def test_unknown_task_or_dataset_type_is_refused_before_any_request(hub):
    _, asked = hub
    with pytest.raises(DownloadError, match="unknown task 'stack'"):
        download("stack")
    with pytest.raises(DownloadError, match="unknown dataset type 'xx'"):
        download("can", "xx")
    assert asked == []


def test_a_bad_file_name_or_a_file_as_destination_is_refused_before_any_request(hub, tmp_path):
    _, asked = hub
    for name in ("", "../x.hdf5", "demo.txt"):
        with pytest.raises(DownloadError, match="is not an hdf5 file name"):
            download("can", "ph", tmp_path / "d", filename=name)
    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(DownloadError, match=f"^--dest {a_file} is a file, not a directory$"):
        download("can", "ph", a_file)
    assert asked == [] and a_file.read_text() == "x" and not (tmp_path / "d").exists()
