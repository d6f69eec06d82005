#!/usr/bin/env bash
# The test command of README.md: set-up, the linter, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# The sweep-storage test starts a throw-away PostgreSQL server (unix socket only): install the
# server where it is missing and we may (root with apt-get, as on CI machines).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "test: installing postgresql" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >/tmp/apt-postgresql.log 2>&1 \
    || { tail -20 /tmp/apt-postgresql.log >&2; exit 1; }
fi
# One test process per core, one thread each (a process on both cores collapses when another is
# busy: ../shared/STACK.md), at most 4 (each holds torch and Lightning, and some start runs of
# their own); TEST_WORKERS=0 runs the suite in this process.
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc obeys both variables
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
source scripts/env.sh
.venv/bin/ruff check .  # lint (rules in pyproject.toml), before the suite
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-$(( cores < 4 ? cores : 4 ))}" "$@"
