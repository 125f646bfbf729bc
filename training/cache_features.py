"""Encode every frame of a converted dataset once with the frozen encoder (``datasets/feature_cache.py``).

    python -m training.cache_features --data DIR --img-size 56 [--random-encoder] [--device auto]

Training builds the cache itself when ``encoder.cache`` is on; this command builds it ahead of time.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from datasets.feature_cache import build_feature_cache
from models.dino import PATCH_SIZE, build_dino_encoder
from utils.cli_types import positive_int, positive_multiple_of
from utils.torch_device import device_argument


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.cache_features",
                                description="Encode every frame of a converted dataset once with the frozen "
                                            "DINOv2 encoder and store fp16 features in DIR/feature_cache/.")
    p.add_argument("--data", required=True, help="converted dataset directory (with meta.json)")
    p.add_argument("--img-size", type=positive_multiple_of(PATCH_SIZE), required=True,
                   help="encoder input size, a multiple of 14: the run's img_size (56 in the CPU preset, 196 with "
                        "preset=gpu_full); the cache of another size is not the one training reads")
    p.add_argument("--feature-key", default="x_norm_patchtokens", choices=["x_norm_patchtokens", "cls"],
                   help="patch tokens (default) or the CLS token; the run's encoder.feature_key")
    p.add_argument("--weights-path", default=None, help="official dinov2_vits14_pretrain.pth file")
    p.add_argument("--random-encoder", action="store_true", help="random (seeded) encoder weights, not DINOv2")
    p.add_argument("--seed", type=int, default=0, help="seed of the random encoder")
    p.add_argument("--batch-size", type=positive_int, default=64, help="frames encoded per forward pass (default 64)")
    p.add_argument("--device", default="auto", type=device_argument,
                   help="auto (a CUDA GPU when there is one, else cpu) | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--force", action="store_true", help="rebuild even if a valid cache exists")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.random_encoder and args.weights_path:
        p.error("--random-encoder and --weights-path exclude each other: random weights, or that file's")
    if not (Path(args.data) / "meta.json").is_file():
        print(f"error: {args.data} is not a converted dataset directory (no meta.json)", file=sys.stderr)
        return 2
    try:
        enc = build_dino_encoder(pretrained=not args.random_encoder, weights_path=args.weights_path,
                                 img_size=args.img_size, feature_key=args.feature_key, seed=args.seed)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    path = build_feature_cache(args.data, enc, args.batch_size, args.device, force=args.force)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
