"""A MuJoCo model xml as text (a robomimic demo's ``model_file``): its id and whether it parses.

No MuJoCo here: ``datasets`` (which names stored xml files by their id and checks their syntax) and
``envs`` (which loads them into the simulator, ``envs/model_xml.py``) both use these two.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET


def model_key(xml: str) -> str:
    """Short stable id of a model xml (first 16 hex digits of its sha256)."""
    return hashlib.sha256(xml.encode()).hexdigest()[:16]


def xml_parse_error(xml: str) -> str | None:
    """Why ``xml`` is not well-formed XML (one line), or None if it parses."""
    try:
        ET.fromstring(xml)
    except ET.ParseError as exc:
        return str(exc)
    return None
