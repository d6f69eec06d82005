"""Drifting data, window by window (split=time_window): a model is updated before each window
under an update strategy (research/updates.py, conf/update/) and evaluated on the window.

    python -m research.windows data=synthetic_drift split=time_window model=gru update=finetune

Writes into its run folder `windows.jsonl` (one line per window: its metrics, the seconds,
epochs and training targets of its update, and its split counts: cold users, unseen items), and
`metrics.json`: every metric averaged over the windows under its own name, per window as
`window/<i>/<metric>`, the update seconds, epochs and the target counts summed, so
`research.table` reads a windowed run as a cell. No logger runs here: the two files are the record.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import hydra
import lightning.pytorch as L
import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import ProgressBar
from omegaconf import DictConfig, OmegaConf

from research.callbacks import AtomicCheckpointIO, EpochTimer
from research.config import precheck
from research.data.splits import TimeWindows
from research.errors import IncompatibleConfig
from research.io import write_json, write_text
from research.models import FittedOnData
from research.module import RecModule
from research.train import build_datamodule, build_module, guarded, machine, provenance, start
from research.updates import Update

log = logging.getLogger(__name__)


def fit(cfg: DictConfig, module: RecModule, datamodule, out: Path, max_epochs: int | None) -> tuple[float, int, int]:
    """Train `module` on the datamodule's current split (early stopping on its validation
    targets, within `max_epochs` when given) and keep its best epoch: (seconds, epochs, the
    training targets it learnt from)."""
    t0 = time.perf_counter()
    if isinstance(module.model, FittedOnData):  # fitted outside gradient descent (tree models)
        module.model.fit_data(datamodule.fit_data())
        return time.perf_counter() - t0, 0, datamodule.train_set.num_targets()
    if not module.trainable:  # the oracle, the rule baselines: nothing to learn
        return 0.0, 0, 0
    window_cfg = cfg.copy()
    OmegaConf.update(window_cfg, "paths.output_dir", str(out))  # this update's checkpoints
    interactive = sys.stdout.isatty()
    callbacks = [c for c in (instantiate(c) for c in window_cfg.callbacks.values())
                 if interactive or not isinstance(c, ProgressBar)]
    timer = EpochTimer()
    budget = {} if max_epochs is None else {"max_epochs": max_epochs}
    trainer = instantiate(window_cfg.trainer, callbacks=[*callbacks, timer], logger=False,
                          enable_progress_bar=interactive, plugins=[AtomicCheckpointIO()], **budget)
    trainer.fit(module, datamodule=datamodule, weights_only=True)
    best = next(c for c in trainer.checkpoint_callbacks if c.monitor).best_model_path
    module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    return time.perf_counter() - t0, int(timer.summary()["time/epochs"]), datamodule.train_set.num_targets()


def evaluate(tester: L.Trainer, module: RecModule, datamodule) -> dict[str, float]:
    results = tester.test(module, datamodule=datamodule, verbose=False)[0]
    return {k: float(v) for k, v in results.items() if k.startswith("test/")}


def summary(rows: list[dict]) -> dict[str, float]:
    """Each metric's mean over the windows, each window's value; the update costs and the
    target counts summed."""
    out = {}
    for key in rows[0]:
        if key.startswith("time/") or key.endswith("/count"):
            out[key] = sum(r[key] for r in rows)
        elif key.startswith("test/"):
            out[key] = sum(r[key] for r in rows) / len(rows)
    for row in rows:
        out |= {f"window/{row['window']}/{k}": v for k, v in row.items() if k.startswith(("test/", "time/"))}
    return out


def run(cfg: DictConfig) -> dict[str, float]:
    if cfg.get("update") is None:
        raise IncompatibleConfig("research.windows needs an update strategy: "
                                 "update=frozen, retrain, finetune or replay")
    if not issubclass(get_class(cfg.split._target_), TimeWindows):
        split = cfg.split._target_.rsplit(".", 1)[-1]
        raise IncompatibleConfig(f"research.windows needs split=time_window, not {split}")
    out, _ = start(cfg)
    windows: TimeWindows = instantiate(cfg.split)
    update: Update = instantiate(cfg["update"])  # cfg.update is the mapping method
    datamodule = build_datamodule(cfg)
    write_text(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    tester = instantiate(cfg.trainer, callbacks=[], logger=False, enable_progress_bar=False)
    write_json(out / "run_info.json", provenance("research.windows") | machine(tester))
    store, module, previous, rows = datamodule.store, None, None, []
    (out / "windows.jsonl").unlink(missing_ok=True)
    for window, split in enumerate(windows.splits(store.timestamps, store.offsets)):
        step = update.step(split, previous, cfg.seed)
        seconds, epochs, targets = 0.0, 0, 0
        if step is None:
            datamodule.use_split(split)
        else:
            datamodule.use_split(step.split(split))
            if step.fresh:
                module = build_module(cfg, datamodule.meta, datamodule.targets_per_batch)
            else:  # the loss divisor of the new rows (loss.weighting=target)
                module.targets_per_batch = datamodule.targets_per_batch
            seconds, epochs, targets = fit(cfg, module, datamodule, out / "windows" / str(window), step.max_epochs)
            previous = split
        row = {"window": window, **evaluate(tester, module, datamodule), "time/update_seconds": seconds,
               "time/update_epochs": epochs, "update_targets": targets, "split": datamodule.split_counts()}
        log.info("window %d: %s", window, ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k.startswith("test/")
                                                     and k.count("/") == 1))
        with open(out / "windows.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        rows.append(row)
    results = summary(rows)
    write_json(out / "metrics.json", results)
    log.info("metrics written to %s", out / "metrics.json")
    return results


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    results = guarded(run, cfg)
    print(json.dumps({k: round(v, 4) for k, v in results.items() if k.startswith("test/") and k.count("/") == 1},
                     indent=1))


if __name__ == "__main__":
    precheck(sys.argv[1:])
    main()
