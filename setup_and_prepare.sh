#!/usr/bin/env bash
# Set up dino-wm-robomimic and prepare data. Idempotent: finished steps are skipped on a rerun.
#
#   ./setup_and_prepare.sh                       install only (.venv, CPU torch)
#   ./setup_and_prepare.sh --demo                + generate the offline Lift demo data and convert it
#   ./setup_and_prepare.sh --tasks can,lift --dataset-types ph   + download real robomimic data and convert it
#   ./setup_and_prepare.sh "ph,mh" "can,lift,square"              the same, positional (dataset types, then tasks)
#   ./setup_and_prepare.sh --test                + run the test suite (what CI runs)
#   ./setup_and_prepare.sh --cuda                install a CUDA build of torch instead of the CPU one
#
# Run with --help for every option.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

DEMO=0; RUN_TESTS=0; CUDA=0; DRY_RUN=0; TASKS=""; DTYPES="ph"; DEMO_EPISODES="${DEMO_EPISODES:-24}"; DEMO_TASK="${DEMO_TASK:-lift}"
DATA_ROOT="${DINO_WM_DATA_ROOT:-$ROOT/data}"; PYTEST_ARGS=(); POSITIONAL=(); TASKS_FLAG=0
KNOWN_DTYPES="ph mh mg"   # = datasets/download_robomimic.py DATASET_TYPES; the tasks: the registry (python -m tasks)
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"

usage() {
  cat <<'EOF'
Usage: ./setup_and_prepare.sh [options] [DATASET_TYPES [TASKS]]

Installs dino-wm-robomimic into .venv at the repository root (or into the active conda env), then
optionally prepares data. Every step is skipped when its result already exists.

Options:
  --demo                 generate the offline demo dataset (scripted Lift demos in robosuite, no
                         network) into data/demo/lift/ and convert it to data/demo/lift/dino_wm
  --demo-episodes N      successful demo episodes to generate (default 24)
  --demo-task TASK       scripted task for --demo (default lift): one with a scripted policy
                         (python -m tasks --scripted) -> data/demo/<task>/dino_wm
  --tasks LIST           robomimic tasks to download and convert, e.g. can,lift (needs network): registered
                         tasks with files on the hub (python -m tasks --on-hub)
  --dataset-types LIST   robomimic dataset types for --tasks (default ph; known: ph, mh, mg)
  DATASET_TYPES [TASKS]  the positional form of the two above (the older spelling), e.g.
                         ./setup_and_prepare.sh "ph,mh" "can,lift,square" (TASKS default: can)
  --dry-run              check the arguments, print what would be done, change nothing
  --cuda                 install the CUDA build of torch (default: CPU build)
  --test [-- ARGS]       run the test suite after set-up; ARGS after -- go to pytest
  -h, --help             this help

Environment: DINO_WM_DATA_ROOT (default ./data), TORCH_VERSION (default 2.13.0), MUJOCO_GL
(default: egl when libEGL is present, else osmesa), PYTHON (interpreter for the venv, default python3).
EOF
}

fail_args() { echo "setup_and_prepare.sh: $* (see --help)" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in  # an option that takes a value must have one (not the next option)
    --demo-episodes|--demo-task|--tasks|--dataset-types)
      [[ $# -ge 2 && "$2" != --* ]] || fail_args "$1 needs a value" ;;
  esac
  case "$1" in
    --demo) DEMO=1 ;;
    --demo-episodes) DEMO_EPISODES="$2"; shift ;;
    --demo-task) DEMO_TASK="$2"; shift ;;
    --tasks) TASKS="$2"; TASKS_FLAG=1; shift ;;
    --dataset-types) DTYPES="$2"; TASKS_FLAG=1; shift ;;
    --dry-run) DRY_RUN=1 ;;
    --cuda) CUDA=1 ;;
    --test) RUN_TESTS=1 ;;
    --) shift; PYTEST_ARGS=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "setup_and_prepare.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) POSITIONAL+=("$1") ;;
  esac
  shift
done

if (( ${#POSITIONAL[@]} > 0 )); then
  (( ${#POSITIONAL[@]} <= 2 )) || fail_args "at most two positional arguments (DATASET_TYPES, then TASKS, e.g. \"ph,mh\" \"can,lift,square\"), got ${#POSITIONAL[@]}"
  (( TASKS_FLAG == 0 )) || fail_args "give the dataset types and tasks either positionally or with --dataset-types/--tasks, not both"
  DTYPES="${POSITIONAL[0]}"; TASKS="${POSITIONAL[1]:-can}"
fi
# split_names WHAT LIST: lower-case LIST (Square -> square), comma-separated, into REPLY; stop when it names nothing
split_names() {
  local what="$1" list name out=()
  list="$(tr '[:upper:]' '[:lower:]' <<<"$2")"
  IFS=',' read -ra names <<<"$list"
  for name in "${names[@]}"; do [[ -n "$name" ]] && out+=("$name"); done
  (( ${#out[@]} > 0 )) || fail_args "no robomimic $what given"
  REPLY="$(IFS=','; echo "${out[*]}")"
}
# check_known WHAT LIST KNOWN: stop on a name of the comma-separated LIST that KNOWN (space-separated) lacks
check_known() {
  local what="$1" known="$3" name
  IFS=',' read -ra names <<<"$2"
  for name in "${names[@]}"; do
    [[ " $known " == *" $name "* ]] || fail_args "unknown robomimic $what '$name' (known: $(echo $known | sed 's/ /, /g'))"
  done
}
# registry [--scripted|--on-hub]: the registered task names (tasks/builtin.py, the one list of tasks) into REPLY,
# read with `python -m tasks` by the project's interpreter, or $PYTHON / python3 before there is one; false when
# none can read it yet (a fresh machine: the names are checked after the install)
registry() {
  local py
  for py in "$ROOT/.venv/bin/python" "${CONDA_PREFIX:+$CONDA_PREFIX/bin/python}" "${PYTHON:-python3}"; do
    [[ -n "$py" ]] && command -v "$py" >/dev/null 2>&1 || continue
    REPLY="$("$py" -m tasks "$@" 2>/dev/null | tr '\n' ' ')" && [[ -n "${REPLY// /}" ]] && return 0
  done
  return 1
}
# check_task_names: --tasks and --demo-task against the registry (false when it cannot be read yet)
TASKS_CHECKED=0
check_task_names() {
  registry --scripted || return 1
  [[ " $REPLY " == *" $DEMO_TASK "* ]] \
    || fail_args "--demo-task must be a task with a scripted policy ($(echo $REPLY | sed 's/ / or /g')), got '$DEMO_TASK'"
  if [[ -n "$TASKS" ]]; then registry --on-hub || return 1; check_known task "$TASKS" "$REPLY"; fi
  TASKS_CHECKED=1
}
if [[ -n "$TASKS" || "$TASKS_FLAG" == 1 ]]; then
  split_names task "$TASKS"; TASKS="$REPLY"
  split_names "dataset type" "$DTYPES"; DTYPES="$REPLY"; check_known "dataset type" "$DTYPES" "$KNOWN_DTYPES"
fi
[[ "$DEMO_EPISODES" =~ ^[1-9][0-9]*$ ]] || fail_args "--demo-episodes must be a whole number >= 1, got '$DEMO_EPISODES'"
check_task_names || true  # now where an interpreter reads the registry already, else after the install
if [[ "$DRY_RUN" == 1 ]]; then
  echo "install: $([[ -n "${CONDA_PREFIX:-}" && "${CONDA_DEFAULT_ENV:-base}" != "base" ]] && echo "conda env ${CONDA_DEFAULT_ENV}" || echo .venv), torch $TORCH_VERSION $([[ "$CUDA" == 1 ]] && echo CUDA || echo CPU) build"
  [[ "$DEMO" == 1 ]] && echo "demo: $DEMO_EPISODES scripted $DEMO_TASK episodes -> $DATA_ROOT/demo/$DEMO_TASK/dino_wm"
  if [[ -n "$TASKS" ]]; then
    IFS=',' read -ra task_list <<<"$TASKS"; IFS=',' read -ra type_list <<<"$DTYPES"
    for task in "${task_list[@]}"; do for dtype in "${type_list[@]}"; do
      echo "robomimic: download $task/$dtype -> $DATA_ROOT/robomimic/$task/$dtype/dino_wm"
    done; done
  fi
  [[ "$RUN_TESTS" == 1 ]] && echo "tests: pytest -q ${PYTEST_ARGS[*]}"
  [[ "$TASKS_CHECKED" == 1 ]] || echo "tasks: checked against the registry (python -m tasks) after the install"
  exit 0
fi

LOG_DIR="$ROOT/logs/setup"; mkdir -p "$LOG_DIR"
say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
# step NAME CMD...: run CMD with its output in logs/setup/NAME.log; on failure print one line and stop.
step() {
  local name="$1"; shift
  local log="$LOG_DIR/$name.log"
  if ! "$@" >"$log" 2>&1; then
    local reason; reason="$(grep -v '^\s*$' "$log" | tail -n 1)"
    echo "setup_and_prepare.sh: step '$name' failed: ${reason:-no output} (full log: $log)" >&2
    exit 1
  fi
}

# ---------------------------------------------------------------- python environment
if [[ -n "${CONDA_PREFIX:-}" && "${CONDA_DEFAULT_ENV:-base}" != "base" ]]; then
  PY="$CONDA_PREFIX/bin/python"; say "using the active conda env '$CONDA_DEFAULT_ENV'"
else
  if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv"
    step venv "${PYTHON:-python3}" -m venv .venv
  fi
  PY="$ROOT/.venv/bin/python"
fi
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "setup_and_prepare.sh: Python >= 3.10 is needed ($("$PY" --version))" >&2; exit 1; }

STAMP_DIR="$("$PY" -c 'import sys; print(sys.prefix)')"
STAMP="$STAMP_DIR/.dino_wm_installed"
EXTRAS="dev,local,slurm"
# constraints.txt: the exact versions the suite passed with (refresh: python tools/update_lock.py). It pins
# everything but torch, whose build (CPU or CUDA) is chosen here.
LOCK=(-c constraints.txt)
WANT="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)-cuda$CUDA-$EXTRAS"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  say "packages already installed (delete $STAMP to force)"
else
  if "$PY" -c 'import torch' >/dev/null 2>&1; then
    say "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed"
  elif [[ "$CUDA" == 1 ]]; then
    say "installing torch (CUDA build)"
    step torch "$PY" -m pip install "${LOCK[@]}" "torch==$TORCH_VERSION"
  else
    say "installing torch $TORCH_VERSION (CPU build)"
    # A local CPU wheel (pip find-links) first, alone: its requirements come with the project below, pinned
    # by the lock; otherwise PyTorch's CPU index.
    if ! "$PY" -m pip install --no-index --no-deps "torch==$TORCH_VERSION" >"$LOG_DIR/torch.log" 2>&1; then
      step torch "$PY" -m pip install "${LOCK[@]}" "torch==$TORCH_VERSION" \
        --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
    fi
  fi
  say "installing dino-wm-robomimic and its dependencies (versions from constraints.txt)"
  step install "$PY" -m pip install "${LOCK[@]}" -e ".[$EXTRAS]"
  echo "$WANT" >"$STAMP"
fi

if [[ "$TASKS_CHECKED" == 0 ]] && ! check_task_names; then
  echo "setup_and_prepare.sh: cannot read the task registry with $PY -m tasks after the install" >&2; exit 1
fi

# ---------------------------------------------------------------- headless rendering
if [[ -z "${MUJOCO_GL:-}" ]]; then
  if ldconfig -p 2>/dev/null | grep -q 'libEGL.so'; then MUJOCO_GL=egl
  elif ldconfig -p 2>/dev/null | grep -q 'libOSMesa'; then MUJOCO_GL=osmesa
  else MUJOCO_GL=egl; echo "note: neither libEGL nor libOSMesa found; install libegl1 or libosmesa6 for rendering" >&2
  fi
fi
export MUJOCO_GL
ACTIVATE="$STAMP_DIR/bin/activate"
if [[ -f "$ACTIVATE" ]] && ! grep -q 'MUJOCO_GL' "$ACTIVATE"; then
  printf '\n# added by setup_and_prepare.sh\nexport MUJOCO_GL="${MUJOCO_GL:-%s}"\n' "$MUJOCO_GL" >>"$ACTIVATE"
fi
say "MUJOCO_GL=$MUJOCO_GL"

# ---------------------------------------------------------------- data
convert_once() {  # convert_once IN OUT [extra args]: skipped when OUT/meta.json exists
  local in="$1" out="$2"; shift 2
  if [[ -f "$out/meta.json" ]]; then say "already converted: $out"; return; fi
  say "converting $in -> $out"
  "$PY" convert_robomimic_to_dino_wm.py --input "$in" --output "$out" "$@" \
    || { echo "setup_and_prepare.sh: converting $in failed (see the message above)" >&2; exit 1; }
}

if [[ "$DEMO" == 1 ]]; then
  demo_h5="$DATA_ROOT/demo/$DEMO_TASK/demo.hdf5"
  if [[ -f "$demo_h5" ]]; then
    say "demo data already generated: $demo_h5"
  else
    say "generating $DEMO_EPISODES scripted $DEMO_TASK demos in robosuite (a few minutes on 2 cores)"
    "$PY" -m envs.generate_demos --task "$DEMO_TASK" --n-episodes "$DEMO_EPISODES" --output "$demo_h5" \
      --cameras agentview,robot0_eye_in_hand --image-size 84 --seed 0 \
      || { echo "setup_and_prepare.sh: demo generation failed (see the message above)" >&2; exit 1; }
  fi
  convert_once "$demo_h5" "$DATA_ROOT/demo/$DEMO_TASK/dino_wm" --camera agentview robot0_eye_in_hand
fi

if [[ -n "$TASKS" ]]; then
  IFS=',' read -ra task_list <<<"$TASKS"; IFS=',' read -ra type_list <<<"$DTYPES"
  for task in "${task_list[@]}"; do
    for dtype in "${type_list[@]}"; do
      dir="$DATA_ROOT/robomimic/$task/$dtype"
      if [[ ! -f "$dir/demo_v15.hdf5" ]]; then
        say "downloading robomimic $task/$dtype"
        "$PY" -m datasets.download_robomimic --task "$task" --dataset-type "$dtype" --dest "$dir" \
          || { echo "setup_and_prepare.sh: download of $task/$dtype failed (see the message above)" >&2; exit 1; }
      fi
      convert_once "$dir/demo_v15.hdf5" "$dir/dino_wm" --camera agentview robot0_eye_in_hand --image-size 84
    done
  done
fi

# ---------------------------------------------------------------- tests
if [[ "$RUN_TESTS" == 1 ]]; then
  say "running the test suite"
  export WANDB_MODE="${WANDB_MODE:-disabled}"
  exec "$PY" -m pytest -q "${PYTEST_ARGS[@]}"
fi
say "done"
