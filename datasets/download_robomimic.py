"""Download a real robomimic dataset file from the Hugging Face hub (dataset repo ``amandlek/robomimic``).

Files live at ``v1.5/<task>/<dataset_type>/<file>``, e.g. ``v1.5/can/ph/demo_v15.hdf5`` (the
states-only file: the converter renders its frames). Needs a network; offline it stops with one
line pointing at the offline demo data (``setup_and_prepare.sh --demo``).

The file is written once, next to where it stays: ``hf_hub_download(local_dir=DEST/.hf_download)`` streams it
into the destination folder (not into the Hugging Face cache) and it is then renamed to ``DEST/<file>``.

    python -m datasets.download_robomimic --task can --dataset-type ph --dest data/robomimic/can/ph
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path

from tasks.registry import all_tasks

log = logging.getLogger(__name__)

REPO_ID = "amandlek/robomimic"
HUB_ONLY = ("transport", "tool_hang")  # hub folders to download only: not registered tasks (two arms / no layout yet)
DATASET_TYPES = ("ph", "mh", "mg")
DEFAULT_FILE = "demo_v15.hdf5"
STAGING = ".hf_download"  # hf_hub_download's local_dir inside the destination: the hub's folders + its metadata


def hub_tasks() -> tuple[str, ...]:
    """Tasks this downloader knows: the registered tasks with files on the hub (a ``download_name``), then
    ``HUB_ONLY``."""
    return (*[t.name for t in all_tasks() if t.download_name], *HUB_ONLY)


def hub_folder(task: str) -> str:
    """The hub folder of ``task`` (``v1.5/<folder>/``): a registered task's ``download_name``, else the name."""
    return next((t.download_name for t in all_tasks() if t.name == task and t.download_name), task)


class DownloadError(RuntimeError):
    """The file could not be downloaded (offline, not found, ...); the message is one line."""


def hub_filename(task: str, dataset_type: str = "ph", filename: str = DEFAULT_FILE) -> str:
    """Path of ``task``'s file inside the hub repo, e.g. ``v1.5/can/ph/demo_v15.hdf5``."""
    return f"v1.5/{hub_folder(task)}/{dataset_type}/{filename}"


def download(task: str, dataset_type: str = "ph", dest_dir: str | Path | None = None,
             filename: str = DEFAULT_FILE) -> Path:
    """Download ``v1.5/<hub folder of task>/<dataset_type>/<filename>`` to ``dest_dir/<filename>``.

    ``dest_dir`` defaults to ``data/robomimic/<task>/<dataset_type>``.

    Returns the local path (skips the download if the file is already there). Raises
    DownloadError with a one-line reason when offline or when the hub has no such file.
    """
    if task not in hub_tasks():
        raise DownloadError(f"unknown task {task!r}; choose one of {', '.join(hub_tasks())}")
    if dataset_type not in DATASET_TYPES:
        raise DownloadError(f"unknown dataset type {dataset_type!r}; choose one of {', '.join(DATASET_TYPES)}")
    if not filename.endswith(".hdf5") or "/" in filename or "\\" in filename:
        raise DownloadError(f"filename {filename!r} is not an hdf5 file name of v1.5/{hub_folder(task)}/{dataset_type}/ "
                            f"(e.g. {DEFAULT_FILE})")
    dest_dir = Path("data/robomimic") / task / dataset_type if dest_dir is None else Path(dest_dir)
    if dest_dir.exists() and not dest_dir.is_dir():
        raise DownloadError(f"--dest {dest_dir} is a file, not a directory")
    target = dest_dir / filename
    if target.is_file():
        log.info("%s already present", target)
        return target
    name = hub_filename(task, dataset_type, filename)
    created = not dest_dir.exists()
    staging = dest_dir / STAGING
    try:
        fetched = _fetch(name, staging)
        os.replace(fetched, target)  # a rename inside dest_dir: the bytes stay where they were written
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created and dest_dir.is_dir() and not any(dest_dir.iterdir()):
            dest_dir.rmdir()  # a failed download leaves no empty destination behind
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return target


def _fetch(name: str, local_dir: Path) -> Path:
    """Download ``name`` of the hub repo to ``local_dir/name`` (hf_hub_download's local_dir mode: no copy in the
    HF cache); hub errors become one-line DownloadErrors."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, OfflineModeIsEnabled
    except ImportError as exc:  # pragma: no cover - huggingface_hub is a dependency
        raise DownloadError(f"huggingface_hub is not installed ({exc})") from None
    offline_hint = ("downloading robomimic data needs network access to huggingface.co; "
                    "without a network use the offline demo data (./setup_and_prepare.sh --demo)")
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        raise DownloadError(f"HF_HUB_OFFLINE is set: {offline_hint}")
    try:
        return Path(hf_hub_download(repo_id=REPO_ID, repo_type="dataset", filename=name, local_dir=local_dir))
    except (OfflineModeIsEnabled, LocalEntryNotFoundError) as exc:
        raise DownloadError(f"cannot reach the hub for {REPO_ID}/{name}: {offline_hint}") from exc
    except EntryNotFoundError as exc:
        raise DownloadError(f"{REPO_ID} has no file {name}") from exc
    except OSError as exc:  # connection errors
        raise DownloadError(f"download of {REPO_ID}/{name} failed ({type(exc).__name__}): {offline_hint}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download a robomimic hdf5 file from the Hugging Face hub.")
    parser.add_argument("--task", required=True, choices=hub_tasks(),
                        help="a registered task with hub files (python -m tasks --on-hub), or a hub-only folder")
    parser.add_argument("--dataset-type", default="ph", choices=DATASET_TYPES, help="ph (default), mh or mg")
    parser.add_argument("--dest", default=None, type=Path,
                        help="directory to put the file in (default data/robomimic/<task>/<type>)")
    parser.add_argument("--filename", default=DEFAULT_FILE,
                        help=f"file inside v1.5/<task>/<type>/ (default {DEFAULT_FILE}, the states-only file)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # their retry warnings: our own one-line error says it all. huggingface_hub sets its loggers' level when it
    # is first imported, so it is quieted through its own switch (a level set before that import is undone)
    from huggingface_hub.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        path = download(args.task, args.dataset_type, args.dest, args.filename)
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
