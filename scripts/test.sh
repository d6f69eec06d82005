#!/usr/bin/env bash
# The test command of README.md: set-up, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
source scripts/env.sh
exec .venv/bin/python -m pytest "$@"
