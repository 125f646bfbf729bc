"""wandb reference artifacts for the lineage dataset -> training run -> checkpoint -> evaluation.

A training run *uses* its dataset directory and *logs* each checkpoint it saves; an evaluation *uses* the
checkpoint it planned with. All are reference artifacts (``file://`` URIs): nothing is uploaded, every file is
checksummed (md5), and the artifact's digest depends on the files' names and contents only. So an evaluation
that builds the checkpoint's artifact again from the files on disk (:func:`checkpoint_artifact`, the same code
the training run used) names the version the training run logged, wherever the run dir has been moved.

Offline runs need no network or key for any of this: wandb writes the artifact records into the run's
``.wandb`` file and ``wandb sync`` uploads them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CHECKPOINT_TYPE = "model"
DATASET_TYPE = "dataset"


def artifact_name(text: str) -> str:
    """``text`` as a wandb artifact name (letters, digits, ``-``, ``_``, ``.``; the rest become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "artifact"


def checkpoint_artifact_name(train_run_id: str) -> str:
    """One artifact per training run, one version per checkpoint (aliases ``step_<N>``, ``latest``)."""
    return artifact_name(f"checkpoint-{train_run_id}")


def dataset_artifact_name(dataset_dir: str | Path) -> str:
    """From the dataset dir's last three path parts: ``data/demo/lift/dino_wm`` -> ``dataset-demo-lift-dino_wm``."""
    return artifact_name("dataset-" + "-".join(Path(dataset_dir).resolve().parts[-3:]))


def checkpoint_artifact(ckpt_dir: str | Path, train_run_id: str, step: int | None):
    """The reference artifact of one checkpoint directory (every file in it, checksummed)."""
    import wandb

    art = wandb.Artifact(checkpoint_artifact_name(train_run_id), type=CHECKPOINT_TYPE,
                         metadata={"step": step})
    art.add_reference(Path(ckpt_dir).resolve().as_uri())
    return art


def dataset_artifact(dataset_dir: str | Path, skip: tuple[str, ...] = (), metadata: dict[str, Any] | None = None):
    """The reference artifact of a dataset directory: each top-level entry but those named in ``skip`` (derived
    data such as the feature cache), checksummed file by file."""
    import wandb

    root = Path(dataset_dir).resolve()
    art = wandb.Artifact(dataset_artifact_name(root), type=DATASET_TYPE, metadata=metadata or {})
    for entry in sorted(root.iterdir()):
        if entry.name in skip or entry.name.startswith("."):
            continue
        art.add_reference(entry.as_uri(), name=entry.name)
    return art


def use_artifact(run, artifact) -> None:
    """Declare ``artifact`` (a draft, built here) an input of ``run``, online or offline.

    Online this is ``run.use_artifact``. Offline, wandb refuses ``use_artifact`` outright (it would look the
    artifact up on the server), although for a draft artifact it only writes the record it writes online: the
    artifact, flagged to be used once committed. That record goes into the offline run, and ``wandb sync``
    commits the artifact and marks it used, as the online run would have.
    """
    if run.offline:
        run._log_artifact(artifact, is_user_created=True, use_after_commit=True)
    else:
        run.use_artifact(artifact)
