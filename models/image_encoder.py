"""What the project reads of a frozen image encoder: the protocol every encoder of ``models/factory.py``'s registry
meets (``models/dino.py``'s ``DinoEncoder`` is one; README: "Add an encoder").

Read from the class, before any encoder is built (the training settings check, ``python -m
training.cache_features``): ``patch_size`` (``img_size`` must be a multiple of it), ``feature_keys`` (the allowed
``encoder.feature_key`` values, the first is the default) and ``emb_dim``. Read from a built encoder: the rest.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class ImageEncoder(Protocol):
    """A frozen ``nn.Module``: images [B, 3, H, W] in [0, 1] (any H, W: it resizes them to ``img_size``) ->
    features [B, num_patches, emb_dim]; its parameters never train (``requires_grad`` off, always in eval mode).
    An encoder that takes several cameras has ``views`` = V: an image then holds V square views side by side
    ([B, 3, H, V * H], the dataset's cameras), each view is encoded on its own and their tokens follow each other
    (``num_patches`` = V x one view's). Without the attribute an encoder takes one view (``views_of``)."""

    patch_size: ClassVar[int]
    feature_keys: ClassVar[tuple[str, ...]]
    name: str                # the registry's name (``encoder.name``)
    emb_dim: int             # E
    img_size: int            # the input size in pixels (``img_size``), per view
    feature_key: str         # one of ``feature_keys`` (``encoder.feature_key``)
    pretrained: bool         # false: seeded random weights (said in logs, summaries and checkpoints)
    weights_hash: str        # identifies the weights: a checkpoint refuses an encoder whose hash differs
    weights_source: str      # where the weights came from, in words

    @property
    def num_patches(self) -> int: ...  # P

    def cache_key(self) -> str: ...  # names the feature cache (name, weights, input size, feature key, views)

    def __call__(self, images: Tensor) -> Tensor: ...


def views_of(encoder: object) -> int:
    """The views side by side an encoder takes in each image (1 for an encoder without ``views``)."""
    return int(getattr(encoder, "views", 1))
