"""Per-episode MuJoCo model xml (hdf5 ``model_file``): make it loadable here and identify it.

The model is not fully fixed by the env kwargs: robosuite samples e.g. Lift's cube size when it
builds the model, so exact replays need the episode's own xml. Files recorded on another machine
hold absolute asset paths of that machine's robosuite install; :func:`localize_model_xml` points
them at this install's ``robosuite/models/assets``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from utils.xml_text import xml_parse_error

ASSET_MARKER = "robosuite/models/assets/"


def localize_model_xml(xml: str) -> str:
    """Rewrite mesh / texture / include ``file`` paths that point into some robosuite install."""
    import robosuite

    local_assets = Path(robosuite.__file__).parent / "models" / "assets"
    root = ET.fromstring(xml)
    changed = False
    for elem in root.iter():
        path = elem.get("file")
        if path and ASSET_MARKER in path.replace("\\", "/"):
            rel = path.replace("\\", "/").split(ASSET_MARKER)[-1]
            new = str(local_assets / rel)
            if new != path:
                elem.set("file", new)
                changed = True
    return ET.tostring(root, encoding="unicode") if changed else xml


def flat_state_dim(xml: str) -> int:
    """Width ``1 + nq + nv`` of the flattened MuJoCo state ``[time, qpos, qvel]`` of the model ``xml``.

    Compiles the model (asset paths localized first; about 0.1 s for Lift). Raises ValueError if
    it is not XML or MuJoCo cannot compile it.
    """
    import mujoco

    error = xml_parse_error(xml)
    if error is not None:
        raise ValueError(f"not valid XML ({error})")
    model = mujoco.MjModel.from_xml_string(localize_model_xml(xml))
    return 1 + int(model.nq) + int(model.nv)
