#!/usr/bin/env bash
# Seconds per training epoch and per full-ranking validation pass on Amazon Beauty, default
# configs, 3 epochs per model, threads as in scripts/env.sh. Run it alone on the machine:
# concurrent processes on 2 cores distort the figures (../shared/STACK.md).
#   bash experiments/beauty_speed.sh > results/beauty_speed.md
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
source scripts/env.sh
echo "| model | s / training epoch | s / full-ranking validation pass (22,363 users x 12,101 items) |"
echo "|---|---|---|"
mkdir -p outputs/beauty_speed
for m in sasrec gru; do
  run=outputs/beauty_speed/$m
  .venv/bin/python -m research.train data=amazon_beauty model="$m" logger=csv trainer.max_epochs=3 \
    hydra.run.dir="$run" callbacks.progress_bar.refresh_rate=1000 > "$run.log" 2>&1 || { cat "$run.log" >&2; exit 1; }
  .venv/bin/python -c "import json; m = json.load(open('$run/metrics.json')); \
print(f\"| $m | {m['time/train_epoch_seconds']:.1f} | {m['time/eval_pass_seconds']:.1f} |\")"
done
echo
echo "Machine: $(nproc --all) CPU cores, OMP_NUM_THREADS=$OMP_NUM_THREADS, torch $(.venv/bin/python -c 'import torch; print(torch.__version__)'), $(date -u +%Y-%m-%d)."
