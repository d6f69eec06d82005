"""What every migration of table cells shares: find the cells of the scheme it carries over,
leave the ones a live table trains, rewrite the config, rename the folder to its new hash and
note each earlier name in run_info.json (`migrated_from`, oldest first). Migrations run in the
order of their commits; a cell of an older scheme is counted and left."""

from __future__ import annotations

import json
import socket
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from research.config import computation
from research.table import cell_name, digest


def as_named(cfg: DictConfig) -> DictConfig:
    """A saved config as it was when its cell was named: the run folder read as "."."""
    cfg = cfg.copy()
    OmegaConf.update(cfg, "trainer.default_root_dir", ".", force_add=True)  # ${paths.output_dir} when named
    return cfg


def name(cfg: DictConfig) -> str:
    """A cell's folder name today (research.table.cell_name)."""
    return cell_name(as_named(cfg))


def name_with_threads(cfg: DictConfig) -> str:
    """A cell's folder name before `threads` became an execution setting (the commit after
    fb9443a): the thread count was part of the hash."""
    return digest(computation(as_named(cfg)) | {"threads": cfg.get("threads")})


def training(cell: Path) -> bool:
    """A table on this host holds the cell's claim (research.table.claim) and its process lives."""
    lock = cell / ".running"
    if not lock.is_file():
        return False
    host, _, pid = lock.read_text().partition(" ")
    return host == socket.gethostname() and pid.isdigit() and Path(f"/proc/{pid}").exists()


def migrate(directories: list[str], script: str, *, old_name: Callable[[DictConfig], str],
            new_config: Callable[[DictConfig], DictConfig | None], new_name: Callable[[DictConfig], str]) -> None:
    """`new_config` returns None for a cell already in the new shape."""
    moved, left = 0, Counter()
    directories = [Path(d) for d in directories]
    for directory in directories:
        # two cells of one computation: the one also found in another directory (the archive) keeps the name
        elsewhere = {p.name for d in directories if d != directory for p in d.iterdir()}
        cells = [p for p in directory.iterdir() if (p / "config.yaml").is_file()]
        for cell in sorted(cells, key=lambda p: (p.name not in elsewhere, p.name)):
            cfg = OmegaConf.load(cell / "config.yaml")
            new_cfg = new_config(cfg)
            if new_cfg is None or new_name(new_cfg) == cell.name:
                left["already migrated"] += 1
                continue
            if training(cell):  # a live process writes there: moving its folder would split the run
                left["being trained"] += 1
                continue
            if old_name(cfg) != cell.name:
                left["an older hash scheme"] += 1
                continue
            target = cell.with_name(new_name(new_cfg))
            if target.exists():  # the same computation run twice (say with two thread counts): keep both apart
                left["the same computation as a cell already there"] += 1
                continue
            OmegaConf.save(new_cfg, cell / "config.yaml")
            info = cell / "run_info.json"
            if info.is_file():
                note = json.loads(info.read_text())
                earlier = note.get("migrated_from", [])
                note["migrated_from"] = [*([earlier] if isinstance(earlier, str) else earlier), cell.name]
                note["migration"] = script
                info.write_text(json.dumps(note, indent=2) + "\n")
            cell.rename(target)
            moved += 1
    print(f"{moved} cells renamed; left: {dict(left) or 'none'}", file=sys.stderr)
