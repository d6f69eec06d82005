"""Every table in results/ made by `research.table` still names its cells: the command written
under the table, composed today, gives cells whose archived runs (results/table_runs/<hash>) are
there, and the means of their metrics are the table's numbers (a sample: the first rows of each
table, every seed). A change that moves config keys (and so every hash) without carrying the
archive over fails here."""

import csv
import json
import re
import shlex
import statistics

import pytest

from research.table import cells, load_spec, parser, relative_names, select_rows, select_seeds
from tests.conftest import ROOT

RESULTS = ROOT / "results"
SAMPLE_ROWS = 2


def table_commands() -> list[tuple[str, list[str]]]:
    found = []
    for md in sorted(RESULTS.glob("*.md")):
        command = re.search(r"^Command: `python -m research\.table (.+)`$", md.read_text(), re.M)
        if command:
            found.append((md.stem, shlex.split(command.group(1))))
    return found


def test_there_are_tables_to_check():
    assert len(table_commands()) >= 4


@pytest.mark.parametrize(("name", "arguments"), table_commands(), ids=[n for n, _ in table_commands()])
def test_a_results_table_is_the_mean_of_its_archived_cells(name, arguments):
    args = parser().parse_intermixed_args(arguments)  # the table's own command line
    spec = select_seeds(select_rows(load_spec(ROOT / args.spec), args.rows), args.seeds)
    spec["rows"] = spec["rows"][:SAMPLE_ROWS]
    spec["common"] = [*spec.get("common", []), *args.overrides]
    values, missing = {}, []
    for cell in cells(spec):
        run = RESULTS / "table_runs" / cell.run_dir().name
        if not (run / "metrics.json").is_file():
            if not args.finished_only:  # a --finished-only table leaves out the cells not finished
                missing.append(f"{cell.row} seed {cell.seed}: {run.name}")
            continue
        for metric, value in json.loads((run / "metrics.json").read_text()).items():
            values.setdefault((cell.row, cell.dataset, metric), []).append(value)
    assert not missing, f"{name}: cells not in results/table_runs: {missing}"
    with (RESULTS / f"{name}.csv").open(newline="") as f:
        sampled = {row["label"] for row in spec["rows"]}
        derived = set(relative_names(spec["relative_to"]).values()) if "relative_to" in spec else set()
        ours = [r for r in csv.DictReader(f) if r["row"] in sampled and r["metric"] not in derived]
    assert ours
    for row in ours:
        archived = values[(row["row"], row["dataset"], row["metric"])]
        assert statistics.fmean(archived) == pytest.approx(float(row["mean"]), abs=1e-12), (name, row["row"])
