"""Training throughput of a sequence model (SASRec on Amazon Beauty unless told otherwise) in
the framework's own loop: Lightning's fit,
the datamodule's batches, the module's loss and optimiser step, nothing bypassed. One timed fit
per setting (batch size x precision x torch.compile x events resident on the device), no
validation; the first epoch is warm-up (compilation, allocator, autotuning) and is reported
apart. With --profile, two more short fits per setting say where a step spends its time: per
phase (the device synchronised between Lightning's hooks) and per operator (torch.profiler).

    python experiments/bench/train_throughput.py [--data amazon_beauty] [--data-root DIR] \
        [--model sasrec] [--device cuda|cpu] [--threads N] [--epochs 4] [--batch-sizes 256 1024 4096] \
        [--precisions 32-true bf16-mixed] [--compile false true] [--resident true] \
        [--profile] [--workdir DIR] [override ...]

Extra `key=value` arguments go to every setting's config (e.g. loss=sampled_softmax). Writes
<workdir>/report.md and <workdir>/summary.json; with --profile also one key-averages table
per setting: milliseconds per step in each phase (in the report) and the operators by self
time (<workdir>/profile_<setting>_ops.txt). `--data` and `--model` name options of conf/data
and conf/model (e.g. --data taobao --data-root DIR --model gru). Throughput is training windows
per second (a Beauty user is one window at max_len 50, so this is the "sequences per second"
of results/bench.md) over the epochs after the first, the GPU synchronised at each epoch's ends
only. Accuracy at a setting is a training run to convergence, not this script:
experiments/throughput_sasrec_beauty.yaml.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import lightning.pytorch as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from research.callbacks import EpochTimer  # noqa: E402
from research.markdown import table  # noqa: E402
from research.train import build_datamodule, build_module, provenance  # noqa: E402

BASELINE = 21_000  # SASRec on Beauty, sequences per second on one H100 before issue 16 (results/bench.md, 3)
PHASES = ("batch", "forward and loss", "backward", "optimiser")


def fit(cfg, device: str, epochs: int, callbacks: list, profiler=None) -> dict:
    """One fit of `epochs` training epochs at `cfg`, no validation, no checkpoint, no logger."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule.meta, datamodule.targets_per_batch)
    if cfg.compile:  # as research.train does
        module.model.compile()
    trainer = instantiate(cfg.trainer, accelerator=device, max_epochs=epochs, limit_val_batches=0, logger=False,
                          enable_checkpointing=False, enable_progress_bar=False, callbacks=callbacks,
                          profiler=profiler)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(module, datamodule=datamodule)
    return {"windows": len(datamodule.train_set), "targets": datamodule.train_set.num_targets(),
            "peak_device_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None}


def measure(cfg, device: str, epochs: int) -> dict:
    """Seconds per training epoch from the run's own EpochTimer (the GPU synchronised at each
    epoch's ends only), the median over the epochs after the first."""
    timer = EpochTimer()
    facts = fit(cfg, device, epochs, [timer])
    seconds = statistics.median(timer.train_seconds[1:])  # --epochs is at least 2 (checked)
    return {"first_epoch_s": timer.train_seconds[0], "epoch_s": seconds, "epoch_s_all": timer.train_seconds,
            "windows": facts["windows"], "windows_per_s": facts["windows"] / seconds,
            "targets_per_s": facts["targets"] / seconds, "peak_device_gib": facts["peak_device_gib"]}


class PhaseClock(L.Callback):
    """Per training step of the last epoch, the seconds between Lightning's hooks, the device
    synchronised at each: getting the batch (cut, moved), forward and loss, backward, and the
    optimiser's update. Synchronising removes the overlap of host and device that the
    unprofiled fit has, so the phases add up to more than its step: read them as shares."""

    def __init__(self, epoch: int):
        self.epoch, self.totals, self.steps = epoch, dict.fromkeys(PHASES, 0.0), 0
        self.last: float | None = None  # the previous hook's clock

    def _tick(self, trainer, phase: str | None) -> None:
        if trainer.current_epoch != self.epoch:
            return
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        if phase is not None and self.last is not None:
            self.totals[phase] += now - self.last
        self.last = now

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._tick(trainer, None)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._tick(trainer, "batch")

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self._tick(trainer, "forward and loss")

    def on_after_backward(self, trainer, pl_module) -> None:
        self._tick(trainer, "backward")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._tick(trainer, "optimiser")
        self.steps += trainer.current_epoch == self.epoch


class SyncCounter(L.Callback):
    """On a GPU, the device syncs the host waits for during one training epoch and where in the
    Python code each one is asked for (torch.cuda.set_sync_debug_mode: a warning per implicit
    sync: .item(), a boolean-mask index, a copy to the host; this file's own synchronize calls
    are explicit and not counted)."""

    def __init__(self, epoch: int):
        self.epoch, self.sources = epoch, {}

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            self.catch = warnings.catch_warnings(record=True)
            self.records = self.catch.__enter__()
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            torch.cuda.set_sync_debug_mode(0)
            self.catch.__exit__(None, None, None)
            for record in self.records:
                if "synchroniz" in str(record.message) and record.filename != __file__:
                    where = f"{Path(record.filename).name}:{record.lineno}"
                    self.sources[where] = self.sources.get(where, 0) + 1


def profile(cfg, device: str, workdir: Path, name: str) -> dict:
    """Where a step spends its time: per phase (PhaseClock, a fit of 2 epochs, the second
    measured), and per operator (torch.profiler through Lightning's PyTorchProfiler, 20 steps
    of a second fit after a first epoch of warm-up: the table by self time is written beside
    the report)."""
    from lightning.pytorch.profilers import PyTorchProfiler

    clock, syncs = PhaseClock(epoch=1), SyncCounter(epoch=1)
    fit(cfg, device, 2, [clock, *([syncs] if device == "cuda" else [])])
    steps = clock.steps  # per epoch
    activities = [torch.profiler.ProfilerActivity.CPU] + (
        [torch.profiler.ProfilerActivity.CUDA] if device == "cuda" else [])
    schedule = torch.profiler.schedule(wait=steps, warmup=2, active=max(1, min(20, steps - 2)))
    profiler = PyTorchProfiler(dirpath=str(workdir), filename=f"profile_{name}", export_to_chrome=False,
                               activities=activities, record_module_names=False, schedule=schedule)
    fit(cfg, device, 2, [], profiler)
    (workdir / f"profile_{name}_ops.txt").write_text(profiler.function_events.key_averages().table(
        sort_by="self_device_time_total" if device == "cuda" else "self_cpu_time_total", row_limit=30))
    phases = {phase: 1e3 * seconds / clock.steps for phase, seconds in clock.totals.items()}
    if device == "cuda":
        phases["syncs per step"] = sum(syncs.sources.values()) / steps
        phases["sync sources"] = dict(sorted(syncs.sources.items(), key=lambda kv: -kv[1]))
    return phases


def label(batch: int, precision: str, compiled: bool, resident: bool) -> str:
    return f"b{batch}-{precision}-{'compiled' if compiled else 'eager'}-{'resident' if resident else 'host'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="amazon_beauty", help="an option of conf/data")
    parser.add_argument("--data-root", help="default: the data option's own root")
    parser.add_argument("--model", default="sasrec", help="an option of conf/model")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=4, help="per setting; the first is warm-up")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    parser.add_argument("--compile", nargs="+", choices=["false", "true"], default=["false", "true"])
    parser.add_argument("--resident", nargs="+", choices=["false", "true"], default=["true"])
    parser.add_argument("--profile", action="store_true", help="also profile every setting")
    parser.add_argument("--workdir", default=str(REPO / "outputs/bench/train_throughput"))
    args, overrides = parser.parse_known_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first is warm-up)")
    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    rows = []
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        for batch in args.batch_sizes:
            for precision in args.precisions:
                for compiled in args.compile:
                    for resident in args.resident:
                        name = label(batch, precision, compiled == "true", resident == "true")
                        cfg = compose("train", overrides=[
                            f"data={args.data}", f"model={args.model}", "logger=csv",
                            *([f"data.root={args.data_root}"] if args.data_root else []),
                            f"datamodule.batch_size={batch}", f"trainer.precision={precision}", f"compile={compiled}",
                            f"datamodule.resident={resident}", f"paths.output_dir={workdir / name}", *overrides])
                        row = {"setting": name, "batch": batch, "precision": precision, "compile": compiled == "true",
                               "resident": resident == "true", **measure(cfg, args.device, args.epochs)}
                        if args.profile:
                            row["profile"] = profile(cfg, args.device, workdir, name)
                        rows.append(row)
                        print(json.dumps(row), flush=True)
                        if args.device == "cuda":
                            torch.cuda.empty_cache()

    device = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.processor() or 'cpu'}"
    summary = {"command": " ".join(["python", *sys.argv]), "data": args.data, "model": args.model,
               "device": device, "threads": args.threads,
               "epochs": args.epochs, "overrides": overrides, "rows": rows,
               "provenance": provenance("experiments/bench/train_throughput.py")}
    (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
    (workdir / "report.md").write_text(report(summary))
    print(report(summary))


def report(summary: dict) -> str:
    rows = summary["rows"]
    baseline = (summary["data"], summary["model"]) == ("amazon_beauty", "sasrec")
    lines = [f"# Training throughput, model={summary['model']} on data={summary['data']} ({summary['device']}, "
             f"{summary['threads']} thread(s))", "", f"    {summary['command']}", "",
             f"Epochs per setting: {summary['epochs']} (the first is warm-up, reported apart); overrides: "
             f"{' '.join(summary['overrides']) or 'none'}; commit {summary['provenance']['git_commit'][:7] or '?'}"
             f"{' (uncommitted changes)' if summary['provenance']['git_dirty'] else ''}.", "",
             *table(["setting", "first epoch s", "s / epoch", "windows / s", "targets / s",
                     *([f"x {BASELINE:,}"] if baseline else []), "peak device GiB"],
                    [[r["setting"], f"{r['first_epoch_s']:.2f}", f"{r['epoch_s']:.3f}", f"{r['windows_per_s']:,.0f}",
                      f"{r['targets_per_s']:,.0f}", *([f"{r['windows_per_s'] / BASELINE:.2f}"] if baseline else []),
                      "" if r["peak_device_gib"] is None else f"{r['peak_device_gib']:.2f}"] for r in rows])]
    profiled = [r for r in rows if r.get("profile")]
    if profiled:
        lines += ["", "## Where a step spends its time (ms per step, the device synchronised between phases)", "",
                  *table(["setting", *PHASES, "sum", "syncs / step"],
                         [[r["setting"], *(f"{r['profile'][p]:.2f}" for p in PHASES),
                           f"{sum(r['profile'][p] for p in PHASES):.2f}",
                           f"{r['profile']['syncs per step']:.1f}" if "syncs per step" in r["profile"] else "n/a"]
                          for r in profiled]),
                  "", "Synchronising removes the overlap of host and device, so the sum exceeds an unprofiled "
                  "step's time: compare shares. Operators by self time: profile_<setting>_ops.txt. "
                  "Syncs per step: the implicit device syncs of one epoch (GPU only), by the line asking for them "
                  "below."]
        for r in profiled:
            if r["profile"].get("sync sources"):
                lines.append(f"- {r['setting']}: " + ", ".join(
                    f"{where} ({count})" for where, count in r["profile"]["sync sources"].items()))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
