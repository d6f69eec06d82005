#!/usr/bin/env bash
# The GPU checks of issues 12 and 16, as short prepared calls of the device tool (its machine has
# torch and Lightning but not the rest; scripts/device_kit.sh prepares wheels and data here first).
#   stage core  (carry .whl/core):  CUDA tests, training throughput fp32/bf16 at 3 batch sizes
#   stage bench (carry .whl/bench, same warm machine after core): ours against RecBole's SASRec
#                                   over a short budget, for the full-validation-pass ratio
# Usage there: bash experiments/gpu_checks.sh core|bench   (writes under $OUT, else outputs/gpu_checks)
# Each step has its own timeout so that one slow step leaves the others their time; a step's
# failure is logged and the next one runs. Locally (no GPU): PYTHON=.venv/bin/python DEVICE=cpu
# EPOCHS=2 BATCHES=256 bash experiments/gpu_checks.sh core   runs the same steps small.
set -uo pipefail
cd "$(dirname "$0")/.."
stage=${1:?usage: gpu_checks.sh core|bench}
out=${OUT:-outputs/gpu_checks}; mkdir -p "$out"
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
data=shared/datasets/amazon-beauty
[[ -f $data/Beauty.txt ]] || data=../shared/datasets/amazon-beauty
export PYTHONUNBUFFERED=1 WANDB_MODE=offline OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# the wheels carried in this call go to .site (ignored, so it stays on the warm machine for the next call)
if compgen -G ".whl/$stage/*.whl" >/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .site .whl/"$stage"/*.whl \
    || { echo "gpu_checks: installing .whl/$stage failed" >&2; exit 1; }
fi
[[ -d .site ]] && export PYTHONPATH=$PWD/.site:$PWD${PYTHONPATH:+:$PYTHONPATH}
step() {  # step NAME SECONDS command...: one timed step, its log under $out
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  echo "gpu_checks: $name rc=$rc $((SECONDS - t0)) s (limit $limit s)" | tee -a "$out/steps.txt"
  tail -n 25 "$out/$name.log"
}
{ nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"; "$py" -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available())"; } | tee "$out/machine.txt"
case $stage in
  core)
    step tests_cuda 120 "$py" -m pytest -q -p no:cacheprovider tests/data/test_sequences.py
    step throughput "${THROUGHPUT_LIMIT:-300}" "$py" experiments/bench/train_throughput.py --device "$device" \
      --data-root "$data" --epochs "${EPOCHS:-3}" --batch-sizes ${BATCHES:-256 1024 4096} \
      --precisions 32-true bf16-mixed --compile false --workdir "$out/throughput"
    ;;
  bench)
    step recbole_sasrec "${BENCH_LIMIT:-420}" "$py" experiments/bench/recbole_compare.py --data-root "$data" \
      --threads 1 --budget-seconds "${BUDGET:-90}" --workdir "$out/recbole_sasrec" \
      $([[ $device == cpu ]] && echo --device cpu)
    ;;
  *) echo "gpu_checks: unknown stage $stage (core|bench)" >&2; exit 2 ;;
esac
