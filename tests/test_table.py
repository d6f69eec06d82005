"""research.table: cells over seeds, finished runs reused, an interrupted table resumes with
the missing cells only, and the outputs rank our rows (never the published ones)."""

import copy
import csv
import errno
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from research import table
from research.table_render import ranks, render
from tests.conftest import ROOT, stop_with_sigterm

SPEC = {
    "name": "toy", "title": "toy", "seeds": [0, 1],
    "common": ["task=next_item", "debug=fast", "data.builder.num_users=150", "data.builder.num_items=80"],
    "datasets": {"": []},
    "rows": [{"label": "Pop", "overrides": ["model=majority"]},
             {"label": "Last", "overrides": ["model=last_category"]}],
    "metrics": ["test/hit@10", "test/category_logloss"],
    "lower_is_better": ["test/category_logloss"],
    "published": [{"label": "Paper", "values": {"test/hit@10": 0.99}}],
}


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # run folders (outputs/tables/runs) and the data cache land here
    return tmp_path


@pytest.fixture(scope="module")
def toy_results(tmp_path_factory):
    """The toy table's four cells, trained once for the tests that only read their results."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("toy"))
        return table.run_all(table.cells(SPEC), jobs=2)


def test_a_table_runs_its_cells_once_and_resumes_the_missing_ones(in_tmp):
    todo = table.cells(SPEC)
    assert len(todo) == 4 and len({c.run_dir() for c in todo}) == 4
    first = table.run_all(todo, jobs=2)
    logs = sorted(in_tmp.glob("outputs/tables/runs/*/stdout.log"))
    assert len(logs) == 4
    shared = max(1, len(os.sched_getaffinity(0)) // 2)  # two cells at once: each on its share of the cores
    assert {json.loads((p.parent / "run_info.json").read_text())["threads"] for p in logs} == {shared}
    stamps = {p: p.stat().st_mtime_ns for p in logs}
    interrupted = todo[1].run_dir()
    (interrupted / "metrics.json").unlink()  # as if killed mid-run
    second = table.run_all(todo, jobs=1)
    changed = [p for p in logs if p.stat().st_mtime_ns != stamps[p]]
    assert changed == [in_tmp / interrupted / "stdout.log"]  # only the missing cell ran again
    def scores(results):
        return {c: {k: v for k, v in m.items() if not k.startswith("time/")} for c, m in results.items()}

    assert scores(second) == scores(first)  # deterministic cells, same numbers


def test_a_stopped_table_ends_the_cell_it_was_training_and_frees_its_folder(in_tmp):
    slow = {"label": "GRU", "overrides": ["model=gru", "trainer.max_epochs=100000", "trainer.limit_train_batches=1.0",
                                          "callbacks.early_stopping.patience=100000"]}
    spec = {k: v for k, v in SPEC.items() if k != "name"} | {"seeds": [0], "rows": [slow]}
    (in_tmp / "slow.yaml").write_text(yaml.safe_dump(spec))
    run_dir = table.cells(spec | {"name": "slow", "datasets": {"": []}})[0].run_dir()
    stop_with_sigterm([sys.executable, "-m", "research.table", "slow.yaml"], in_tmp,
                      started=lambda: (in_tmp / run_dir / "checkpoints" / "last.ckpt").is_file(),
                      marker=f"hydra.run.dir={run_dir}")
    assert not (in_tmp / run_dir / ".running").exists()  # a rerun claims the folder and resumes
    assert not (in_tmp / run_dir / "metrics.json").exists()


def test_finished_only_tables_the_finished_cells_trains_none_and_names_the_rows_short_of_seeds(in_tmp):
    spec = {k: v for k, v in SPEC.items() if k != "name"}
    (in_tmp / "toy.yaml").write_text(yaml.safe_dump(spec))
    table_command = [sys.executable, "-m", "research.table", "toy.yaml", "--results", "out"]
    subprocess.run([*table_command, "--seeds", "0", "--rows", "Pop"], cwd=in_tmp, check=True, capture_output=True)
    done = subprocess.run([*table_command, "--finished-only"], cwd=in_tmp, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4 cells, 1 reused, 3 left out" in done.stderr
    assert len(list(in_tmp.glob("outputs/tables/runs/*/metrics.json"))) == 1  # nothing else trained
    text = (in_tmp / "out" / "toy.md").read_text()
    assert "Fewer seeds (cells not finished yet): Pop: seed 0; Last: seed none." in text
    assert "--finished-only" in text  # the command written under it makes this table again
    with (in_tmp / "out" / "toy.csv").open() as f:
        pop = [r for r in csv.DictReader(f) if r["row"] == "Pop"]
    assert pop and {r["n"] for r in pop} == {"1"}


def test_a_fresh_clone_reuses_archived_cells_and_trains_only_the_ones_the_archive_lacks(in_tmp, monkeypatch, capfd):
    spec = in_tmp / "toy.yaml"
    spec.write_text(yaml.safe_dump(SPEC | {"seeds": [0]}))

    def make_table():
        monkeypatch.setattr(sys, "argv", ["research.table", str(spec), "--archive", "archive"])
        table.main()
        return (in_tmp / "results" / "toy.csv").read_text()

    first = make_table()
    log = capfd.readouterr().err  # not a terminal: one line per cell, no progress bar redrawn with \r
    assert "\r" not in log and len(re.findall(r"^cell \d/2 done: (Pop|Last) / - / seed 0 \(", log, re.M)) == 2
    archived = sorted(p.name for p in (in_tmp / "archive").iterdir())
    assert len(archived) == 2
    shutil.rmtree(in_tmp / "outputs")  # a fresh clone: results/ and the archive, no run folders
    (in_tmp / "archive" / archived[0] / "metrics.json").unlink()  # a cell the archive lacks
    second = make_table()
    ran = [p.parent.name for p in in_tmp.glob("outputs/tables/runs/*/metrics.json")]
    assert ran == [archived[0]]  # only the missing cell trained
    assert (in_tmp / "archive" / archived[0] / "metrics.json").is_file()  # and is archived again
    assert second == first


def test_a_full_disk_while_archiving_leaves_no_archived_cell_a_later_table_would_trust(in_tmp, monkeypatch):
    spec = in_tmp / "toy.yaml"
    spec.write_text(yaml.safe_dump(SPEC | {"seeds": [0], "rows": SPEC["rows"][:1]}))
    real = shutil.copyfile

    def full_disk_at_the_metrics(source, target):
        if "metrics.json" in Path(target).name:  # the last file of the cell: half of it, then ENOSPC
            Path(target).write_bytes(Path(source).read_bytes()[:10])
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real(source, target)

    monkeypatch.setattr(table.shutil, "copyfile", full_disk_at_the_metrics)
    monkeypatch.setattr(sys, "argv", ["research.table", str(spec), "--archive", "archive"])
    with pytest.raises(SystemExit, match=r"^error: .*metrics\.json.*: No space left on device$"):
        table.main()
    (cell,) = (in_tmp / "archive").iterdir()
    assert sorted(p.name for p in cell.iterdir()) == ["config.yaml", "resources.json", "run_info.json"]  # no metrics
    shutil.rmtree(in_tmp / "outputs")  # a fresh clone would train the cell again
    assert table.finished_folder(table.cells(yaml.safe_load(spec.read_text()))[0], Path("archive")).parts[0] \
        == "outputs"


def test_rows_select_part_of_a_table_and_name_the_known_ones():
    assert [r["label"] for r in table.select_rows(SPEC, ["Last"])["rows"]] == ["Last"]
    assert table.select_rows(SPEC, None) is SPEC
    with pytest.raises(SystemExit, match=r"^error: --rows: no row 'GRU' \(rows: Pop, Last\)$"):
        table.select_rows(SPEC, ["GRU"])


def test_the_command_written_under_a_table_parses_back_to_the_same_arguments():
    args = table.parser().parse_intermixed_args(["t.yaml", "--rows", "per target", "Pop", "--seeds", "0", "2",
                                                 "--jobs", "2", "data.root=/x y", "threads=1"])
    written = shlex.split(table.command_line(args).removeprefix("python -m research.table "))
    assert table.parser().parse_intermixed_args(written) == args


def test_seeds_select_part_of_a_tables_seeds_and_name_the_known_ones():
    spec = SPEC | {"seeds": [0, 1, 2]}
    assert {c.seed for c in table.cells(table.select_seeds(spec, [2, 0]))} == {0, 2}
    assert table.select_seeds(spec, None) is spec
    with pytest.raises(SystemExit, match=r"^error: --seeds: no seed 7 in the spec \(seeds: 0, 1, 2\)$"):
        table.select_seeds(spec, [7])


def test_outputs_rank_our_rows_and_state_the_protocol(tmp_path, toy_results):
    results = copy.deepcopy(toy_results)
    records = table.summarise(SPEC, results)
    spec = SPEC | {"mask_history": [True]}
    written = render(spec, records, tmp_path / "results" / "toy", "python -m research.table toy.yaml")
    assert [p.suffix for p in written] == [".md", ".csv", ".tex", ".png"] and all(p.stat().st_size for p in written)
    by = {(r["row"], r["metric"]): r for r in records}
    best_hit = max(("Pop", "Last"), key=lambda r: by[(r, "test/hit@10")]["mean"])
    md = written[0].read_text()
    assert f"| {best_hit} | **" in md
    timed = SPEC | {"metrics": ["time/epochs"]}
    assert not ranks(timed, [r | {"metric": "time/epochs"} for r in records])  # a cost is shown, not ranked
    assert "| Paper (published) | 0.9900 |" in md  # shown, above every row, never bold
    assert "history masking (`eval.mask_history`): True" in md
    assert r"\textbf{" in written[2].read_text() and r"\underline{" in written[2].read_text()
    with open(written[1]) as f:
        rows = list(csv.DictReader(f))
    assert {r["row"] for r in rows} == {"Pop", "Last", "Paper"} and all(r["n"] in ("2", "0") for r in rows)
    assert "Mean ± sample std over seeds 0, 1;" in md
    one_seed = table.select_seeds(spec, [0])
    single = render(one_seed, table.summarise(one_seed, {c: r for c, r in results.items() if c.seed == 0}),
                    tmp_path / "results" / "toy1", "python -m research.table toy.yaml --seeds 0")
    assert "One seed (0), no spread;" in single[0].read_text()  # not a mean and spread over one seed


def test_relative_columns_divide_by_the_reference_row_of_the_same_seed(toy_results):
    spec = SPEC | {"relative_to": {"row": "Pop", "metrics": ["test/hit@10"]}}
    spec["metrics"] = [*SPEC["metrics"], *table.relative_names(spec["relative_to"]).values()]
    results = copy.deepcopy(toy_results)  # the relative columns name no cell of their own
    assert set(results) == set(table.cells(spec))
    table.add_relative(spec, results)
    for cell, metrics in results.items():
        pop = next(m for c, m in results.items() if c.row == "Pop" and c.seed == cell.seed)
        assert metrics["test/hit@10_vs_pop"] == pytest.approx(metrics["test/hit@10"] / pop["test/hit@10"])
    records = table.summarise(spec, results)
    assert {r["mean"] for r in records if r["row"] == "Pop" and r["metric"] == "test/hit@10_vs_pop"} == {1.0}
    assert all(row != "Pop" for row, _, _ in ranks(spec, records))  # the reference is not ranked
    with pytest.raises(SystemExit, match="relative_to.row 'Nope'"):
        table.add_relative(spec | {"relative_to": {"row": "Nope", "metrics": ["test/hit@10"]}}, results)


def test_the_long_layout_puts_each_dataset_model_pair_on_a_row_and_draws_heatmaps(tmp_path):
    spec = {"name": "grid", "title": "grid", "seeds": [0], "layout": "long",
            "datasets": {"easy": [], "hard": []}, "rows": [{"label": "A"}, {"label": "B"}],
            "metrics": ["test/latency"], "lower_is_better": ["test/latency"], "mask_history": [True]}
    records = [{"row": r, "dataset": d, "metric": "test/latency", "mean": v, "std": float("nan"), "n": 1}
               for (r, d), v in {("A", "easy"): 1.0, ("B", "easy"): 2.0, ("A", "hard"): 5.0,
                                 ("B", "hard"): 3.0}.items()]
    md, _, tex, png = render(spec, records, tmp_path / "grid", "cmd")
    lines = md.read_text().splitlines()
    assert "| data | model | test/latency |" in lines
    assert "| easy | A | **1.0000** |" in lines and "| hard | B | **3.0000** |" in lines  # lower is better, per dataset
    assert "| hard | A | <u>5.0000</u> |" in lines
    assert r"\begin{tabular}{llr}" in tex.read_text()
    assert png.stat().st_size > 0


@pytest.mark.parametrize("path", sorted(ROOT.glob("experiments/*.yaml")), ids=lambda p: p.stem)
def test_every_table_spec_in_experiments_composes(path):
    """Every committed table can be rerun: each row of each dataset composes into a config
    (a renamed option or key fails here, not hours into a table)."""
    spec = table.load_spec(path)
    data = [o.removeprefix("data=") for o in spec.get("common", []) if o.startswith("data=")]
    if data and yaml.safe_load((ROOT / "conf" / "data" / f"{data[0]}.yaml").read_text()).get("root") == "???":
        spec["common"].append("data.root=/data")  # a file the user brings: named on the command line
    first_seed = [c for c in table.cells(spec) if c.seed == spec["seeds"][0]]
    for dataset in spec["datasets"]:  # distinct rows, distinct cells (a row may be the same for every dataset: Pop)
        rows = [c.run_dir() for c in first_seed if c.dataset == dataset]
        assert len(set(rows)) == len(rows) == len(spec["rows"])


@pytest.mark.parametrize(("text", "line"), [
    ("rows: [{label: two layers, raw weights, overrides: []}]\nmetrics: [val/auc]\n",
     "rows entry 'two layers' has unknown key 'raw weights' (a label with a comma needs quotes)"),
    ("rows: []\nmetrics: [val/auc]\nseed: [0]\n", "unknown key 'seed'"),
    ("rows: []\nmetrics: [val/auc]\nlayout: curve\n", "layout 'curve' is not one of wide, long, curves"),
    ("rows: []\nmetrics: [val/auc]\nentry: research.sweep\n",
     "entry 'research.sweep' is not one of research.train, research.windows"),
])
def test_a_spec_key_that_nothing_reads_is_refused(tmp_path, text, line):
    (tmp_path / "spec.yaml").write_text(text)
    with pytest.raises(SystemExit, match=re.escape(f"error: {tmp_path / 'spec.yaml'}: {line}")):
        table.load_spec(tmp_path / "spec.yaml")


@pytest.mark.parametrize(("row", "line"), [
    (["model=gru", "datamodule.max_len=0"], "error: row 'Bad': datamodule.max_len=0: must be an integer >= 1"),
    (["data=amazon_s3rec", "data.name=Nope", "data.root=/nonexistent"],
     "error: cell Bad / - / seed 0 failed: error: /nonexistent/Nope.txt: not found (data.root=/nonexistent, "
     "data.name=Nope)"),
])
def test_a_row_that_cannot_run_stops_the_table_in_one_line(tmp_path, row, line):
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump({"seeds": [0], "common": ["task=next_item", f"paths.cache_dir={tmp_path}"],
                                    "rows": [{"label": "Bad", "overrides": row}], "metrics": ["test/hit@10"]}))
    proc = subprocess.run([sys.executable, "-m", "research.table", str(spec), "--results", str(tmp_path / "out")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == line
    assert not (tmp_path / "out").exists()


def test_a_cell_is_the_same_cell_wherever_its_data_cache_lives(monkeypatch):
    cell = table.cells(SPEC)[0]
    monkeypatch.setenv("RESEARCH_CACHE_DIR", "/tmp/one-cache")
    here = cell.run_dir()
    monkeypatch.setenv("RESEARCH_CACHE_DIR", "/srv/another-cache")
    assert cell.run_dir() == here
    assert table.Cell(cell.row, cell.dataset, cell.seed, (*cell.overrides, "threads=1")).run_dir() == here
    changed = table.Cell(cell.row, cell.dataset, cell.seed, (*cell.overrides, "optimizer.lr=0.002"))
    assert changed.run_dir() != here  # what the run computes still names the cell


def test_a_windowed_table_runs_its_entry_and_draws_each_row_against_the_window(in_tmp):
    spec = {"name": "drift", "title": "drift", "seeds": [0], "entry": "research.windows", "layout": "curves",
            "common": ["data=synthetic_drift", "data.builder.num_users=150", "data.builder.num_items=80",
                       "data.builder.mean_events=20", "split=time_window", "split.windows=3", "task=next_category",
                       "trainer.max_epochs=1", "model=gru"],
            "datasets": {"": []},
            "rows": [{"label": "frozen", "overrides": ["update=frozen"]},
                     {"label": "retrain", "overrides": ["update=retrain"]},
                     {"label": "Oracle", "overrides": ["model=oracle", "update=frozen"], "ceiling": True}],
            "metrics": ["test/category_acc@1", "time/update_seconds"], "mask_history": [True],
            "relative_to": {"row": "retrain", "metrics": ["test/category_acc@1"]}}
    spec["metrics"] = [*spec["metrics"], *table.relative_names(spec["relative_to"]).values()]
    results = table.run_all(table.cells(spec), jobs=1)
    table.add_relative(spec, results)
    records = table.summarise(spec, results)
    by = {(r["row"], r["metric"]): r["mean"] for r in records}
    for row in ("frozen", "retrain", "Oracle"):  # every window of every row, and their mean
        per_window = [by[(row, f"window/{w}/test/category_acc@1")] for w in range(3)]
        assert by[(row, "test/category_acc@1")] == pytest.approx(sum(per_window) / 3)
    assert by[("Oracle", "time/update_seconds")] == 0 < by[("frozen", "time/update_seconds")]
    oracle = next(c for c in results if c.row == "Oracle").run_dir() / "windows.jsonl"
    assert [json.loads(line)["update_targets"] for line in oracle.read_text().splitlines()] == [0, 0, 0]
    assert not any(row == "Oracle" for row, _, _ in ranks(spec, records))  # a ceiling is not ranked
    md, _, _, png = render(spec, records, in_tmp / "results" / "drift", "cmd")
    assert "| Oracle | " in md.read_text() and png.stat().st_size > 0
    from matplotlib import image  # one panel per score with curves: the _vs_ ratios have none
    assert image.imread(png).shape[1] < 6 * 120  # 1 panel (4.2 + 1 inches at 120 dpi), not 2
