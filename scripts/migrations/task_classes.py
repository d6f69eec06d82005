"""Carries table cells over the change that made each kind of task a class (the commit after
36e322a): `task._target_` names research.tasks.NextEvent or ClickThrough instead of a
`task.examples` switch, and the click-through settings moved from `datamodule.ctr_*` to the
task. Their config changes, so does the hash that names each cell's folder; the numbers do
not. Run before threads_volatile.py (scripts/migrations/cells.py says how cells are carried).

    python scripts/migrations/task_classes.py outputs/tables/runs results/table_runs
"""

from __future__ import annotations

import sys

from cells import migrate, name_with_threads
from omegaconf import OmegaConf


def migrated(cfg):
    cfg = OmegaConf.to_container(cfg)
    task, data = cfg["task"], cfg["datamodule"]
    if "examples" not in task:
        return None
    examples = task.pop("examples")
    if examples == "ctr":
        cfg["task"] = {"_target_": "research.tasks.ClickThrough", "name": task["name"], "monitor": task["monitor"],
                       "mode": task["mode"], "negatives": data["ctr_negatives"], "eval_seed": data["ctr_eval_seed"]}
    else:
        task["_target_"] = "research.tasks.NextEvent"
    for key in ("examples", "ctr_negatives", "ctr_eval_seed"):
        data.pop(key)
    return OmegaConf.create(cfg)


if __name__ == "__main__":
    migrate(sys.argv[1:], "scripts/migrations/task_classes.py", old_name=name_with_threads, new_config=migrated,
            new_name=name_with_threads)
