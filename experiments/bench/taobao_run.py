"""A Taobao-sized run end to end, each stage its own process with its seconds and peak memory:
the framework preprocesses a UserBehavior-format log (taobao_log.py, the public file's
proportions), then trains GRU4Rec and SASRec with sampled softmax to early stopping and
evaluates each on the test split with full ranking over every item (research/ranking.py).

    python experiments/bench/taobao_run.py --rows 100000000 --device cuda [--models gru sasrec] \
        [--workdir outputs/bench/taobao_run] [--threads N] [-- our overrides ...]

Stages and where their figures come from:
- log: the simulator writes the CSV (input for the benchmark, not framework work); skipped when
  the file exists;
- preprocess: `research.data.cache.ensure_built` on conf/data/taobao.yaml (the builder a
  `data=taobao` run uses), alone in a process: wall seconds, peak resident memory (wait4);
- per model, one `python -m research.train data=taobao model=<m> loss=sampled_softmax` run: its
  resources.json gives each stage (data: reading the cache entry and making the split; fit:
  training to early stopping with a validation pass every epoch; evaluate: the best
  checkpoint's validation and test passes) with seconds, peak host memory and peak device
  memory; its metrics.json the scores.

Writes <workdir>/report.md and <workdir>/summary.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO)]
from taobao_log import log_path, write_log  # noqa: E402

# torch, Hydra and the framework are imported where used: this file is also the preprocess
# stage's process, whose peak memory is a figure of the benchmark

GIB = 1 << 30


def run_measured(command: list[str], log: Path, env: dict | None = None) -> dict:
    """Runs `command` with its output in `log`: wall seconds and the process's peak resident
    memory (since the process last reset its high-water mark, if it did)."""
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"{' '.join(command[:4])} ... failed with exit code {code}; the end of {log}:\n{tail}")
    return {"seconds": time.perf_counter() - start, "peak_host_gib": usage.ru_maxrss * 1024 / GIB}


def preprocess(root: str, cache_dir: str) -> None:
    """The child of the preprocess stage: the cache entry a `data=taobao` run reads."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from research.data.cache import ensure_built

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        cfg = compose("train", overrides=["data=taobao", f"data.root={root}", f"paths.cache_dir={cache_dir}"])
    print(ensure_built(instantiate(cfg.data.builder), cfg.paths.cache_dir, cfg.datamodule.min_user_events))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--models", nargs="+", default=["gru", "sasrec"])
    parser.add_argument("--workdir", type=Path, default=Path("outputs/bench/taobao_run"))
    parser.add_argument("--threads", type=int, help="torch threads of each training run (default: torch's)")
    parser.add_argument("--preprocess-child", nargs=2, metavar=("ROOT", "CACHE"), help=argparse.SUPPRESS)
    args, overrides = parser.parse_known_args()
    if args.preprocess_child:
        preprocess(*args.preprocess_child)
        return
    overrides = [o for o in overrides if o != "--"]
    workdir = args.workdir.resolve()
    log = log_path(workdir, args.rows)
    root, cache_dir = log.parent, workdir / "cache"
    root.mkdir(parents=True, exist_ok=True)
    stages: list[dict] = []
    if not log.exists():
        start = time.perf_counter()
        write_log(log, args.rows)
        stages.append({"stage": "log (simulator; input, not framework work)", "seconds": time.perf_counter() - start})
    size = log.stat().st_size / GIB

    # a fresh entry each time: the preprocess stage measures a build, never a cache hit
    for old in cache_dir.glob("taobao-*"):
        shutil.rmtree(old)
    figures = run_measured([sys.executable, __file__, "--preprocess-child", str(root), str(cache_dir)],
                           workdir / "preprocess.log")
    stages.append({"stage": "preprocess", **figures})
    entry = Path((workdir / "preprocess.log").read_text().strip().splitlines()[-1])
    meta = json.loads((entry / "meta.json").read_text())
    report = meta["report"] | {k: meta[f"num_{k}"] for k in ("users", "items", "categories")}

    env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}
    runs = {}
    for model in args.models:
        run_dir = workdir / f"run_{model}"
        command = [sys.executable, "-m", "research.train", "data=taobao", f"data.root={root}", f"model={model}",
                   "loss=sampled_softmax", "task=next_item", "logger=csv", f"trainer.accelerator={args.device}",
                   f"paths.cache_dir={cache_dir}", f"hydra.run.dir={run_dir}", "callbacks.progress_bar.refresh_rate=0",
                   *([f"threads={args.threads}"] if args.threads else []), *overrides]
        process = run_measured(command, workdir / f"run_{model}.log", env)
        resources = json.loads((run_dir / "resources.json").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
        data = json.loads((run_dir / "data_report.json").read_text())
        runs[model] = {"process": process, "resources": resources, "metrics": metrics, "data": data,
                       "command": " ".join(command[1:])}
        for name in ("data", "fit", "evaluate"):  # in the order they ran (the file's keys are sorted)
            stages.append({"stage": f"{model}: {name}", **resources["stages"][name]})
    write(workdir, args, overrides, stages, runs, report, size)


def process_peak(run: dict) -> float:
    """A training process's peak host memory: the largest of its stages'. (wait4's figure is the
    peak since the last stage reset the kernel's high-water mark, research/resources.py.)"""
    return max([run["process"]["peak_host_gib"],
                *(s["peak_host_gib"] or 0.0 for s in run["resources"]["stages"].values())])


def cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def write(workdir: Path, args, overrides: list[str], stages: list[dict], runs: dict, report: dict,
          size: float) -> None:
    import torch

    from research.markdown import table

    device = torch.cuda.get_device_name(0) if args.device == "cuda" else "no GPU used"
    lines = [f"# A Taobao-sized run: {args.rows:,} rows, {args.device}", "",
             f"Command: `python experiments/bench/taobao_run.py --rows {args.rows} --device {args.device}"
             f" --models {' '.join(args.models)}{f' --threads {args.threads}' if args.threads else ''}"
             f"{' -- ' + ' '.join(overrides) if overrides else ''}`", "",
             f"Log: {size:.2f} GiB of CSV; preprocessing kept {report['events']:,} events of "
             f"{report['raw_events']:,} rows ({report['users']:,} users, {report['items']:,} items, "
             f"{report['categories']:,} categories).", "",
             *table(["stage", "seconds", "peak host GiB", "peak device GiB"],
                    ([s["stage"], cell(s.get("seconds"), 1), cell(s.get("peak_host_gib"), 2),
                      cell(s.get("peak_device_gib"), 2)] for s in stages)), ""]
    for model, run in runs.items():
        m = run["metrics"]
        lines += [f"**{model}**: test hit@10 {m.get('test/hit@10', float('nan')):.4f}, ndcg@10 "
                  f"{m.get('test/ndcg@10', float('nan')):.4f} over {int(m.get('test/count', 0)):,} test targets "
                  f"ranked against every item; {int(m.get('time/epochs', 0))} epochs at "
                  f"{m.get('time/train_epoch_seconds', float('nan')):.1f} s, a validation pass "
                  f"{m.get('time/eval_pass_seconds', float('nan')):.1f} s; the whole process "
                  f"{run['process']['seconds']:.0f} s at {process_peak(run):.2f} GiB peak host memory.",
                  f"`python {run['command']}`", ""]
    lines.append(f"Machine: {device}; {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}); "
                 f"torch {torch.__version__}, Python {platform.python_version()}; {datetime.date.today()}.")
    (workdir / "report.md").write_text("\n".join(lines) + "\n")
    (workdir / "summary.json").write_text(json.dumps({"stages": stages, "runs": runs, "report": report}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
