"""A refused command's Hydra run directory is removed only when it holds nothing but launch files."""

from utils.run_dirs import only_launch_files, remove_refused_run_dir


def _launched(d):
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "config.yaml").write_text("a: 1\n")
    (d / "logs").mkdir()
    (d / "logs" / "train.log").write_text("ERROR refused\n")
    (d / "plan.log").write_text("")
    return d


def test_a_directory_of_launch_files_only_is_removed(tmp_path):
    d = _launched(tmp_path / "run")
    assert only_launch_files(d) and remove_refused_run_dir(d) and not d.exists()
    assert remove_refused_run_dir(tmp_path / "never_made") is False


def test_a_directory_with_anything_else_is_kept_whole(tmp_path):
    for extra in ("checkpoints/step_00000001/model.safetensors", "run_info.json", "notes.txt"):
        d = _launched(tmp_path / extra.replace("/", "_"))
        (d / extra).parent.mkdir(parents=True, exist_ok=True)
        (d / extra).write_text("x")
        assert not only_launch_files(d) and remove_refused_run_dir(d) is False
        assert (d / extra).is_file() and (d / ".hydra" / "config.yaml").is_file()


def test_the_log_files_written_into_it_are_closed_and_detached_first(tmp_path):
    import logging

    d = _launched(tmp_path / "run")
    h = logging.FileHandler(d / "logs" / "train.log")
    logging.getLogger().addHandler(h)
    try:
        assert remove_refused_run_dir(d) and not d.exists()
        assert h not in logging.getLogger().handlers and h.stream is None  # closed
    finally:
        logging.getLogger().removeHandler(h)
