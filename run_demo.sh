#!/usr/bin/env bash
# The whole job on the offline demo data, in one command:
#   set-up -> scripted Lift demos (+ exploration branches) -> convert -> feature cache -> train (+ learned
#   cost-to-go, action prior) -> plan on test episodes (cem, cem_prior, prior, random, hold, replay) -> summary
#
#   ./run_demo.sh                     with the pretrained DINOv2 ViT-S/14 (weights must be reachable)
#   ./run_demo.sh --random-encoder    with a random frozen encoder (no weights needed; labelled everywhere)
#
# A second run reuses the data, the feature cache, the finished training run and finished evaluations.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

PRETRAINED=true; N_EVALS="${N_EVALS:-4}"; GOAL_H="${GOAL_H:-5}"; FORCE_PLAN=0
OUT="${DEMO_OUT:-$ROOT/outputs/demo}"; PLAN_OUT="${DEMO_PLAN_OUT:-$ROOT/plan_outputs/demo}"
TRAIN_ARGS=(); PLAN_ARGS=()

usage() {
  cat <<'EOF'
Usage: ./run_demo.sh [--random-encoder] [--weights PATH] [--n-evals N] [--goal-h H] [--replan]
                     [--train-arg OVERRIDE]... [--plan-arg OVERRIDE]...

Runs the whole pipeline on offline demo data generated in robosuite (no network needed):
set-up, 24 scripted Lift demos, conversion, DINOv2 feature cache, training (CPU: a few minutes),
planning with the world model's CEM (cem) beside CEM seeded by the behaviour-cloned action prior (cem_prior),
the prior alone and the random, do-nothing (hold) and replay baselines, on the run's test episodes, and a
summary table.

  --random-encoder     use a random frozen DINOv2 ViT-S/14 (encoder.pretrained=false); every output
                       says so. Without it the official weights are needed (see README, "DINOv2 weights").
  --weights PATH       dinov2_vits14_pretrain.pth (official format) to use for the encoder
  --n-evals N          planning episodes per planner (default 4, env N_EVALS)
  --goal-h H           goal horizon in planning steps (default 5 = 25 env steps before the demo's end, env GOAL_H)
  --replan             rerun the planning evaluations even when they are finished
  --train-arg X        extra Hydra override for training (repeatable)
  --plan-arg X         extra Hydra override for planning (repeatable)
Outputs: outputs/demo/train (training run; outputs/demo/train_random_encoder with --random-encoder),
  plan_outputs/demo/<run>_<planner>_gH<H>/ for planner cem, cem_prior, prior, random, hold, replay,
  and plan_outputs/demo/demo_summary.{md,json} (the table printed at the end).
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --weights|--n-evals|--goal-h|--train-arg|--plan-arg)
      [[ $# -ge 2 ]] || { echo "run_demo.sh: $1 needs a value (see --help)" >&2; exit 2; } ;;&
    --random-encoder) PRETRAINED=false ;;
    --weights) TRAIN_ARGS+=("encoder.weights_path=$2"); shift ;;
    --n-evals) N_EVALS="$2"; shift ;;
    --goal-h) GOAL_H="$2"; shift ;;
    --replan) FORCE_PLAN=1 ;;
    --train-arg) TRAIN_ARGS+=("$2"); shift ;;
    --plan-arg) PLAN_ARGS+=("$2"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_demo.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# before the long steps: what plan.py and training would refuse only after set-up and training
for pair in "--n-evals:$N_EVALS" "--goal-h:$GOAL_H"; do
  [[ "${pair#*:}" =~ ^[1-9][0-9]*$ ]] || { echo "run_demo.sh: ${pair%%:*} must be a whole number >= 1, got '${pair#*:}' (see --help)" >&2; exit 2; }
done
if [[ "$PRETRAINED" == false ]] && printf '%s\n' "${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"}" | grep -q '^encoder.weights_path='; then
  echo "run_demo.sh: --random-encoder and --weights exclude each other: random weights, or that file's (see --help)" >&2
  exit 2
fi

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
T0=$(date +%s)

./setup_and_prepare.sh --demo
PY="$ROOT/.venv/bin/python"; [[ -n "${CONDA_PREFIX:-}" && "${CONDA_DEFAULT_ENV:-base}" != "base" ]] && PY="$CONDA_PREFIX/bin/python"
export WANDB_MODE="${WANDB_MODE:-offline}"
[[ -f "$PY" ]] || { echo "run_demo.sh: no python at $PY" >&2; exit 1; }
export MUJOCO_GL="${MUJOCO_GL:-egl}"
DATA="${DINO_WM_DATA_ROOT:-$ROOT/data}/demo/lift/dino_wm"

TRAIN_RUN="$OUT/train"
[[ "$PRETRAINED" == false ]] && TRAIN_RUN="$OUT/train_random_encoder"
say "training (feature cache first) -> $TRAIN_RUN"
# test_ratio 0.2: 5 of the 24 demos are test episodes, so the default 4 evaluations plan on 4 distinct ones
"$PY" train_robomimic_compress.py env=demo "env.data_path=$DATA" training.test_ratio=0.2 \
  "encoder.pretrained=$PRETRAINED" training.resume=true "hydra.run.dir=$TRAIN_RUN" "${TRAIN_ARGS[@]}" \
  || { echo "run_demo.sh: training failed (see the message above; with no DINOv2 weights reachable use --weights PATH or --random-encoder, README \"DINOv2 weights\")" >&2; exit 1; }

# cem: the world model alone (CEM's full budget: 300 samples x 30 iterations, ~2 s per re-plan on 2 CPU cores at
# 56 px); cem_prior: CEM seeded by the behaviour-cloned action prior; prior: the prior alone; random actions,
# doing nothing (hold) and the dataset's own actions (replay) are the baselines.
PLAN_DIRS=()
RESUME=true; [[ "$FORCE_PLAN" == 1 ]] && RESUME=false  # an unfinished job resumes; --replan starts its dir over
for planner in cem cem_prior prior random hold replay; do
  dir="$PLAN_OUT/$(basename "$TRAIN_RUN")_${planner}_gH${GOAL_H}"
  PLAN_DIRS+=("$dir")
  if [[ -f "$dir/summary.json" && "$FORCE_PLAN" == 0 ]]; then say "planning with $planner: already done ($dir)"; continue; fi
  say "planning with $planner -> $dir"
  "$PY" plan.py "ckpt_base_path=$TRAIN_RUN" "planner=$planner" \
    "n_evals=$N_EVALS" "goal_H=$GOAL_H" "hydra.run.dir=$dir" "resume=$RESUME" "${PLAN_ARGS[@]}" \
    || { echo "run_demo.sh: planning with $planner failed (see the message above)" >&2; exit 1; }
done

"$PY" -m planning.reporting.demo_summary --train-run "$TRAIN_RUN" --elapsed "$(( $(date +%s) - T0 ))" "${PLAN_DIRS[@]}"
