#!/usr/bin/env bash
# The DIEN-protocol table on Amazon Beauty: BaseModel, DIN, GRU + attention and DIEN, 3 seeds
# each, task=ctr (one popularity-sampled never-seen negative per positive, leave-one-out by
# user). Writes results/dien_protocol_beauty.{md,csv} and keeps each run's files under
# results/dien_protocol_beauty/<model>/seed<k>/.
#   bash experiments/dien_protocol_beauty.sh [extra overrides]
# JOBS=n runs n cells at once (use it on a machine with many cores or a GPU; on 2 cores keep 1).
# PYTHON=... skips the .venv bootstrap (a machine whose python already has the dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then bash scripts/bootstrap.sh; PYTHON=.venv/bin/python; fi
source scripts/env.sh
export PYTHON
out=outputs/dien_protocol_beauty
mkdir -p "$out"
# CTR models over-fit Beauty within a few epochs (every item is seen ~16 times): stop early.
common="data=amazon_beauty task=ctr logger=csv trainer.max_epochs=10 callbacks.early_stopping.patience=2 \
callbacks.progress_bar.refresh_rate=1000 $*"
for m in base_model din gru_attention dien; do for s in 0 1 2; do echo "$m $s"; done; done |
  xargs -P "${JOBS:-1}" -L 1 bash -c '$PYTHON -m research.train model=$0 seed=$1 '"$common"' \
    hydra.run.dir='"$out"'/$0/seed$1 > '"$out"'.$0.$1.log 2>&1 || { tail -20 '"$out"'.$0.$1.log; exit 1; }'
for m in base_model din gru_attention dien; do for s in 0 1 2; do
  mkdir -p results/dien_protocol_beauty/$m/seed$s
  cp $out/$m/seed$s/{metrics.json,config.yaml,run_info.json} results/dien_protocol_beauty/$m/seed$s/
done; done
$PYTHON experiments/seed_table.py results/dien_protocol_beauty --out results/dien_protocol_beauty \
  --metrics test/auc test/gauc test/logloss val/auc time/epochs --note "$(cat experiments/dien_protocol_note.md)"
