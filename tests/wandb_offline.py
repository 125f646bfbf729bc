"""Read an offline wandb run back (the tests' reader of ``<dir>/wandb/offline-run-*``): identity, config,
summary, history and the artifacts it logged or used (an offline run records a used draft artifact as the
artifact flagged ``use_after_commit``: ``used`` here).

wandb 0.31 has no Python reader of its ``run-<id>.wandb`` transaction log any more (the Go core
writes it), so this reads the file format directly: a 7-byte header (``:W&B``, magic, version), then
LevelDB-log records in 32 KiB blocks, each chunk ``crc32 (4) | length (2, LE) | type (1) | data``
(type 1 = whole record, 2/3/4 = first/middle/last piece), each record a ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

_BLOCK, _HEADER = 32768, 7


def _records(path: Path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a wandb transaction log")
    pos, buf = _HEADER, b""
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # block trailer padding
            pos += left
            continue
        _, n, kind = struct.unpack("<IHB", data[pos:pos + _HEADER])
        buf += data[pos + _HEADER:pos + _HEADER + n]
        pos += _HEADER + n
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(buf)
            buf = b""
            yield rec


def _key(item) -> str:
    """Nested keys (media, tables: ``{"episodes": {"path": ...}}``) come flat: ``episodes/path``."""
    return "/".join(item.nested_key) if item.nested_key else item.key


@dataclass
class OfflineRun:
    """What an offline run holds: its identity, config, final summary, history rows and media files."""

    dir: Path
    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    artifacts: list[dict] = field(default_factory=list)  # logged (used=False) and used (used=True) artifacts

    def artifact(self, name: str, used: bool) -> list[dict]:
        """The artifact records of ``name`` this run logged (``used=False``) or used (``used=True``)."""
        return [a for a in self.artifacts if a["name"] == name and a["used"] == used]

    def media(self, kind: str) -> list[Path]:
        """Files under ``files/media/<kind>`` (``videos``, ``images``, ``table``)."""
        return sorted(p for p in (self.dir / "files" / "media" / kind).rglob("*") if p.is_file())

    def table(self, key: str) -> dict:
        """The last logged ``wandb.Table`` under ``key``: {"columns": [...], "data": [[...], ...]}."""
        return json.loads((self.dir / "files" / self.summary[f"{key}/path"]).read_text())


def read_offline_run(run_dir: Path) -> OfflineRun:
    """Parse ``run_dir`` (an ``offline-run-*`` dir)."""
    run = OfflineRun(dir=Path(run_dir))
    for rec in _records(next(Path(run_dir).glob("run-*.wandb"))):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run.run_id, run.name, run.group, run.job_type = r.run_id, r.display_name, r.run_group, r.job_type
            run.tags = list(r.tags)
            run.config.update({_key(i): json.loads(i.value_json) for i in r.config.update})
        elif kind == "config":
            run.config.update({_key(i): json.loads(i.value_json) for i in rec.config.update})
        elif kind == "summary":
            run.summary.update({_key(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "history":
            run.history.append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "artifact":
            a = rec.artifact
            run.artifacts.append({"name": a.name, "type": a.type, "digest": a.digest, "aliases": list(a.aliases),
                                  "used": a.use_after_commit, "metadata": json.loads(a.metadata or "{}"),
                                  "entries": {e.path: e.ref for e in a.manifest.contents}})
    return run


def offline_runs(root: Path) -> list[OfflineRun]:
    """Every offline run under ``root/wandb``.

    ``run.finish()`` may return before wandb's service process has written the whole transaction log
    (seen for the first run of a process); a process exit waits for it, and so does ``wandb.teardown()``,
    called here when this process has used wandb.
    """
    if "wandb" in sys.modules:
        sys.modules["wandb"].teardown()
    return [read_offline_run(d) for d in sorted(Path(root).glob("wandb/offline-run-*"))]
