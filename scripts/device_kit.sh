#!/usr/bin/env bash
# Prepares, on this machine, what the lent GPU machine lacks (it has torch, Lightning,
# torchmetrics, pandas, scipy, scikit-learn, matplotlib and pytest, and no network): wheels of
# the project's other dependencies and RecBole, and a copy of the Beauty files where the device
# tool carries them. Then experiments/gpu_checks.sh runs there. Usage, from the repo root:
#   bash scripts/device_kit.sh            # writes .whl/core, .whl/bench, shared/datasets/amazon-beauty
# Two wheel groups because one call carries at most 64 MiB with the working tree: .whl/core
# (polars alone is 54 MB) for the training and evaluation checks, .whl/bench for RecBole.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
pin() {  # the version constraints.txt pins, else the one installed here
  local v
  v=$(grep -i -m1 "^$1==" constraints.txt | cut -d= -f3 || true)
  [[ -n $v ]] || v=$("$py" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p')
  [[ -n $v ]] || { echo "device_kit: no version of $1 pinned or installed" >&2; exit 1; }
  echo "$1==$v"
}
# the device's python is 3.12 (../.library/device/KINDS.md); wheels for it, no dependencies
fetch() {
  local dir=$1; shift
  mkdir -p "$dir"
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dir" "$@" 2>&1 | grep -v "is ignored: it is neither" || true
}
rm -rf .whl && mkdir -p .whl
fetch .whl/core $(pin hydra-core) $(pin omegaconf) $(pin polars) $(pin polars-runtime-32)
"$py" -m pip wheel -q --no-deps -w .whl/core "$(pin antlr4-python3-runtime)"  # sdist only on PyPI: pure Python
fetch .whl/bench $(pin recbole) $(pin colorlog) $(pin texttable)
src=${DATA_ROOT:-../shared/datasets/amazon-beauty}
mkdir -p shared/datasets && rm -rf shared/datasets/amazon-beauty && cp -r "$src" shared/datasets/amazon-beauty
du -sh .whl/core .whl/bench shared
echo "device_kit: carry .whl/core (first call) or .whl/bench (a later call on the same machine); shared/ travels by itself"
