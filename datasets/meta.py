"""Schema of a converted dataset directory (``meta.json``) and the names of its files.

A dataset directory, written by ``convert_robomimic_to_dino_wm.py``::

    DIR/meta.json                 DatasetMeta below
    DIR/states.pth                float32 [N, T_max, state_dim]   (zero-padded after each episode)
    DIR/proprios.pth              float32 [N, T_max, proprio_dim]
    DIR/velocities.pth            float32 [N, T_max, vel_dim]
    DIR/actions.pth               float32 [N, T_max, action_dim]
    DIR/seq_lengths.pth           int64   [N]
    DIR/sim_states.pth            float64 [N, T_max, sim_state_dim]
    DIR/obses/episode_{i:05d}.mp4 uint8 RGB frames [T_i, S, V * S, 3]: the V views (cameras) side by side, the
                                  main camera first (V = 1: the main camera alone), right side up
    DIR/models/<key>.xml          the episodes' MuJoCo model xmls (deduplicated; meta.model_files)

Frame ``t`` of an episode is the observation *before* action ``t`` is applied; the sim state at
``t`` reproduces that observation.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
META_FILE = "meta.json"
TENSOR_FILES = {
    "states": "states.pth",
    "proprios": "proprios.pth",
    "velocities": "velocities.pth",
    "actions": "actions.pth",
    "seq_lengths": "seq_lengths.pth",
    "sim_states": "sim_states.pth",
}
VIDEO_DIR = "obses"


def video_path(dataset_dir: str | Path, episode: int) -> Path:
    """Path of the mp4 holding episode ``episode``'s frames."""
    return Path(dataset_dir) / VIDEO_DIR / f"episode_{episode:05d}.mp4"


@dataclass
class VectorSlice:
    """A named slice ``[start, stop)`` of a state / proprio / velocity vector."""

    name: str
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass
class DatasetMeta:
    """Everything a consumer needs to know about a converted dataset (stored as ``meta.json``)."""

    env_name: str  # robosuite env name, e.g. "Lift", "PickPlaceCan"
    env_kwargs: dict[str, Any]  # robosuite.make kwargs from the hdf5 ``env_args`` (as stored there)
    camera_names: list[str]  # the main camera first; frames in obses/ show camera_names[:views], left to right
    image_size: int  # each view is image_size x image_size RGB; a frame is image_size x (views * image_size)
    action_dim: int
    state_slices: list[VectorSlice]  # object part first, so states[..., :k] is the object pose
    proprio_slices: list[VectorSlice]
    velocity_slices: list[VectorSlice]
    sim_state_dim: int
    n_episodes: int
    n_frames: int  # sum of seq_lengths
    demo_keys: list[str]  # hdf5 demo names, in episode order
    source_path: str = ""
    source_sha256: str = ""
    env_type: int = 1  # robomimic EnvType (1 = robosuite)
    filter_key: str | None = None
    control_freq: float = 20.0
    fps: float = 20.0
    lossless: bool = False
    robosuite_version: str = ""
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    # per episode: path (relative to the dataset dir) of its MuJoCo model xml (hdf5 ``model_file``),
    # "" if the source had none; see datasets/model_files.py and RobosuiteEnv.reset_to(model_xml=...)
    model_files: list[str] = field(default_factory=list)
    # per episode: the demonstration an exploration branch was taken from (conversion/exploration.py), -1 for
    # a demonstration; empty: every episode is a demonstration
    explore_sources: list[int] = field(default_factory=list)
    explore_starts: list[int] = field(default_factory=list)  # per episode: the source frame a branch starts at, or -1
    views: int = 1  # cameras side by side in every frame (camera_names[:views]); datasets before the key hold 1

    def __post_init__(self):
        if not isinstance(self.views, int) or not 1 <= self.views <= len(self.camera_names):
            raise ValueError(f"meta.json views={self.views!r} must be an int in 1..{len(self.camera_names)} "
                             f"(the cameras named: {self.camera_names})")

    @property
    def frame_cameras(self) -> list[str]:
        """The cameras each frame shows, left to right (the main camera first)."""
        return list(self.camera_names[: self.views])

    def is_exploration(self, episode: int) -> bool:
        """True for an exploration branch (never a planning goal, never action-prior data)."""
        return bool(self.explore_sources) and self.explore_sources[episode] >= 0

    @property
    def state_dim(self) -> int:
        return self.state_slices[-1].stop if self.state_slices else 0

    @property
    def proprio_dim(self) -> int:
        return self.proprio_slices[-1].stop if self.proprio_slices else 0

    @property
    def velocity_dim(self) -> int:
        return self.velocity_slices[-1].stop if self.velocity_slices else 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["state_dim"], d["proprio_dim"], d["velocity_dim"] = self.state_dim, self.proprio_dim, self.velocity_dim
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetMeta:
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"meta.json format_version {version!r} is not supported (expected {FORMAT_VERSION})")
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for key in ("state_slices", "proprio_slices", "velocity_slices"):
            kw[key] = [VectorSlice(**s) for s in kw.get(key, [])]
        return cls(**kw)

    def save(self, dataset_dir: str | Path) -> None:
        path = Path(dataset_dir) / META_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")

    @classmethod
    def load(cls, dataset_dir: str | Path) -> DatasetMeta:
        path = Path(dataset_dir) / META_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: is {dataset_dir} a converted dataset directory?")
        return cls.from_dict(json.loads(path.read_text()))
