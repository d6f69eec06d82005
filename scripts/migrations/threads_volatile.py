"""Carries table cells over the change that made `threads` an execution setting (the commit
after fb9443a): the thread count no longer names a cell, as the device never did, so a table run
with `--jobs 2` reuses the cells of one run with `threads=2`. Configs are unchanged; each
folder is renamed to the hash without the thread count (scripts/migrations/cells.py).

    python scripts/migrations/threads_volatile.py outputs/tables/runs results/table_runs
"""

from __future__ import annotations

import sys

from cells import migrate, name, name_with_threads

if __name__ == "__main__":
    migrate(sys.argv[1:], "scripts/migrations/threads_volatile.py", old_name=name_with_threads,
            new_config=lambda cfg: cfg, new_name=name)
