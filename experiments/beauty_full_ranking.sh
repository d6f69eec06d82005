#!/usr/bin/env bash
# Foundation results on Amazon Beauty (S3-Rec files), full ranking over all 12,101 items,
# history masked, leave-one-out, default configs. Writes results/beauty_full_ranking/<model>/.
#   bash experiments/beauty_full_ranking.sh [model ...]     (default: sasrec gru)
# EXTRA="key=value ..." adds Hydra overrides to every run; PYTHON=... skips the .venv bootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then bash scripts/bootstrap.sh; PYTHON=.venv/bin/python; fi
source scripts/env.sh
for model in "${@:-sasrec gru}"; do
  for m in $model; do
    run=outputs/beauty_full_ranking/$m
    $PYTHON -m research.train data=amazon_beauty model="$m" task=next_item logger=csv \
      hydra.run.dir="$run" callbacks.progress_bar.refresh_rate=1000 ${EXTRA:-}
    mkdir -p results/beauty_full_ranking/"$m"
    cp "$run"/metrics.json "$run"/config.yaml "$run"/category_report.json "$run"/run_info.json results/beauty_full_ranking/"$m"/
  done
done
$PYTHON -m research.report results/beauty_full_ranking --metrics test/hit@10 test/ndcg@10 \
  test/hit@20 test/ndcg@20 test/stay/ndcg@10 test/shift/ndcg@10 test/category_acc@1 \
  > results/beauty_full_ranking/table.md
cat results/beauty_full_ranking/table.md
