#!/usr/bin/env bash
# Run a table's cells over seeds 0, 1, 2 and write results/<name>.{md,csv} (mean ± std).
#   bash experiments/seed_cells.sh <name> [extra overrides]
# experiments/<name>.cells holds one cell per line: `<label> <hydra overrides...>` (# comments);
# experiments/<name>.md, if present, is appended below the table (protocol, published figures).
# Each run's metrics.json, config.yaml and run_info.json are kept in results/<name>/<label>/seed<k>/.
# JOBS=n runs n cells at once (a machine with many cores or a GPU; on 2 cores keep 1).
# PYTHON=... skips the .venv bootstrap (a machine whose python already has the dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; shift
cells=experiments/$name.cells
[ -f "$cells" ] || { echo "seed_cells: no $cells" >&2; exit 1; }
if [ -z "${PYTHON:-}" ]; then bash scripts/bootstrap.sh; PYTHON=.venv/bin/python; fi
source scripts/env.sh
out=outputs/$name
mkdir -p "$out"
export PYTHON out extra="$*"
grep -vE '^\s*(#|$)' "$cells" | while read -r label overrides; do
  for seed in 0 1 2; do echo "$label $seed $overrides"; done
done | xargs -P "${JOBS:-1}" -L 1 bash -c 'label=$0 seed=$1; shift
  $PYTHON -m research.train "$@" seed=$seed $extra logger=csv callbacks.progress_bar.refresh_rate=1000 \
    hydra.run.dir=$out/$label/seed$seed > $out/$label.$seed.log 2>&1 || { tail -20 $out/$label.$seed.log; exit 1; }'
rm -rf "results/$name"
for run in "$out"/*/seed*; do
  dest=results/$name/${run#"$out"/}
  mkdir -p "$dest" && cp "$run"/{metrics.json,config.yaml,run_info.json} "$dest"/
done
note=experiments/$name.md; [ -f "$note" ] || note=
$PYTHON experiments/seed_table.py "results/$name" --out "results/$name" ${METRICS:+--metrics $METRICS} \
  ${note:+--note-file $note}
