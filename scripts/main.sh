#!/usr/bin/env bash
# The main job of README.md: set-up, then every model on the embedded simulator (next-category
# task), then the results table. Extra arguments are passed to every run as Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
source scripts/env.sh
out=outputs/main/$(date +%Y-%m-%d_%H-%M-%S)
.venv/bin/python -m research.train --multirun experiment=main hydra.sweep.dir="$out" "$@"
.venv/bin/python -m research.report "$out"
