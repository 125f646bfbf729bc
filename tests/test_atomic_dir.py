"""atomic_directory: the new directory replaces the old one whole, or nothing changes."""

import pytest

from datasets.atomic_dir import atomic_directory


def test_replaces_an_existing_directory_whole(tmp_path):
    final = tmp_path / "d"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with atomic_directory(final) as tmp:
        assert tmp != final and tmp.parent == tmp_path
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temporary or old dirs left


def test_a_failure_leaves_the_old_directory_and_no_temporary(tmp_path):
    final = tmp_path / "d"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(final) as tmp:
            (tmp / "half.txt").write_text("half")
            raise KeyboardInterrupt
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
