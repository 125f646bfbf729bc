"""Encode every frame of a converted dataset once with the frozen encoder (``datasets/feature_cache.py``).

    python -m training.cache_features --data DIR --img-size 56 [--encoder NAME] [--random-encoder] [--device auto]
                                      [--reuse-from OTHER_DATASET]

Training builds the cache itself when ``encoder.cache`` is on; this command builds it ahead of time. The encoder
is built by the model factory from its registered name (``encoder.name``), as training builds it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from datasets.feature_cache import build_feature_cache
from datasets.meta import DatasetMeta
from models.factory import DEFAULT_ENCODER, ENCODERS, EncoderSpec, build_encoder, encoder_class
from utils.cli_types import positive_int, positive_multiple_of
from utils.torch_device import device_argument


def _per_encoder(describe) -> str:
    """``name: describe(class)`` for every registered encoder."""
    return "; ".join(f"{name}: {describe(entry.cls)}" for name, entry in ENCODERS.items())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.cache_features",
                                description="Encode every frame of a converted dataset once with a frozen "
                                            "encoder and store fp16 features in DIR/feature_cache/.")
    p.add_argument("--data", required=True, help="converted dataset directory (with meta.json)")
    p.add_argument("--encoder", default=DEFAULT_ENCODER, choices=list(ENCODERS),
                   help=f"the run's encoder.name (default {DEFAULT_ENCODER})")
    p.add_argument("--img-size", type=positive_int, required=True,
                   help="encoder input size, a multiple of the encoder's patch size "
                        f"({_per_encoder(lambda c: c.patch_size)}): the run's img_size (56 in the CPU preset, 196 "
                        "with preset=gpu_full); the cache of another size is not the one training reads")
    p.add_argument("--feature-key", default=None,
                   help="the run's encoder.feature_key, one of the encoder's, the first by default "
                        f"({_per_encoder(lambda c: ' | '.join(c.feature_keys))})")
    p.add_argument("--weights-path", default=None, help="the encoder's weights file (the run's encoder.weights_path)")
    p.add_argument("--random-encoder", action="store_true",
                   help="random (seeded) encoder weights, not the pretrained ones (encoder.pretrained=false)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random encoder")
    p.add_argument("--batch-size", type=positive_int, default=64, help="frames encoded per forward pass (default 64)")
    p.add_argument("--device", default="auto", type=device_argument,
                   help="auto (a CUDA GPU when there is one, else cpu) | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--force", action="store_true", help="rebuild even if a valid cache exists")
    p.add_argument("--reuse-from", default=None, metavar="DIR",
                   help="a dataset whose valid cache (same encoder) gives the rows of every episode with a "
                        "byte-identical frame file, so only the others are encoded (default: the parent that "
                        "conversion.exploration records in meta.json, if it still exists)")
    args = p.parse_args(argv)
    cls = encoder_class(args.encoder)
    try:
        positive_multiple_of(cls.patch_size)(str(args.img_size))
    except argparse.ArgumentTypeError as e:
        p.error(f"argument --img-size: {e}")
    feature_key = args.feature_key or cls.feature_keys[0]
    if feature_key not in cls.feature_keys:
        p.error(f"argument --feature-key: invalid choice: {feature_key!r} (choose from "
                f"{', '.join(map(repr, cls.feature_keys))})")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.random_encoder and args.weights_path:
        p.error("--random-encoder and --weights-path exclude each other: random weights, or that file's")
    if not (Path(args.data) / "meta.json").is_file():
        print(f"error: {args.data} is not a converted dataset directory (no meta.json)", file=sys.stderr)
        return 2
    try:
        views = DatasetMeta.load(args.data).views  # the dataset's cameras side by side in each frame
        enc = build_encoder(EncoderSpec(name=args.encoder, pretrained=not args.random_encoder,
                                        weights_path=args.weights_path, img_size=args.img_size,
                                        feature_key=feature_key, seed=args.seed, views=views))
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.reuse_from is not None and not (Path(args.reuse_from) / "meta.json").is_file():
        print(f"error: --reuse-from {args.reuse_from} is not a converted dataset directory (no meta.json)",
              file=sys.stderr)
        return 2
    path = build_feature_cache(args.data, enc, args.batch_size, args.device, force=args.force,
                               reuse_from=args.reuse_from)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
