#!/usr/bin/env bash
# Plan with a trained world model (CEM + MPC in robosuite); extra arguments are Hydra overrides.
#
#   ./plan.sh                                   # newest run under outputs/, 10 evaluations, goal_H=5
#   GOAL_H=3 N_EVALS=4 CKPT=outputs/2026-01-01/12-00-00-demo_lift ./plan.sh planner=random
#   CONFIG=plan_robomimic_align_recon ./plan.sh planner.num_samples=100
#
# Env vars: GOAL_H (default 5), N_EVALS (default 10), CKPT (training run dir, relative to where you are;
# ckpt_base_path=RUN as an argument does the same; default: the newest run dir under outputs/ that holds
# checkpoints/), CONFIG (default plan), PYTHON (default: python). The GPU is chosen
# inside plan.py through gpu_utils (CPU if none).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GOAL_H="${GOAL_H:-5}"
N_EVALS="${N_EVALS:-10}"
CONFIG="${CONFIG:-plan}"
PYTHON="${PYTHON:-python}"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

ARGS=()
for arg in "$@"; do  # ckpt_base_path=RUN given as an override names the run as CKPT does
  if [[ "$arg" == ckpt_base_path=* ]]; then CKPT="${arg#ckpt_base_path=}"; else ARGS+=("$arg"); fi
done

if [[ -z "${CKPT:-}" ]]; then
  CKPT="$(find "$ROOT/outputs" -mindepth 1 -maxdepth 4 -type d -name checkpoints -printf '%T@ %h\n' 2>/dev/null \
          | sort -n | tail -1 | cut -d' ' -f2- || true)"
  if [[ -z "$CKPT" ]]; then
    echo "plan.sh: error: no training run under $ROOT/outputs; set CKPT=<run dir>" >&2
    exit 2
  fi
fi
if [[ ! -d "$CKPT" ]]; then
  echo "plan.sh: error: run dir CKPT=$CKPT does not exist" >&2
  exit 2
fi
if [[ ! -f "$CKPT/.hydra/config.yaml" ]]; then
  echo "plan.sh: error: $CKPT is not a training run dir (no .hydra/config.yaml)" >&2
  exit 2
fi

CKPT="$(cd "$CKPT" && pwd)"  # relative to where plan.sh was called from, not to the repository

export MUJOCO_GL="${MUJOCO_GL:-egl}"
cd "$ROOT"
exec "$PYTHON" plan.py --config-name="$CONFIG" "ckpt_base_path=$CKPT" "goal_H=$GOAL_H" "n_evals=$N_EVALS" \
  "${ARGS[@]+"${ARGS[@]}"}"
