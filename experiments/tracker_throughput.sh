#!/usr/bin/env bash
# Events per second of research.track (InterestTracker updates only, not I/O) on the default
# simulator's 117,608 events in time order: GRU4Rec (recurrent state, O(1) per event) and SASRec
# (re-encodes a 50-event window per event), fed one event at a time and in batches of 1,024.
# Models are trained for 3 epochs (throughput does not depend on accuracy). Run it alone.
#   bash experiments/tracker_throughput.sh > results/tracker_throughput.md
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then bash scripts/bootstrap.sh; PYTHON=.venv/bin/python; fi
source scripts/env.sh
echo "| model | state per user | batch size | events replayed | events / s |"
echo "|---|---|---|---|---|"
for m in gru sasrec; do
  run=outputs/tracker_throughput/$m
  mkdir -p outputs/tracker_throughput
  [ -f "$run/metrics.json" ] || $PYTHON -m research.train model="$m" task=next_category logger=csv \
    trainer.max_epochs=3 hydra.run.dir="$run" callbacks.progress_bar.refresh_rate=1000 > "$run.log" 2>&1 \
    || { cat "$run.log" >&2; exit 1; }
  for batch in 1 1024; do
    limit=$([ "$batch" = 1 ] && echo 5000 || echo 0)
    $PYTHON -m research.track "$run" --batch-size "$batch" $([ "$limit" != 0 ] && echo --limit "$limit") \
      --out "$run/states_b$batch.parquet" 2>/dev/null | tail -1 | $PYTHON -c "
import json, sys; s = json.loads(sys.stdin.read())
state = 'hidden state (O(1))' if s['recurrent_state'] else 'window of 50 events'
print(f\"| $m | {state} | {s['batch_size']} | {s['events']:,} | {s['events_per_second']:,} |\")"
  done
done
echo
echo "Machine: $(nproc --all) CPU cores, OMP_NUM_THREADS=$OMP_NUM_THREADS, torch $($PYTHON -c 'import torch; print(torch.__version__)'), $(date -u +%Y-%m-%d)."
echo "Command: \`bash experiments/tracker_throughput.sh\`"
