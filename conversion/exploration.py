"""Exploration branches: the simulator's answer to actions the demonstrations never take.

A world model trained on demonstrations alone has only seen actions that work: every time the gripper
closed, it closed around the object, and every lift carried it. A planner then finds plans that exploit
that gap (close the gripper in the air, "lift" and score the goal). Branches fill it with counterfactuals:
from a seeded random frame of a demonstration the simulator is reset exactly (with its controller state,
``RobosuiteEnv.reset_to``) and steps ``chunks`` chunks of random actions, each held for ``chunk_steps`` env
steps (one planning step of the model), drawn as a planner's search draws them: per dimension from the
data's action mean and std, the gripper open or closed. What the camera sees is recorded like a demonstration.

Random chunks rarely bring the gripper to the object, so the model still sees almost no near misses: a grasp
that closes a few centimetres beside the object or a step too early, after which the arm lifts nothing. Those are
the plans a search finds in a model that has not seen them (they end with the gripper where the goal's is).
*Noisy replays* (``replays`` per demonstration) fill that gap: from a seeded frame in the first half of a
demonstration, its own remaining actions are replayed with a constant offset on the arm dimensions (per dimension
N(0, ``replay_drift`` x the data's action std), the same every step, so the arm drifts steadily off the
demonstration's path) and the gripper's open / close commands shifted by up to ``replay_gripper_shift`` env steps.
Small draws still grasp; larger ones miss by a little, which is what the model must learn to tell apart.

Branch episodes are appended to a converted dataset directory (``meta.json`` ``explore_sources``: the
source episode of each branch, -1 for the demonstrations; ``explore_starts``: the frame of it the branch started
from). They go to the split of their source episode, so
no test episode's scene is ever trained on (``datasets.robomimic_dset.split_episodes``), and they are never
planning goals or action-prior data.

*Plan branches* (``--from-plans PLAN_DIR``) close the loop with the planner itself: ``plan.py outputs.actions=true``
on the run's *training* episodes records the env actions its search executed; each is replayed here from the same
start and appended as a branch of that demonstration. They are the plans the search found in the model, with what
the simulator says they truly do, so a model retrained on them (from scratch, the same recipe) has seen where its
predecessor was exploited (as model-based RL gathers data with its own planner). They may be added to a dataset
that already holds branches.

CLI (the converter runs the first step with ``--explore-branches``)::

    python -m conversion.exploration DATASET_DIR [--branches 2] [--chunks 4] [--chunk-steps 5] [--replays 2] [--seed 0]
    python -m conversion.exploration DATASET_DIR --from-plans PLAN_DIR [PLAN_DIR ...] --out NEW_DATASET_DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from datasets import executed_actions
from datasets.meta import TENSOR_FILES, DatasetMeta, video_path
from datasets.model_files import episode_model_xml, save_model_xml
from datasets.video_io import lossless_path, write_video
from utils.atomic_files import atomic_directory
from utils.progress import progress as progress_bar

log = logging.getLogger(__name__)
PIX_FMT = "yuv444p"  # as the converter writes the demonstrations' videos
REPLAYS = 0  # noisy replays per demonstration by default (the converter's --explore-replays too)


@dataclass(frozen=True)
class ExploreSettings:
    """Random-chunk branches per demonstration (``chunks`` chunks of ``chunk_steps`` env steps each); noisy replays
    per demonstration (arm offset ``replay_drift`` x the action std per step, gripper timing shifted by up to
    ``replay_gripper_shift`` env steps); seed. The random branches do not depend on the replay settings."""

    branches: int = 2
    chunks: int = 4
    chunk_steps: int = 5
    seed: int = 0
    replays: int = 0
    replay_drift: float = 0.3
    replay_gripper_shift: int = 5

    def __post_init__(self) -> None:
        if self.branches < 0 or self.chunks < 1 or self.chunk_steps < 1:
            raise ValueError(f"need branches >= 0, chunks >= 1 and chunk_steps >= 1, got {self}")
        if self.replays < 0 or self.replay_drift < 0 or self.replay_gripper_shift < 0:
            raise ValueError(f"need replays >= 0, replay_drift >= 0 and replay_gripper_shift >= 0, got {self}")


def action_stats(actions: torch.Tensor, seq_lengths: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std [A] of the recorded actions (padding excluded)."""
    valid = torch.cat([actions[i, :n] for i, n in enumerate(seq_lengths.tolist())]).double()
    return valid.mean(0).numpy(), valid.std(0).numpy()


def random_chunks(rng: np.random.Generator, mean: np.ndarray, std: np.ndarray, chunks: int, steps: int,
                  low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """[chunks * steps, A] env actions: one draw per chunk from N(mean, std) per dimension, held ``steps`` env
    steps, clipped to the env's bounds; the gripper (last dim) open (-1) or closed (+1)."""
    draws = mean + std * rng.standard_normal((chunks, len(mean)))
    draws[:, -1] = np.where(draws[:, -1] > 0, 1.0, -1.0)
    return np.repeat(np.clip(draws, low, high), steps, axis=0)


def replay_start(rng: np.random.Generator, length: int) -> int:
    """A seeded start frame in the first half of a demonstration of ``length`` env steps (where the approach and
    the contact are), leaving at least one action to replay."""
    return int(rng.integers(0, max(1, length // 2)))


def noisy_replay(rng: np.random.Generator, demo: np.ndarray, start: int, std: np.ndarray, drift: float,
                 gripper_shift: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """[L - start, A] env actions: the demonstration's actions ``demo`` [L, A] from ``start`` on, every arm dimension
    offset by one draw of N(0, drift * std) held for the whole branch, the gripper (last dim) commands those of
    the demonstration shifted in time by a draw in [-gripper_shift, gripper_shift] env steps (positive: later),
    clipped to the env's bounds."""
    length = len(demo)
    offset = drift * std[:-1] * rng.standard_normal(len(std) - 1)
    shift = int(rng.integers(-gripper_shift, gripper_shift + 1))
    out = demo[start:].astype(np.float64)
    out[:, :-1] += offset
    out[:, -1] = demo[np.clip(np.arange(start, length) - shift, 0, length - 1), -1]
    return np.clip(out, low, high)


def run_branch(env, data, episode: int, start: int, actions: np.ndarray) -> dict[str, np.ndarray]:
    """Reset ``env`` to frame ``start`` of ``episode`` and step ``actions`` [L, A]; the recorded arrays of the
    branch (frames, state, proprio, velocity, sim_states: the observation before each action; actions)."""
    xml = episode_model_xml(data.path, data.meta, episode)
    obs = env.reset_to(data.sim_states[episode, start].numpy(), data.actions[episode, :start].numpy(),
                       data.sim_states[episode, 0].numpy(), model_xml=xml)
    rec: dict[str, list] = {"frames": [], "state": [], "proprio": [], "velocity": [], "sim_states": []}
    for a in actions:
        rec["frames"].append(obs["image"])
        for key in ("state", "proprio", "velocity"):
            rec[key].append(obs[key])
        rec["sim_states"].append(env.get_sim_state())
        obs, _, _, _ = env.step(a)
    out = {k: np.stack(v) for k, v in rec.items()}
    out["actions"] = np.asarray(actions, dtype=np.float32)
    out["xml"] = xml
    return out


def explore(data, settings: ExploreSettings, progress: bool = True) -> list[tuple[int, dict]]:
    """(source episode, branch arrays) for ``settings.branches`` branches of every demonstration of ``data``
    (a ``RobomimicEpisodes``), in a seeded order that does not depend on anything else."""
    from envs.robosuite_env import RobosuiteEnv

    sources = [i for i in range(len(data)) if explore_sources(data.meta)[i] < 0]
    mean, std = action_stats(data.actions[sources], data.seq_lengths[sources])
    rng = np.random.default_rng(settings.seed)
    replay_rng = np.random.default_rng([settings.seed, 1])  # its own stream: random branches stay as without replays
    env = RobosuiteEnv.from_meta(data.meta, render=True)
    out, replays = [], []
    try:
        for ep in progress_bar(sources, desc="exploration branches", unit="ep", disable=not progress):
            for _ in range(settings.branches):
                start = int(rng.integers(0, data.seq_len(ep)))
                acts = random_chunks(rng, mean, std, settings.chunks, settings.chunk_steps, env.action_low,
                                     env.action_high)
                out.append((ep, {**run_branch(env, data, ep, start, acts), "start": start, "kind": "explore"}))
            for _ in range(settings.replays):
                demo = data.actions[ep, : data.seq_len(ep)].numpy()
                start = replay_start(replay_rng, len(demo))
                acts = noisy_replay(replay_rng, demo, start, std, settings.replay_drift,
                                    settings.replay_gripper_shift, env.action_low, env.action_high)
                replays.append((ep, {**run_branch(env, data, ep, start, acts), "start": start, "kind": "replay"}))
    finally:
        env.close()
    return out + replays


def explore_sources(meta: DatasetMeta) -> list[int]:
    """Per episode: the demonstration a branch was taken from, or -1 for a demonstration."""
    return list(meta.explore_sources) if meta.explore_sources else [-1] * meta.n_episodes


def plan_branches(data, files: list[Path], progress: bool = True) -> list[tuple[int, dict]]:
    """(source episode, branch arrays) for each executed-actions file (``datasets.executed_actions``): its
    actions replayed in the simulator from its start, in the order of (episode, start); ``solved``: whether the
    planner solved the task. Raises ValueError (one line) for a file that does not belong to ``data`` (another dataset, an episode that is not a demonstration, a start past its end)."""
    from envs.robosuite_env import RobosuiteEnv

    sources = explore_sources(data.meta)
    plans = []
    for f in files:
        rec = executed_actions.load(f)
        if rec.n_episodes > len(data) or sources[rec.episode] >= 0:
            raise ValueError(f"{f}: planned on {rec.dataset} ({rec.n_episodes} episodes), whose episode {rec.episode} "
                             f"is not a demonstration of {data.path}")
        if rec.start >= data.seq_len(rec.episode) or rec.actions.shape[1] != data.actions.shape[-1]:
            raise ValueError(f"{f}: start {rec.start} / action dim {rec.actions.shape[1]} do not fit episode "
                             f"{rec.episode} of {data.path}")
        plans.append(rec)
    plans.sort(key=lambda r: (r.episode, r.start))  # an episode's plans together: its model is loaded once
    env = RobosuiteEnv.from_meta(data.meta, render=True)
    out = []
    try:
        for rec in progress_bar(plans, desc="plan branches", unit="plan", disable=not progress):
            actions = np.clip(rec.actions, env.action_low, env.action_high)
            out.append((rec.episode, {**run_branch(env, data, rec.episode, rec.start, actions), "start": rec.start,
                                      "kind": "plan", "solved": rec.success}))
    finally:
        env.close()
    return out


def write_with_branches(data, branches: list[tuple[int, dict]], out_dir: Path, extra: dict) -> DatasetMeta:
    """The dataset directory ``out_dir`` = ``data``'s episodes followed by ``branches`` (written atomically;
    the demonstrations' videos and models are hard-linked when the filesystem allows, else copied); ``extra`` is
    merged into the meta's ``extra`` (what made the branches), and ``extra["derived_from"]`` names ``data``'s
    directory when ``out_dir`` is another one, so the feature cache reuses ``data``'s rows for its episodes."""
    meta, n = data.meta, len(data)
    lengths = [data.seq_len(i) for i in range(n)] + [len(b["actions"]) for _, b in branches]
    t_max = max(lengths)
    with atomic_directory(out_dir) as tmp:
        arrays = {}
        for key, fname in TENSOR_FILES.items():
            old = torch.load(data.path / fname, map_location="cpu", weights_only=True)
            if key == "seq_lengths":
                arrays[key] = torch.tensor(lengths, dtype=torch.int64)
                continue
            new = old.new_zeros(n + len(branches), t_max, *old.shape[2:])
            new[:n, :old.shape[1]] = old
            arrays[key] = new
        files = list(meta.model_files) or [""] * n
        for i in range(n):
            src, dst = video_path(data.path, i), video_path(tmp, i)
            if meta.lossless:
                src, dst = lossless_path(src), lossless_path(dst)
            _link(src, dst)
        for rel in sorted({f for f in files if f}):
            _link(data.path / rel, tmp / rel)
        for j, (_, b) in enumerate(branches):
            i, length = n + j, len(b["actions"])
            for key, name in (("states", "state"), ("proprios", "proprio"), ("velocities", "velocity"),
                              ("actions", "actions"), ("sim_states", "sim_states")):
                arrays[key][i, :length] = torch.as_tensor(b[name]).to(arrays[key].dtype)
            write_video(video_path(tmp, i), b["frames"], fps=meta.fps, lossless=meta.lossless, pix_fmt=PIX_FMT)
            files.append(save_model_xml(tmp, b["xml"]))
        for key, fname in TENSOR_FILES.items():
            torch.save(arrays[key], tmp / fname)
        new_meta = DatasetMeta.from_dict({**meta.to_dict(), "n_episodes": n + len(branches), "n_frames": int(sum(lengths)),
                                          "demo_keys": list(meta.demo_keys) + [
                                              f"{b.get('kind', 'explore')}_{meta.demo_keys[s]}_{k}"
                                              for k, (s, b) in enumerate(branches)],
                                          "model_files": files,
                                          "explore_sources": explore_sources(meta) + [s for s, _ in branches],
                                          "explore_starts": list(meta.explore_starts or [-1] * n)
                                          + [int(b["start"]) for _, b in branches]})
        new_meta.extra = {**meta.extra, **extra}
        if Path(out_dir).resolve() != data.path.resolve():  # its feature caches serve the new episodes' parents
            new_meta.extra["derived_from"] = str(data.path.resolve())
        new_meta.save(tmp)
    return new_meta


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        dst.write_bytes(src.read_bytes())


def add_exploration(data_dir: str | Path, out_dir: str | Path | None = None, settings: ExploreSettings = ExploreSettings(),
                    progress: bool = True) -> DatasetMeta:
    """Append exploration branches to the converted dataset ``data_dir`` (into ``out_dir``, default in place).

    Raises ValueError if the dataset already holds branches (they would be branched again)."""
    from datasets.robomimic_dset import RobomimicEpisodes

    data = RobomimicEpisodes(data_dir)
    if any(s >= 0 for s in explore_sources(data.meta)):
        raise ValueError(f"{data_dir} already holds exploration branches ({data.meta.extra.get('exploration')})")
    branches = explore(data, settings, progress) if settings.branches or settings.replays else []
    meta = write_with_branches(data, branches, Path(out_dir or data_dir), {"exploration": dataclasses.asdict(settings)})
    n_replays = sum(b["kind"] == "replay" for _, b in branches)
    log.info("%d exploration branches of %d env steps and %d noisy replays added to %s", len(branches) - n_replays,
             settings.chunks * settings.chunk_steps, n_replays, out_dir or data_dir)
    return meta


def add_plan_branches(data_dir: str | Path, plan_dirs: list[str | Path], out_dir: str | Path | None = None,
                      progress: bool = True) -> DatasetMeta:
    """Append the plan branches of every executed-actions file of ``plan_dirs`` to ``data_dir`` (into ``out_dir``,
    default in place). Raises ValueError (nothing written) when a dir holds none or a file does not fit."""
    from datasets.robomimic_dset import RobomimicEpisodes

    data = RobomimicEpisodes(data_dir)
    files = [f for d in plan_dirs for f in executed_actions.find(d)]
    branches = plan_branches(data, files, progress)
    earlier = list(data.meta.extra.get("plan_branches", []))
    meta = write_with_branches(data, branches, Path(out_dir or data_dir),
                               {"plan_branches": earlier + [{"plan_dir": str(d)} for d in plan_dirs]})
    solved = sum(b["solved"] for _, b in branches)
    log.info("%d plan branches (%d solved the task when planned) added to %s", len(branches), solved,
             out_dir or data_dir)
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", type=Path, help="a converted dataset directory (holds meta.json)")
    p.add_argument("--out", type=Path, default=None, help="write the result here (default: replace the dataset)")
    p.add_argument("--branches", type=int, default=2, help="branches per demonstration (default 2)")
    p.add_argument("--chunks", type=int, default=4, help="random action chunks per branch (default 4)")
    p.add_argument("--chunk-steps", type=int, default=5, help="env steps per chunk, the model's frameskip (default 5)")
    p.add_argument("--replays", type=int, default=REPLAYS,
                   help=f"noisy replays per demonstration: its actions from a frame in its first half, the arm offset "
                        f"by a constant drift and the gripper's timing shifted, so the model sees near misses "
                        f"(default {REPLAYS}; 0: none)")
    p.add_argument("--replay-drift", type=float, default=0.3,
                   help="std of the replays' constant arm offset per env step, in units of the data's action std "
                        "(default 0.3: about 4 in 10 replays of scripted Lift demos miss the cube)")
    p.add_argument("--replay-gripper-shift", type=int, default=5,
                   help="the replays' gripper commands shifted by up to this many env steps (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of start frames and actions (default 0)")
    p.add_argument("--from-plans", type=Path, nargs="+", default=None, metavar="PLAN_DIR",
                   help="instead of random branches: replay the actions that planning jobs executed (plan.py "
                        "outputs.actions=true, on this dataset's training episodes) and append them as plan branches; "
                        "the dataset may already hold branches")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.from_plans:
            meta, what = add_plan_branches(args.dataset, args.from_plans, args.out), "branches"
        else:
            settings = ExploreSettings(args.branches, args.chunks, args.chunk_steps, args.seed, args.replays,
                                       args.replay_drift, args.replay_gripper_shift)
            meta, what = add_exploration(args.dataset, args.out, settings), "exploration branches"
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{meta.n_episodes} episodes ({len([s for s in meta.explore_sources if s >= 0])} {what}) "
          f"in {args.out or args.dataset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
