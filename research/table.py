"""Paper-style tables from one declarative file: runs the missing cells, then writes
results/<name>.md, .csv, .tex and a bar chart .png (mean ± std over seeds, best in bold,
second underlined).

    python -m research.table experiments/<name>.yaml [--jobs N] [--rows LABEL ...] [--seeds N ...]
        [--results results] [override ...]

A cell is (row, dataset, seed); its run directory is named by a hash of its resolved config
(output paths and loggers aside), so a finished run with an identical config is reused, by
this table or any other, and an interrupted table resumes with the cells it lacks. With
`--archive results/table_runs`, a cell archived there is reused too, so a fresh clone remakes a
table from its archive and trains only the cells it lacks. Each cell trains in its own process
(`python -m research.train`).

The file (see experiments/*.yaml):
    title: ...                      protocol: ... (printed under the table)
    seeds: [0, 1, 2]                common: [override, ...]     (every cell)
    datasets: {label: [override, ...]}                          (optional; default one, unnamed)
    rows: [{label: ..., overrides: [...]}, ...]
    metrics: [test/ndcg@10, ...]    lower_is_better: [test/category_logloss]   (optional)
    published: [{label: ..., dataset: ..., values: {metric: value}}]   (optional, never ranked)
    relative_to: {row: Oracle, metrics: [test/category_acc@1]}   (optional: adds, per seed,
                  <metric>_vs_<row> = the row's value / that row's value, e.g. the oracle ceiling)
    layout: long                    (optional: one row per dataset and model, and heatmaps)
    layout: curves                  (optional: per-window runs, each metric against the window,
                                     a line per row, a panel per dataset; rows with `ceiling: true`
                                     (the oracle) drawn dashed and never ranked)
    entry: research.windows         (optional: the entry point each cell runs; research.train)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from tqdm import tqdm

from research import CONF
from research.cli import one_line_errors, stop_on_sigterm
from research.config import check, computation
from research.errors import IncompatibleConfig
from research.io import atomic_path
from research.table_render import render

RUNS = Path("outputs/tables/runs")


@dataclass(frozen=True)
class Cell:
    row: str
    dataset: str
    seed: int
    overrides: tuple[str, ...]
    entry: str = "research.train"  # the module each cell runs: one of ENTRIES, the first by default

    @property
    def label(self) -> str:
        return f"{self.row} / {self.dataset or '-'} / seed {self.seed}"

    def run_dir(self) -> Path:
        try:
            with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
                cfg = compose("train", overrides=[*self.overrides, "paths.output_dir=."])
            check(cfg)
        except (HydraException, IncompatibleConfig) as err:  # before any cell trains
            message = " ".join(str(err).split())
            raise CellFailed(f"row {self.row!r}: {message}") from None
        return RUNS / cell_name(cfg)


SPEC_KEYS = {"title", "name", "seeds", "common", "datasets", "rows", "metrics", "lower_is_better", "published",
             "relative_to", "protocol", "layout", "entry"}
ENTRY_KEYS = {"rows": {"label", "overrides", "ceiling"}, "published": {"label", "dataset", "values"}}
ENTRIES = (Cell.entry, "research.windows")
LAYOUTS = ("wide", "long", "curves")


def cell_name(cfg) -> str:
    """The folder name of the run a config computes: a hash of `computation(cfg)`."""
    return digest(computation(cfg))


def digest(resolved: dict) -> str:
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_spec(path: Path) -> dict:
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SystemExit(f"error: {path}: not YAML ({' '.join(str(err).split())})") from None
    if not isinstance(spec, dict):
        raise SystemExit(f"error: {path}: a table spec is a mapping (title, rows, metrics, ...)")
    missing = [k for k in ("rows", "metrics") if k not in spec]
    if missing:
        raise SystemExit(f"error: {path}: missing {', '.join(missing)}")
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise SystemExit(f"error: {path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(SPEC_KEYS))})")
    for part, allowed in ENTRY_KEYS.items():
        for entry in spec.get(part) or []:
            extra = sorted(set(entry) - allowed)
            if extra:  # `{label: A, B}` in YAML's flow style is two keys: the comma ends the label
                raise SystemExit(f"error: {path}: {part} entry {entry.get('label')!r} has unknown key {extra[0]!r}"
                                 " (a label with a comma needs quotes)")
    if spec.setdefault("layout", "wide") not in LAYOUTS:
        raise SystemExit(f"error: {path}: layout {spec['layout']!r} is not one of {', '.join(LAYOUTS)}")
    if spec.setdefault("entry", Cell.entry) not in ENTRIES:
        raise SystemExit(f"error: {path}: entry {spec['entry']!r} is not one of {', '.join(ENTRIES)}")
    spec.setdefault("name", path.stem)
    spec.setdefault("seeds", [0, 1, 2])
    spec.setdefault("datasets", {"": []})
    if "relative_to" in spec:
        spec["metrics"] = [*spec["metrics"], *relative_names(spec["relative_to"]).values()]
    return spec


def select_rows(spec: dict, labels: list[str] | None) -> dict:
    """The spec with only the rows named (all when None): train and report part of a table
    (the written table says which rows, through its command line)."""
    if not labels:
        return spec
    known = [row["label"] for row in spec["rows"]]
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise SystemExit(f"error: --rows: no row {', '.join(map(repr, unknown))} (rows: {', '.join(known)})")
    return spec | {"rows": [row for row in spec["rows"] if row["label"] in labels]}


def select_seeds(spec: dict, seeds: list[int] | None) -> dict:
    """The spec with only these of its seeds (all when None): a long table's first seed, ahead
    of the others (the written table's command line says which)."""
    if not seeds:
        return spec
    unknown = [seed for seed in seeds if seed not in spec["seeds"]]
    if unknown:
        raise SystemExit(f"error: --seeds: no seed {', '.join(map(str, unknown))} in the spec "
                         f"(seeds: {', '.join(map(str, spec['seeds']))})")
    return spec | {"seeds": [seed for seed in spec["seeds"] if seed in seeds]}


def relative_names(relative: dict) -> dict[str, str]:
    suffix = relative["row"].lower().replace(" ", "_")
    return {m: f"{m}_vs_{suffix}" for m in relative["metrics"]}


def add_relative(spec: dict, results: dict[Cell, dict]) -> None:
    """Divide each cell's metrics by the reference row's cell of the same dataset and seed."""
    relative = spec.get("relative_to")
    if not relative:
        return
    reference = {(c.dataset, c.seed): m for c, m in results.items() if c.row == relative["row"]}
    if len(reference) != len({(c.dataset, c.seed) for c in results}):
        raise SystemExit(f"error: relative_to.row '{relative['row']}' is not a row with a cell for every dataset "
                         f"and seed")
    for cell, metrics in results.items():
        ref = reference[(cell.dataset, cell.seed)]
        for metric, name in relative_names(relative).items():
            if metric in metrics:
                metrics[name] = metrics[metric] / ref[metric]


def cells(spec: dict) -> list[Cell]:
    return [
        Cell(row["label"], dataset, seed, (*spec.get("common", []), *overrides, *row["overrides"], f"seed={seed}"),
             spec.get("entry", Cell.entry))
        for row in spec["rows"] for dataset, overrides in spec["datasets"].items() for seed in spec["seeds"]
    ]


def claim(run_dir: Path) -> bool:
    """True when this process may train the run; False when another live process is training
    it (two tables sharing a cell). A claim left by a dead process on this host is taken over."""
    lock = run_dir / ".running"
    owner = f"{socket.gethostname()} {os.getpid()}"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        host, _, pid = lock.read_text().partition(" ")
        if host == socket.gethostname() and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            lock.write_text(owner)
            return True
        return False
    os.write(fd, owner.encode())
    os.close(fd)
    return True


def cell_environment(jobs: int) -> dict[str, str]:
    """Cells trained side by side share the cores: each gets its share of threads (a process
    pinned to every core slows about sixteen-fold beside another). A `threads=` override still
    wins, and the thread count does not name the cell (research.config.VOLATILE)."""
    env = dict(os.environ)
    if jobs > 1:
        env["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // jobs))
    return env


class CellProcesses:
    """The cells' training processes running now. A table that is stopped (Ctrl-C, SIGTERM)
    ends them and starts no more: a cell left training would hold its folder while a rerun,
    seeing the table gone, trains the same cell into it (it resumes from last.ckpt instead)."""

    def __init__(self):
        self.lock, self.running, self.stopped = threading.Lock(), set(), False

    def start(self, command: list[str], **kwargs) -> subprocess.Popen:
        with self.lock:
            if self.stopped:
                raise CellFailed("the table was stopped")
            proc = subprocess.Popen(command, **kwargs)
            self.running.add(proc)
            return proc

    def forget(self, proc: subprocess.Popen) -> None:
        with self.lock:
            self.running.discard(proc)

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            for proc in self.running:
                proc.terminate()


CELLS = CellProcesses()


def run_cell(cell: Cell, run_dir: Path, jobs: int) -> Path:
    """Train the cell unless a finished run with the same config exists (or another table is
    training it: then wait for that one). Returns its folder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    while not (run_dir / "metrics.json").is_file() and not claim(run_dir):
        time.sleep(5)
    if (run_dir / "metrics.json").is_file():
        return run_dir
    # resume=true: a cell interrupted earlier (a killed table) continues from its last epoch
    command = [sys.executable, "-m", cell.entry, *cell.overrides, "logger=csv", "resume=true",
               "callbacks.progress_bar.refresh_rate=1000", f"hydra.run.dir={run_dir}"]
    with open(run_dir / "stdout.log", "a") as out:
        proc = CELLS.start(command, stdout=out, stderr=subprocess.STDOUT, env=cell_environment(jobs))
        try:
            proc.wait()
        finally:
            CELLS.forget(proc)
    (run_dir / ".running").unlink(missing_ok=True)
    if proc.returncode != 0:
        lines = (run_dir / "stdout.log").read_text(errors="replace").splitlines()
        why = next((line for line in reversed(lines) if line.startswith("error:")), f"see {run_dir}/stdout.log")
        raise CellFailed(f"cell {cell.label} failed: {why}")
    return run_dir


class CellFailed(RuntimeError):
    """A cell that cannot run or failed; main prints its one line."""


def finished_folder(cell: Cell, archive: Path | None) -> Path:
    """Where the cell's run lives: its run folder, or, when that holds no finished run (a fresh
    clone has no outputs/), its archived copy of an identical config, which is then reused."""
    run_dir = cell.run_dir()
    archived = archive / run_dir.name if archive else None
    if not (run_dir / "metrics.json").is_file() and archived and (archived / "metrics.json").is_file():
        return archived
    return run_dir


def run_all(todo: list[Cell], jobs: int, archive: Path | None = None, train: bool = True) -> dict[Cell, dict]:
    """Every cell's metrics, training the cells not finished yet; `train=False`: only the
    finished cells' (a table of what is done while the rest trains)."""
    directories = {cell: finished_folder(cell, archive) for cell in todo}
    fresh = sum(not (d / "metrics.json").is_file() for d in directories.values())
    from_archive = sum(d.parent == archive for d in directories.values())
    where = f" ({from_archive} from {archive})" if from_archive else ""
    left = "left out (--finished-only)" if not train else "to run"
    print(f"{len(todo)} cells, {len(todo) - fresh} reused{where}, {fresh} {left}", file=sys.stderr)
    if not train:
        todo = [cell for cell in todo if (directories[cell] / "metrics.json").is_file()]
        if not todo:
            raise CellFailed("--finished-only: no cell of this table has finished")
    done = {}
    interactive = sys.stderr.isatty()  # a bar in a terminal; in a log file, one line per cell
    with ThreadPoolExecutor(max_workers=jobs) as pool, \
            tqdm(total=len(todo), desc="cells", file=sys.stderr, disable=not interactive) as bar:
        futures = {pool.submit(run_cell, cell, directories[cell], jobs): cell for cell in todo}
        try:
            for future in as_completed(futures):
                cell, run_dir = futures[future], future.result()
                config = yaml.safe_load((run_dir / "config.yaml").read_text())
                done[cell] = json.loads((run_dir / "metrics.json").read_text()) | {
                    "mask_history": config["eval"]["mask_history"]}
                bar.update()
                if not interactive:
                    print(f"cell {len(done)}/{len(todo)} done: {cell.label} ({run_dir})", file=sys.stderr)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the pool's exit would wait for the running cells
            pool.shutdown(wait=False, cancel_futures=True)
            CELLS.stop()
            raise
    return {cell: done[cell] for cell in todo}  # in the spec's order, whatever finished first


def fewer_seeds(spec: dict, results: dict[Cell, dict]) -> dict[str, list[int]]:
    """Rows whose finished cells cover fewer seeds than the table's, with the seeds they have."""
    have = {row["label"]: sorted({c.seed for c in results if c.row == row["label"]}) for row in spec["rows"]}
    return {label: seeds for label, seeds in have.items() if len(seeds) < len(spec["seeds"])}


def summarise(spec: dict, results: dict[Cell, dict]) -> list[dict]:
    """One record per (row, dataset, metric): mean, sample std, number of seeds."""
    records = []
    for row in spec["rows"]:
        for dataset in spec["datasets"]:
            runs = [m for c, m in results.items() if c.row == row["label"] and c.dataset == dataset]
            for metric in reported(spec, runs):
                values = [r[metric] for r in runs if metric in r]
                if values:
                    std = statistics.stdev(values) if len(values) > 1 else float("nan")
                    records.append({"row": row["label"], "dataset": dataset, "metric": metric,
                                    "mean": statistics.fmean(values), "std": std, "n": len(values)})
    for p in spec.get("published", []):
        for metric, value in p["values"].items():
            records.append({"row": p["label"], "dataset": p.get("dataset", ""), "metric": metric, "mean": value,
                            "std": float("nan"), "n": 0})
    return records


def reported(spec: dict, runs: list[dict]) -> list[str]:
    """The spec's metrics, and under `layout: curves` each one's value in every window."""
    if spec.get("layout") != "curves":
        return spec["metrics"]
    windows = sorted({int(k.split("/")[1]) for run in runs for k in run if k.startswith("window/")})
    return [*spec["metrics"], *(f"window/{w}/{m}" for m in spec["metrics"] for w in windows)]


ARCHIVED = ("metrics.json", "windows.jsonl", "config.yaml", "run_info.json", "resources.json",
            "feature_importances.json", "tree_rules.txt")


def archive(todo: list[Cell], directory: Path) -> None:
    """The files that let a reader check a cell without its checkpoints and logs."""
    for cell in todo:
        run_dir = cell.run_dir()
        target = directory / run_dir.name
        if not (run_dir / "metrics.json").is_file():  # reused from the archive itself
            continue
        target.mkdir(parents=True, exist_ok=True)
        # each copy atomic, metrics.json last: a later table reuses an archived cell by its metrics
        for name in sorted(ARCHIVED, key=lambda name: name == "metrics.json"):
            if (run_dir / name).is_file():
                with atomic_path(target / name) as tmp:
                    shutil.copyfile(run_dir / name, tmp)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path)
    parser.add_argument("--jobs", type=int, default=1, help="cells trained at once, each on its share of the cores")
    parser.add_argument("--rows", nargs="+", metavar="LABEL", help="only these rows (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="only these of the spec's seeds")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--archive", type=Path,
                        help="copy each cell's small files (metrics, config, run info, tree importances/rules) "
                             "to ARCHIVE/<hash>/, e.g. results/table_runs; a cell archived there and absent "
                             "from outputs/ is reused, not retrained (leave --archive out to retrain it)")
    parser.add_argument("--finished-only", action="store_true",
                        help="train nothing: the table of the cells finished so far; the caption names "
                             "the rows that have fewer seeds than the table")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every cell (data.root=...)")
    return parser


def command_line(args: argparse.Namespace) -> str:
    """The command that made a table, written under it: quoted, so it reruns as written."""
    jobs = ["--jobs", str(args.jobs)] if args.jobs > 1 else []
    # the overrides before the options: `--rows A B` would take a following override for a label
    arguments = [str(args.spec), *args.overrides, *jobs, *(["--finished-only"] if args.finished_only else []),
                 *(["--rows", *args.rows] if args.rows else []),
                 *(["--seeds", *map(str, args.seeds)] if args.seeds else [])]
    return "python -m research.table " + shlex.join(arguments)


@one_line_errors
def main() -> None:
    stop_on_sigterm()
    args = parser().parse_intermixed_args()
    spec = select_seeds(select_rows(load_spec(args.spec), args.rows), args.seeds)
    spec["common"] = [*spec.get("common", []), *args.overrides]
    try:
        results = run_all(cells(spec), args.jobs, args.archive, train=not args.finished_only)
        spec["fewer_seeds"] = fewer_seeds(spec, results)
        add_relative(spec, results)
        records = summarise(spec, results)
        spec["mask_history"] = sorted({r["mask_history"] for r in results.values()})
        written = render(spec, records, args.results / spec["name"], command_line(args))
        if args.archive:
            archive(list(results), args.archive)
    except CellFailed as err:
        sys.exit(f"error: {err}")
    except KeyboardInterrupt:
        sys.exit("error: the table was stopped; finished cells are kept, and a rerun resumes the others")
    print("\n".join(map(str, written)))


if __name__ == "__main__":
    main()
