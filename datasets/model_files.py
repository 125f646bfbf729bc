"""The episodes' MuJoCo model xmls inside a converted dataset directory (``DIR/models/<key>.xml``).

robosuite randomises some model properties when it builds a model (e.g. Lift's cube size), so
resetting to a recorded sim state reproduces the episode exactly only in the episode's own model
(robomimic stores it as the demo attribute ``model_file``). Identical xmls are stored once.
"""

from __future__ import annotations

from pathlib import Path

from datasets.meta import DatasetMeta
from utils.xml_text import model_key

MODEL_DIR = "models"


def save_model_xml(dataset_dir: str | Path, xml: str | None) -> str:
    """Store ``xml`` (once per distinct xml); return its path relative to ``dataset_dir`` ("" if None)."""
    if not xml:
        return ""
    rel = f"{MODEL_DIR}/{model_key(xml)}.xml"
    path = Path(dataset_dir) / rel
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(xml)
    return rel


def episode_model_xml(dataset_dir: str | Path, meta: DatasetMeta, episode: int) -> str | None:
    """The model xml of ``episode`` (pass it to ``RobosuiteEnv.reset_to(model_xml=...)``), or None."""
    if episode >= len(meta.model_files) or not meta.model_files[episode]:
        return None
    return (Path(dataset_dir) / meta.model_files[episode]).read_text()
