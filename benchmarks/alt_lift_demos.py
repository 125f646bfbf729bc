#!/usr/bin/env python
"""A second Lift demonstration generator, for checking that training and planning hold beyond our own.

    python benchmarks/alt_lift_demos.py --n-episodes 40 --output data/alt/lift_alt.hdf5
    python convert_robomimic_to_dino_wm.py --input data/alt/lift_alt.hdf5 --output data/alt/lift_alt --image-size 84

The project's own generator (``envs.generate_demos``) approaches the cube from straight above with gain
1.5, closes for 8 steps, lifts 15 cm and keeps holding for 15 steps after the first success. A model tuned on
those demos alone may have learnt their timing, not the task. This one differs in every respect a planner or
a world model could latch on to:

* gains and speed: proportional gain 0.9 with the speed capped at 0.7 of the controller's range, less noise;
* approach: first to a point 4 cm beside and 6 cm above the cube (a side on a seeded random bearing),
  then over it, then down to 1 cm lower in the cube;
* timing: closes for 5 steps, lifts 10 cm, and the episode **ends at the first success** (no hold phase);
* files: states only (no camera images, as robomimic's ``demo_v15.hdf5``): the converter renders the frames.

The file has the robomimic layout of ``envs.generate_demos`` (``mask/train``, ``mask/valid``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envs.generate_demos import generate_demos  # noqa: E402
from tasks.scripted_policy import ScriptedPolicy  # noqa: E402
from tasks.task import CLOSE, OPEN, Phase  # noqa: E402


def alt_phases(rng: np.random.Generator) -> list[Phase]:
    """Lift phases with a side approach on a random bearing, a deeper grasp, a short close and a 10 cm lift."""
    angle = rng.uniform(0, 2 * np.pi)
    side = 0.04 * np.array([np.cos(angle), np.sin(angle), 0.0])
    return [
        Phase("beside", side + [0, 0, 0.06], OPEN, 0.015, 50, "object"),
        Phase("above", np.array([0, 0, 0.05]), OPEN, 0.01, 40, "object"),
        Phase("descend", np.array([0, 0, -0.01]), OPEN, 0.008, 40, "object"),
        Phase("grasp", np.zeros(3), CLOSE, 0.0, 5, "hold"),
        Phase("lift", np.array([0, 0, 0.10]), CLOSE, 0.01, 80, "grasp"),
    ]


class AltLiftPolicy(ScriptedPolicy):
    """The scripted policy's phase machine with :func:`alt_phases`, gain 0.9 and speed capped at 0.7."""

    def __init__(self, rng: np.random.Generator):
        super().__init__("lift", noise=0.02, rng=rng, gain=0.9)

    def reset(self, perturbation: str | None = None) -> None:
        super().reset(None)
        self.phases = alt_phases(self.rng)

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        action = super().__call__(obs)
        action[:3] = np.clip(action[:3], -0.7, 0.7)
        return action


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-episodes", type=int, default=40, help="successful episodes to keep (default 40)")
    p.add_argument("--output", required=True, type=Path, help="hdf5 file to write (atomically; must not exist)")
    p.add_argument("--seed", type=int, default=100, help="seed of placement, approach bearing and noise (default 100)")
    args = p.parse_args(argv)
    if args.n_episodes < 1:
        p.error("--n-episodes must be >= 1")
    if args.output.exists():
        p.error(f"--output {args.output} exists")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    stats = generate_demos("lift", args.n_episodes, args.output, camera_names=[], seed=args.seed, hold_steps=0,
                           policy=AltLiftPolicy(rng))
    print(f"wrote {stats['successes']} alternative Lift demos ({stats['successes']}/{stats['attempts']} successful, "
          f"{stats['steps_per_episode']:.0f} steps/episode, {stats['seconds']:.0f} s) to {stats['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
