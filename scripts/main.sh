#!/usr/bin/env bash
# The main job of README.md: set-up, then every model family on the embedded simulator
# (next-category task) as one table: experiments/synthetic_next_category.yaml. It writes
# outputs/main/synthetic_next_category.{md,csv,tex,png}; each cell's run folder is
# outputs/tables/runs/<hash>, so a rerun (or an interrupted one) reuses every finished cell.
# Extra arguments are Hydra overrides for every cell.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
source scripts/env.sh
exec .venv/bin/python -m research.table experiments/synthetic_next_category.yaml --results outputs/main "$@"
