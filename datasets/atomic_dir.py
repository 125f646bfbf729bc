"""Write a directory atomically: build it under a temporary name beside it, then swap it in."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_directory(final: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory next to ``final``; on success it replaces ``final``.

    On any exception (KeyboardInterrupt included) the temporary directory is removed and ``final``
    is left as it was. An existing ``final`` is moved aside before the swap and deleted after it,
    so ``final`` never names a half-written or missing directory for longer than two renames.
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
