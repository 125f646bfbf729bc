#!/usr/bin/env bash
# Every GPU figure of issue 10 in one run, then one table (budget: < 8 minutes on one H100 / H200).
#
#   bash benchmarks/gpu_check.sh                       # on the GPU machine, from the repository root
#   bash benchmarks/gpu_check.sh --device cpu --quick  # tiny sizes: checks that every step runs (CPU, ~2 min)
#
# Needs python3 with torch, numpy, transformers, accelerate, einops, safetensors, tqdm (no robosuite, no
# wandb, no ffmpeg); hydra-core, omegaconf, antlr4 come from wheels in .whl/ when that folder exists.
# A synthetic dataset (50 episodes x 150 frames, 84 px, numpy only) is generated in $WORK. Results
# (logs, one JSON per figure, gpu_check.md) go to $OUT/gpu_check (OUT unset: /tmp/gpu_check). A step that
# fails or times out is reported as such in the table; the others still run.
cd "$(dirname "$0")/.." || exit 2
set -u
DEVICE=cuda:0
QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (use --device DEV, --quick)" >&2; exit 2 ;;
  esac
done
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
PY=${PYTHON:-python3}
RES=${OUT:-/tmp}/gpu_check
WORK=${WORK:-/tmp/gpu_check_work}
mkdir -p "$RES" "$WORK"
export WANDB_MODE=disabled HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
BUDGET_S=${BUDGET_S:-450}  # seconds since the script started: no step runs past it (the run stays < 8 min)

if [ "$QUICK" = 1 ]; then  # tiny sizes: every step and the report run in a couple of minutes on a CPU
  DATA=(--episodes 4 --frames 30 --size 28); IMG=28; ENC=(encoder.num_layers=1); STEPS=(--steps 2 --warmup 1)
  BATCHES=(4); EPOCHS=1; EPOCHS_BIG=1; TIMEOUT=300
  PLAN=(--num-samples 16 --topk 4 --opt-steps 2); N_EVALS=(1 2); H_LONG=6
  TBACK=(training.compile_backend=eager)  # a compiled training run traces only: inductor on a CPU takes a minute
else
  DATA=(--episodes 50 --frames 150 --size 84); IMG=196; ENC=(); STEPS=(--steps 50 --warmup 10)
  BATCHES=(32 256); EPOCHS=6; EPOCHS_BIG=12; TIMEOUT=150
  PLAN=(); N_EVALS=(1 10); H_LONG=25; TBACK=()
fi
SYN=$WORK/syn_$QUICK
ENC_OV=(); for o in "${ENC[@]+"${ENC[@]}"}"; do ENC_OV+=(--override "$o"); done

step() {  # step NAME CMD...: run with a timeout, log to $RES/NAME.log, record the exit status
  local name=$1; shift
  local start=$SECONDS left=$((BUDGET_S - SECONDS))
  if [ "$left" -lt 20 ]; then
    echo "skipped (time budget)" > "$RES/$name.status"; echo "== $name: skipped (time budget)"; return
  fi
  echo "== $name: $*"
  timeout "$(( left < TIMEOUT ? left : TIMEOUT ))" "$@" > "$RES/$name.log" 2>&1
  local rc=$?
  echo "$rc" > "$RES/$name.status"
  tail -n 12 "$RES/$name.log"
  echo "== $name: exit $rc after $((SECONDS - start)) s (total $SECONDS s)"
}

step env "$PY" -c "import torch, platform; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'python', platform.python_version()); print('device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"
step data "$PY" benchmarks/synthetic_dataset.py --out "$SYN" "${DATA[@]}"
# the targets first, as users run them on CUDA: plan.py compile=auto (mode default, CEM's iterations replayed as
# one CUDA graph per re-plan), training.compile=auto (mode reduce-overhead); then the comparisons
PL=(benchmarks/plan_latency.py --device "$DEVICE" "${PLAN[@]+"${PLAN[@]}"}" "${ENC_OV[@]+"${ENC_OV[@]}"}")
FULL=(--override predictor=vit --override "img_size=$IMG")
step plan_full "$PY" "${PL[@]}" "${FULL[@]}" --n-evals "${N_EVALS[@]}" --json "$RES/plan_full.json"
train_run() {  # train_run NAME BATCH EPOCHS COMPILE
  rm -rf "$WORK/run_${QUICK}_$1"  # a rerun must train again, not resume a finished run
  step "$1" "$PY" train_robomimic_compress.py env=demo "env.data_path=$SYN" "img_size=$IMG" predictor=vit \
    training.mixed_precision=bf16 encoder.pretrained=false wandb.mode=disabled gpu.auto_select=false \
    "training.batch_size=$2" "training.epochs=$3" "training.compile=$4" training.val_every=1000 \
    training.save_every=1000 training.log_every=50 action_prior.train=false "hydra.run.dir=$WORK/run_${QUICK}_$1" \
    "${ENC[@]+"${ENC[@]}"}" "${TBACK[@]+"${TBACK[@]}"}"
}
train_run "train_bs${BATCHES[-1]}" "${BATCHES[-1]}" "$EPOCHS_BIG" auto
TIMEOUT=$((TIMEOUT + 90))  # three processes, two of which compile
step train_throughput "$PY" benchmarks/train_throughput.py --data "$SYN" --device "$DEVICE" --img-size "$IMG" \
  --batch-size 32 --random-encoder "${STEPS[@]}" "${ENC_OV[@]+"${ENC_OV[@]}"}" --profile 15 \
  --json "$RES/train_throughput.json"
TIMEOUT=$((TIMEOUT - 90))
step plan_long "$PY" "${PL[@]}" "${FULL[@]}" --horizon "$H_LONG" --n-evals "${N_EVALS[-1]}" --no-loop \
  --json "$RES/plan_long.json"
step plan_demo "$PY" "${PL[@]}" --n-evals "${N_EVALS[@]}" --json "$RES/plan_demo.json"
# the GPU-only tests: CEM's recorded iterations and reduce-overhead training steps against eager ones
step gpu_tests "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda_graph.py tests/test_cem.py \
  tests/test_trainer.py
# the comparisons, while time is left: what each change does on this card (CEM's CUDA graph; reduce-overhead
# training vs mode default; planning with the predictor's own graphs, with max-autotune epilogue fusion, eager)
step plan_full_nograph "$PY" "${PL[@]}" "${FULL[@]}" --no-cuda-graph --n-evals "${N_EVALS[@]}" --no-loop \
  --json "$RES/plan_full_nograph.json"
step train_profile_big "$PY" benchmarks/train_throughput.py --data "$SYN" --device "$DEVICE" --img-size "$IMG" \
  --batch-size "${BATCHES[-1]}" --mixed-precision bf16 --only-cache --random-encoder "${STEPS[@]}" \
  "${ENC_OV[@]+"${ENC_OV[@]}"}" --profile 25 --json "$RES/train_profile_big.json"
train_run "train_bs${BATCHES[-1]}_default" "${BATCHES[-1]}" "$EPOCHS_BIG" default
step plan_full_nocudnn "$PY" "${PL[@]}" "${FULL[@]}" --no-cudnn-attention --n-evals "${N_EVALS[@]}" --no-loop \
  --json "$RES/plan_full_nocudnn.json"
step plan_full_ro "$PY" "${PL[@]}" "${FULL[@]}" --compile reduce-overhead --n-evals "${N_EVALS[@]}" --no-loop \
  --json "$RES/plan_full_ro.json"
step plan_full_mac "$PY" "${PL[@]}" "${FULL[@]}" --compile max-autotune-no-cudagraphs --n-evals "${N_EVALS[@]}" \
  --no-loop --json "$RES/plan_full_mac.json"
step plan_full_eager "$PY" "${PL[@]}" "${FULL[@]}" --compile false --n-evals "${N_EVALS[@]}" --no-loop \
  --json "$RES/plan_full_eager.json"
if [ "${#BATCHES[@]}" -gt 1 ]; then train_run "train_bs${BATCHES[0]}" "${BATCHES[0]}" "$EPOCHS" auto; fi
step train_throughput_eager "$PY" benchmarks/train_throughput.py --data "$SYN" --device "$DEVICE" --img-size "$IMG" \
  --batch-size 32 --random-encoder "${STEPS[@]}" "${ENC_OV[@]+"${ENC_OV[@]}"}" --compile false \
  --json "$RES/train_throughput_eager.json"
step plan_hist3 "$PY" "${PL[@]}" "${FULL[@]}" --override num_hist=3 --override num_pred=1 \
  --n-evals "${N_EVALS[@]}" --no-loop --json "$RES/plan_hist3.json"
# last, only when time is left: the fallback when the cache does not fit (host gather, 4 workers, pinned memory)
step train_throughput_host "$PY" benchmarks/train_throughput.py --data "$SYN" --device "$DEVICE" --img-size "$IMG" \
  --batch-size 32 --random-encoder "${STEPS[@]}" "${ENC_OV[@]+"${ENC_OV[@]}"}" --cache-on-device false --num-workers 4 \
  --json "$RES/train_throughput_host.json"

echo
"$PY" benchmarks/gpu_check_report.py "$RES" --batches "${BATCHES[@]}" | tee "$RES/gpu_check.md"
echo "total $SECONDS s; results in $RES"
