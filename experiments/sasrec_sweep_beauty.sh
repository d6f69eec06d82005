#!/usr/bin/env bash
# 20-trial Optuna sweep of SASRec on Amazon Beauty under a fixed budget of EPOCHS training epochs
# per trial (default 10), full-ranking validation ndcg@10 as the objective, median pruning.
# Trial 0 is the default config under the same budget: the "before" figure.
# Writes outputs/sweeps/<study>/ (resumable: rerun the same command after a crash) and copies the
# summary to results/sasrec_sweep_beauty/.
#   THREADS=1 bash experiments/sasrec_sweep_beauty.sh [extra overrides]
# PYTHON=... skips the .venv bootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then bash scripts/bootstrap.sh; PYTHON=.venv/bin/python; fi
source scripts/env.sh
epochs=${EPOCHS:-10}
study=sasrec_beauty_${epochs}ep
$PYTHON -m research.sweep hparams_search=sasrec_optuna data=amazon_beauty task=next_item \
  threads="${THREADS:-2}" trainer.max_epochs="$epochs" callbacks.progress_bar.refresh_rate=1000 \
  sweep.n_trials=20 sweep.study_name="$study" "$@"
out=results/sasrec_sweep_beauty
mkdir -p "$out"
cp outputs/sweeps/"$study"/{trials.csv,best.json,best_config.yaml} "$out"/
{ $PYTHON -m research.sweep_report outputs/sweeps/"$study"
  echo; echo "Command: \`THREADS=${THREADS:-2} bash experiments/sasrec_sweep_beauty.sh $*\`"; } > "$out"/README.md
cat "$out"/README.md
