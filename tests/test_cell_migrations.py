"""scripts/migrations: a cell named under an earlier hash scheme is renamed to today's name and
keeps its earlier names; a live table's cell and a cell of an unknown scheme are left alone."""

import json
import os
import subprocess
import sys

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from research import CONF
from research.table import cell_name
from tests.conftest import ROOT

MIGRATIONS = ROOT / "scripts" / "migrations"
sys.path.insert(0, str(MIGRATIONS))
from cells import name_with_threads  # noqa: E402


def saved_cell(runs, threads, **run_info):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["model=gru", f"threads={threads}", "paths.output_dir=."])
    cell = runs / name_with_threads(cfg)
    cell.mkdir(parents=True)
    OmegaConf.save(cfg, cell / "config.yaml")
    (cell / "run_info.json").write_text(json.dumps(run_info))
    return cell, cfg


def migrate(*directories):
    return subprocess.run([sys.executable, str(MIGRATIONS / "threads_volatile.py"), *map(str, directories)],
                          capture_output=True, text=True, timeout=120, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}).stderr.strip()


def test_a_cell_named_with_its_thread_count_takes_todays_name_once(tmp_path):
    runs, archive = tmp_path / "runs", tmp_path / "archive"
    cell, cfg = saved_cell(runs, 1, migrated_from="0123456789abcdef")
    twin, _ = saved_cell(runs, 2)  # the same computation on two threads
    archived, _ = saved_cell(archive, 1)
    (runs / "ffffffffffffffff").mkdir()
    OmegaConf.save(cfg, runs / "ffffffffffffffff" / "config.yaml")  # a name no scheme gives

    assert migrate(runs, archive) == ("2 cells renamed; left: {'the same computation as a cell already there': 1, "
                                      "'an older hash scheme': 1}")
    today = cell_name(cfg)
    assert not cell.exists() and twin.exists() and (runs / today).is_dir()  # the archived twin kept the name
    assert json.loads((runs / today / "run_info.json").read_text())["migrated_from"] == ["0123456789abcdef",
                                                                                         cell.name]
    assert (archive / today).is_dir() and not archived.exists()
    assert migrate(runs, archive).startswith("0 cells renamed")  # once
