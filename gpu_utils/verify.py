"""Check on a GPU machine that torch ends up on exactly the GPU(s) gpu_utils chose.

    python -m gpu_utils.verify [-n N] [--min-free-memory GB]

Selects and applies like training does, then imports torch and compares the UUID of every device
torch sees with the chosen devices' NVML UUIDs, in order. Exit status 0 when they match, 1 when
they do not or when there is no GPU to check. The output is meant to be pasted into a bug report.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gpu_utils.devices import query_devices
from gpu_utils.run_selection import select_gpus_for_run
from gpu_utils.visible import parse_visible_devices

logger = logging.getLogger("gpu_utils.verify")


def same_uuid(torch_uuid: str, nvml_uuid: str) -> bool:
    """torch prints ``58f9c1b8-...``; NVML ``GPU-58f9c1b8-...`` / ``MIG-...``: compare the hex part."""
    def strip(u: str) -> str:
        u = u.strip().lower()
        return u.split("-", 1)[1] if u[:4] in ("gpu-", "mig-") else u
    return strip(torch_uuid) == strip(nvml_uuid)


def torch_view() -> list[tuple[str, str]]:
    """(name, uuid) of every CUDA device torch sees, in ordinal order (initialises CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return []
    props = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
    return [(p.name, str(getattr(p, "uuid", ""))) for p in props]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpu_utils.verify", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--num-gpus", type=int, default=1, help="GPUs to select (default: 1; 0 = all)")
    parser.add_argument("--min-free-memory", type=float, default=0.0, metavar="GB", help="GiB free required")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)

    ordinals = select_gpus_for_run(args.num_gpus, args.min_free_memory)
    if not ordinals:
        print("no GPU selected: nothing to verify")
        return 1
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    chosen = parse_visible_devices(cvd, query_devices().devices)
    seen = torch_view()
    print(f"CUDA_DEVICE_ORDER={os.environ.get('CUDA_DEVICE_ORDER')} CUDA_VISIBLE_DEVICES={cvd} "
          f"MUJOCO_EGL_DEVICE_ID={os.environ.get('MUJOCO_EGL_DEVICE_ID')} returned cuda:{ordinals}")
    ok = len(seen) == len(chosen)
    for k, dev in enumerate(chosen):
        name, uuid = seen[k] if k < len(seen) else ("(not seen by torch)", "")
        match = same_uuid(uuid, dev.uuid)
        ok &= match
        print(f"cuda:{k}  torch: {name} {uuid}  chosen: {dev.label} {dev.uuid}  {'OK' if match else 'MISMATCH'}")
    print(f"torch sees {len(seen)} device(s); chosen {len(chosen)}: {'OK' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
