"""utils.atomic_files: the new file or directory replaces the old one whole, or nothing changes."""

import json

import pytest

from utils.atomic_files import (
    atomic_copy,
    atomic_directory,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
)


def _names(d):
    return sorted(p.name for p in d.iterdir())


def test_directory_replaces_an_existing_directory_whole(tmp_path):
    final = tmp_path / "d"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with atomic_directory(final) as tmp:
        assert tmp != final and tmp.parent == tmp_path and ".tmp-" in tmp.name
        (tmp / "new.txt").write_text("new")
    assert _names(final) == ["new.txt"]
    assert _names(tmp_path) == ["d"]  # no temporary or old dirs left


def test_directory_failure_leaves_the_old_directory_and_no_temporary(tmp_path):
    final = tmp_path / "d"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(final) as tmp:
            (tmp / "half.txt").write_text("half")
            raise KeyboardInterrupt
    assert _names(final) == ["old.txt"]
    assert _names(tmp_path) == ["d"]


def test_path_keeps_the_suffix_and_replaces_on_success(tmp_path):
    final = tmp_path / "sub" / "plot.png"
    with atomic_path(final) as tmp:
        assert tmp.parent == final.parent and tmp.suffix == ".png" and tmp.name.startswith(".plot.png.tmp-")
        assert not final.exists()
        tmp.write_bytes(b"png")
    assert final.read_bytes() == b"png" and _names(final.parent) == ["plot.png"]


def test_path_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    final = tmp_path / "a.hdf5"
    final.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(final) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert final.read_text() == "old" and _names(tmp_path) == ["a.hdf5"]


def test_write_text_and_json(tmp_path):
    atomic_write_text(tmp_path / "t.txt", "héllo")
    assert (tmp_path / "t.txt").read_text() == "héllo"
    atomic_write_json(tmp_path / "j.json", {"a": [1, 2]}, indent=1)
    assert json.loads((tmp_path / "j.json").read_text()) == {"a": [1, 2]}
    assert (tmp_path / "j.json").read_text().endswith("\n")
    atomic_write_json(tmp_path / "c.json", {"b": 1}, indent=None)
    assert (tmp_path / "c.json").read_text() == '{"b": 1}'


def test_unserialisable_json_leaves_the_old_file_and_nothing_else(tmp_path):
    final = tmp_path / "s.json"
    final.write_text('{"ok": true}')
    with pytest.raises(TypeError):
        atomic_write_json(final, {"x": object()})
    assert json.loads(final.read_text()) == {"ok": True} and _names(tmp_path) == ["s.json"]


def test_json_default_converts_unknown_values(tmp_path):
    atomic_write_json(tmp_path / "d.json", {"x": {1, 2}}, default=sorted)
    assert json.loads((tmp_path / "d.json").read_text()) == {"x": [1, 2]}


def test_copy(tmp_path):
    (tmp_path / "src.bin").write_bytes(b"\x00\x01")
    atomic_copy(tmp_path / "src.bin", tmp_path / "out" / "dst.bin")
    assert (tmp_path / "out" / "dst.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(FileNotFoundError):
        atomic_copy(tmp_path / "missing", tmp_path / "out" / "dst.bin")
    assert (tmp_path / "out" / "dst.bin").read_bytes() == b"\x00\x01" and _names(tmp_path / "out") == ["dst.bin"]
