#!/usr/bin/env bash
# Creates .venv (once) and installs the project into it. Torch is installed first and only
# when none is importable: `pip install torch==2.13.0` takes the local CPU wheel here, and an
# unpinned torch resolved by a dependency would pull gigabytes of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.installed-$(cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    echo "bootstrap: installing torch==2.13.0" >&2
    .venv/bin/pip install -q torch==2.13.0 >.venv/pip-torch.log 2>&1 || { cat .venv/pip-torch.log >&2; exit 1; }
  fi
  # read from the package metadata: importing torch before numpy is installed prints a warning
  torch_version=$(.venv/bin/python -c "from importlib.metadata import version; print(version('torch').split('+')[0])")
  echo "bootstrap: installing the project (torch $torch_version kept)" >&2
  # Keep the installed torch as a constraint so nothing can replace it.
  grep -v '^torch==' constraints.txt > .venv/constraints.txt
  echo "torch==$torch_version" >> .venv/constraints.txt
  .venv/bin/pip install -q -c .venv/constraints.txt -e '.[test]' >.venv/pip.log 2>&1 || { cat .venv/pip.log >&2; exit 1; }
  rm -f .venv/.installed-*
  touch "$stamp"
fi
