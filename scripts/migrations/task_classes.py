"""Carries table cells over the change that made each kind of task a class (the commit after
36e322a): `task._target_` names research.tasks.NextEvent or ClickThrough instead of a
`task.examples` switch, and the click-through settings moved from `datamodule.ctr_*` to the
task. Their config changes, so does the hash that names each cell's folder; the numbers do
not. For every cell under the given directories whose config still hashes to its folder name
under the old scheme and that no live process is training, this rewrites its config.yaml in the
new shape, renames the folder to the new hash (an unfinished cell then resumes there) and notes
the old name in run_info.json. Others are counted and left.

    python scripts/migrations/task_classes.py outputs/tables/runs results/table_runs
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

from omegaconf import OmegaConf

from research.table import cell_name


def digest(cfg) -> str:
    cfg = cfg.copy()
    OmegaConf.update(cfg, "trainer.default_root_dir", ".", force_add=True)  # ${paths.output_dir} when named
    return cell_name(cfg)


def migrated(cfg):
    cfg = OmegaConf.to_container(cfg)
    task, data = cfg["task"], cfg["datamodule"]
    examples = task.pop("examples")
    if examples == "ctr":
        cfg["task"] = {"_target_": "research.tasks.ClickThrough", "name": task["name"], "monitor": task["monitor"],
                       "mode": task["mode"], "negatives": data["ctr_negatives"], "eval_seed": data["ctr_eval_seed"]}
    else:
        task["_target_"] = "research.tasks.NextEvent"
    for key in ("examples", "ctr_negatives", "ctr_eval_seed"):
        data.pop(key)
    return OmegaConf.create(cfg)


def training(cell: Path) -> bool:
    """A table on this host holds the cell's claim (research.table.claim) and its process lives."""
    lock = cell / ".running"
    if not lock.is_file():
        return False
    host, _, pid = lock.read_text().partition(" ")
    return host == socket.gethostname() and pid.isdigit() and Path(f"/proc/{pid}").exists()


def main(directories: list[str]) -> None:
    moved, skipped = 0, {}
    for directory in map(Path, directories):
        for cell in sorted(p for p in directory.iterdir() if (p / "config.yaml").is_file()):
            cfg = OmegaConf.load(cell / "config.yaml")
            if "examples" not in cfg.task:
                skipped["already migrated"] = skipped.get("already migrated", 0) + 1
                continue
            if training(cell):  # a live process writes there: moving its folder would split the run
                skipped["being trained"] = skipped.get("being trained", 0) + 1
                continue
            if digest(cfg) != cell.name:
                skipped["an older hash scheme"] = skipped.get("an older hash scheme", 0) + 1
                continue
            new_cfg = migrated(cfg)
            target = cell.with_name(digest(new_cfg))
            if target.exists():
                sys.exit(f"error: {target} exists already; {cell} left as it was")
            OmegaConf.save(new_cfg, cell / "config.yaml")
            info = cell / "run_info.json"
            if info.is_file():
                note = json.loads(info.read_text()) | {"migrated_from": cell.name,
                                                       "migration": "scripts/migrations/task_classes.py"}
                info.write_text(json.dumps(note, indent=2) + "\n")
            cell.rename(target)
            moved += 1
    print(f"{moved} cells renamed; left: {skipped or 'none'}")


if __name__ == "__main__":
    main(sys.argv[1:])
