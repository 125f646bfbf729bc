"""PNG plots of a planning evaluation: end-effector paths and success per episode."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from utils.atomic_files import atomic_path  # noqa: E402


def save_figure(fig, path: str | Path) -> None:
    """Save ``fig`` as png atomically and close it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)


def plot_eef_paths(path: str | Path, trace, goal_eef: np.ndarray, title: str) -> None:
    """Executed end-effector path vs the path each plan commanded (OSC position deltas), x-y and x-z views."""
    executed = np.stack(trace.eef)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, (i, j, lab) in zip(axes, [(0, 1, "y"), (0, 2, "z")]):
        for k, planned in enumerate(trace.planned_eef):
            ax.plot(planned[:, i], planned[:, j], "--", color="tab:orange", alpha=0.6,
                    label="planned (commanded)" if k == 0 else None)
        ax.plot(executed[:, i], executed[:, j], "-o", ms=2, color="tab:blue", label="executed")
        ax.plot(*executed[0, [i, j]], "s", color="black", label="start")
        ax.plot(goal_eef[i], goal_eef[j], "*", ms=12, color="tab:green", label="goal")
        ax.set_xlabel("x [m]"), ax.set_ylabel(f"{lab} [m]"), ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    save_figure(fig, path)


def plot_success(path: str | Path, records: list[dict], title: str) -> None:
    """Bars per episode: task success, goal reached, final object distance."""
    idx = [r["eval_index"] for r in records]
    fig, axes = plt.subplots(2, 1, figsize=(max(5, 0.5 * len(idx) + 2), 5), sharex=True)
    x = np.arange(len(idx))
    axes[0].bar(x - 0.2, [float(r["task_success"]) for r in records], 0.4, label="task success")
    axes[0].bar(x + 0.2, [float(r["goal_reached"]) for r in records], 0.4, label="goal reached")
    axes[0].set_ylim(0, 1.1), axes[0].legend(fontsize=7), axes[0].set_ylabel("success")
    axes[1].bar(x, [r["final_object_dist"] for r in records], color="tab:gray")
    axes[1].set_ylabel("final object dist [m]")
    axes[1].set_xticks(x, [f"{i}\nep{r['episode']}" for i, r in zip(idx, records)], fontsize=7)
    fig.suptitle(title)
    save_figure(fig, path)


def plot_horizon(path: str | Path, rows: list[dict], title: str, key: str = "goal_H") -> None:
    """Success rate (and mean final object distance) against ``key`` (goal_H by default)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax2 = ax.twinx()
    for i, planner in enumerate(sorted({r["planner"] for r in rows})):
        mine = sorted((r for r in rows if r["planner"] == planner), key=lambda r: r[key])
        h, color = [r[key] for r in mine], f"C{i}"
        rates = [np.nan if r["success_rate"] is None else r["success_rate"] for r in mine]  # None: start already done
        ax.plot(h, rates, "-o", color=color, label=f"{planner}: success rate")
        ax2.plot(h, [r["mean_final_object_dist"] for r in mine], "--s", color=color, alpha=0.5,
                 label=f"{planner}: final obj dist")
    ax.set_xlabel("goal_H (planning steps)" if key == "goal_H" else key), ax.set_ylabel("success rate")
    ax.set_ylim(-0.05, 1.05)
    ax2.set_ylabel("mean final object dist [m]")
    ax.grid(alpha=0.3)
    fig.legend(fontsize=7, loc="upper center", ncol=3, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(title)
    save_figure(fig, path)
