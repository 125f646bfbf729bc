"""Write files and directories atomically: build them under a hidden temporary name beside the
target, then swap them in with ``os.replace``.

A reader (or a crash) never sees a half-written target: it names either the old content or the new
one. On any exception (KeyboardInterrupt included) the temporary is removed and the target is left
as it was. Temporaries are named ``.NAME.tmp-XXXX[.suffix]`` (the suffix is kept, so tools that pick
a format from it, e.g. matplotlib, still do); ``.NAME.old-PID`` names a directory being replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_directory(final: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory next to ``final``; on success it replaces ``final``.

    An existing ``final`` is moved aside before the swap and deleted after it, so ``final`` never
    names a half-written or missing directory for longer than two renames.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        old = final.with_name(f".{final.name}.old-{os.getpid()}") if final.exists() else None
        if old is not None:
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary file path next to ``final`` (same suffix); on success it replaces ``final``.

    The caller writes the temporary file by name (an hdf5 file, an ffmpeg output, a figure); the
    parent directory is created. The temporary exists (empty) when the block starts.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.tmp-", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (utf-8) to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2,
                      default: Callable[[Any], Any] | None = None) -> Path:
    """Write ``obj`` as JSON (plus a final newline when indented) to ``path`` atomically.

    The object is serialised before anything is written, so an unserialisable object leaves no file.
    """
    text = json.dumps(obj, indent=indent, default=default)
    return atomic_write_text(path, text + "\n" if indent is not None else text)


def atomic_copy(source: str | Path, target: str | Path) -> Path:
    """Copy the file ``source`` to ``target`` atomically; returns ``target``."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return Path(target)
