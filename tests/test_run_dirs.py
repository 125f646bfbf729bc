"""A refused command's Hydra run directory: only what this launch made goes, and the directory once empty."""

import logging
import time

from utils.run_dirs import launch_files, remove_refused_run_dir

NOW = time.time()


def _stamp(t: float) -> str:
    return time.strftime("[%Y-%m-%d %H:%M:%S", time.localtime(t)) + ",123][x][ERROR] - refused\n"


def _launched(d, log_time: float = NOW):
    (d / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (d / ".hydra" / name).write_text("a: 1\n")
    (d / "logs").mkdir()
    (d / "logs" / "train.log").write_text(_stamp(log_time))
    (d / "plan.log").write_text("")
    return d


def test_a_directory_of_this_launchs_files_only_is_removed(tmp_path):
    d = _launched(tmp_path / "run")
    assert len(launch_files(d, NOW)) == 5
    assert remove_refused_run_dir(d, NOW) and not d.exists()
    assert remove_refused_run_dir(tmp_path / "never_made", NOW) is False


def test_anything_else_keeps_the_directory_whole(tmp_path):
    for extra in ("checkpoints/step_00000001/model.safetensors", "run_info.json", "notes.txt", "notes.log.txt",
                  "deep/er/old.log"):
        d = _launched(tmp_path / extra.replace("/", "_"))
        (d / extra).parent.mkdir(parents=True, exist_ok=True)
        (d / extra).write_text("x")
        assert launch_files(d, NOW) is None and remove_refused_run_dir(d, NOW) is False
        assert (d / extra).is_file() and (d / ".hydra" / "config.yaml").is_file() and (d / "logs" / "train.log").is_file()
    d = _launched(tmp_path / "empty_subdir")
    (d / "wandb").mkdir()
    assert remove_refused_run_dir(d, NOW) is False and (d / "wandb").is_dir()


def test_a_log_an_earlier_attempt_began_keeps_the_directory(tmp_path):
    d = _launched(tmp_path / "run", log_time=NOW - 3600)  # e.g. the traceback of a crash an hour ago
    assert remove_refused_run_dir(d, NOW) is False and (d / "logs" / "train.log").read_text().endswith("refused\n")


def test_the_working_directory_and_links_are_never_removed(tmp_path, monkeypatch):
    d = _launched(tmp_path / "here")
    monkeypatch.chdir(d)
    assert remove_refused_run_dir(d, NOW) is False and (d / ".hydra").is_dir()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link").symlink_to(d)
    assert remove_refused_run_dir(tmp_path / "link", NOW) is False and d.is_dir()


def test_the_log_files_written_into_it_are_closed_and_detached_first(tmp_path):
    d = _launched(tmp_path / "run")
    h = logging.FileHandler(d / "logs" / "train.log")
    logging.getLogger().addHandler(h)
    try:
        assert remove_refused_run_dir(d, NOW) and not d.exists()
        assert h not in logging.getLogger().handlers and h.stream is None  # closed
    finally:
        logging.getLogger().removeHandler(h)
