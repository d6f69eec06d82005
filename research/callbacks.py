"""Small Lightning callbacks (and one logger) the library does not ship."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Annotated

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.trainer.states import TrainerFn

from research.bounds import Between
from research.io import atomic_path

log = logging.getLogger(__name__)


class EpochTimer(L.Callback):
    """Wall seconds of every training epoch and every validation pass, logged and kept. Lightning
    2 validates inside the training epoch, before `on_train_epoch_end`: the training clock stops
    when validation starts, so the two figures never overlap."""

    def __init__(self):
        self.train_seconds: list[float] = []
        self.eval_seconds: list[float] = []
        self._t0 = self._v0 = 0.0
        self._train_end: float | None = None

    @staticmethod
    def _now(trainer) -> float:
        # on a GPU the clock reads after the queued work: a few syncs per epoch, none per step
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t0, self._train_end = self._now(trainer), None

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._v0 = self._now(trainer)
        if trainer.training is False and trainer.state.fn == "fit" and not trainer.sanity_checking \
                and self._train_end is None:
            self._train_end = self._v0
            # kept now, before this epoch's checkpoint is written, so a resumed run counts it
            self.train_seconds.append(self._train_end - self._t0)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self.eval_seconds.append(self._now(trainer) - self._v0)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._train_end is None:  # an epoch without validation
            self.train_seconds.append(self._now(trainer) - self._t0)
        seconds = self.train_seconds[-1]
        pl_module.log("time/train_epoch_seconds", seconds, on_epoch=True)
        log.info("epoch %d: %.2f s training%s", trainer.current_epoch, seconds, self.progress(trainer))

    def state_dict(self) -> dict:
        """In every checkpoint: a resumed run's time/ figures cover all of its epochs."""
        return {"train_seconds": list(self.train_seconds), "eval_seconds": list(self.eval_seconds)}

    def load_state_dict(self, state: dict) -> None:
        self.train_seconds, self.eval_seconds = list(state["train_seconds"]), list(state["eval_seconds"])

    @staticmethod
    def progress(trainer) -> str:
        """The epoch's monitored validation metric (and the best so far) and training loss, so
        that a log file reads one line per epoch."""
        metrics, parts = trainer.callback_metrics, []
        checkpoint = trainer.checkpoint_callback
        if checkpoint is not None and checkpoint.monitor in metrics:
            value = float(metrics[checkpoint.monitor])
            # Lightning runs checkpoint callbacks last: its best does not count this epoch yet
            earlier = checkpoint.best_model_score
            pick = max if checkpoint.mode == "max" else min
            best = value if earlier is None else pick(value, float(earlier))
            parts.append(f"{checkpoint.monitor} {value:.4f} (best {best:.4f})")
        if "train/loss" in metrics:
            parts.append(f"train/loss {float(metrics['train/loss']):.4f}")
        return "; " + ", ".join(parts) if parts else ""

    def summary(self) -> dict[str, float]:
        out = {}
        if self.train_seconds:
            out["time/train_epoch_seconds"] = sum(self.train_seconds) / len(self.train_seconds)
            out["time/epochs"] = float(len(self.train_seconds))
        if self.eval_seconds:
            out["time/eval_pass_seconds"] = sum(self.eval_seconds) / len(self.eval_seconds)
        return out


class EarlyStopping(LightningEarlyStopping):
    """Lightning's early stopping, with patience in validation checks (`patience`) and, when
    `patience_steps` is set, at least that many optimiser steps: at the start of training the
    step count becomes checks (steps per check = training batches per epoch x
    check_val_every_n_epoch / gradient accumulation), and the larger patience holds. A patience
    in steps means the same amount of training on a small dataset as on a large one (10 epochs
    of Beauty at batch 256 are ~880 steps)."""

    def __init__(self, patience_steps: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.patience_steps, self.patience_checks = patience_steps, self.patience

    def on_train_start(self, trainer, pl_module) -> None:
        if not self.patience_steps:
            return
        steps_per_check = trainer.num_training_batches * (trainer.check_val_every_n_epoch or 1) \
            / trainer.accumulate_grad_batches
        self.patience = max(self.patience_checks, math.ceil(self.patience_steps / max(steps_per_check, 1)))
        log.info("early stopping: patience %d validation checks (%d steps, %.0f steps per check)",
                 self.patience, self.patience_steps, steps_per_check)


def stopping_point(curve: list[tuple[int, float]], patience: int, mode: str = "max") -> tuple[int | None, int, float]:
    """Where our EarlyStopping (min_delta 0) with `patience` checks would stop on a recorded curve of
    (epoch, monitored value): -> (epoch it stops after, or None if it runs past the curve; best
    epoch; best value). Early stopping draws no random numbers, so on a deterministic device a run
    with this patience repeats the recorded run up to that epoch (experiments/bench/patience_replay.py)."""
    better = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)
    best_epoch, best, wait = curve[0][0], curve[0][1], 0
    for epoch, value in curve[1:]:
        if math.isnan(value):  # Lightning's check_finite stops at once
            return epoch, best_epoch, best
        if better(value, best):
            best_epoch, best, wait = epoch, value, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch, best_epoch, best
    return None, best_epoch, best


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's, for a run folder that may move between a crash and its resume (renamed,
    reached by another path): the saved paths are rebased onto the folder it now has. Lightning's
    own forgets the best score when its folder moved, so the first epoch after the resume would
    count as the best, and keeps a best path that no longer exists."""

    def __init__(self, save_top_k: Annotated[int, Between(low=-1)] = 1, **kwargs):  # -1: keep every one
        super().__init__(save_top_k=save_top_k, **kwargs)

    def load_state_dict(self, state_dict: dict) -> None:
        old, new = state_dict.get("dirpath"), self.dirpath
        if old and new and old != new:
            def moved(path):
                return new + path[len(old):] if isinstance(path, str) and path.startswith(old) else path
            state_dict = {**state_dict, "dirpath": new,
                          "best_k_models": {moved(k): v for k, v in (state_dict.get("best_k_models") or {}).items()},
                          **{k: moved(state_dict.get(k)) for k in ("best_model_path", "kth_best_model_path",
                                                                     "last_model_path") if k in state_dict}}
        super().load_state_dict(state_dict)


class ValidationCurve(L.Callback):
    """Appends every validation pass's `val/` metrics as one JSON line to `path`, flushed at once,
    so another process (the sweep driver's pruner) can follow a run while it trains."""

    def __init__(self, path: Path, resume: bool = False):
        self.path = Path(path)
        if not resume:
            self.path.unlink(missing_ok=True)  # a rerun in the same folder starts a new curve

    @staticmethod
    def read(path: Path) -> list[dict]:
        """The curve's records, one per validation check (a line still being written is left out)."""
        return [json.loads(line) for line in Path(path).read_text().splitlines() if line.endswith("}")]

    def on_train_start(self, trainer, pl_module) -> None:
        # a resumed run repeats the epochs after its checkpoint: drop their old lines
        if self.path.exists() and trainer.is_global_zero:
            kept = [row for row in self.read(self.path) if row["epoch"] < trainer.current_epoch]
            self.path.write_text("".join(json.dumps(row) + "\n" for row in kept))

    def on_validation_end(self, trainer, pl_module) -> None:
        # not on_validation_epoch_end: callbacks run before the module logs that epoch's metrics
        # fitting only: the validate() call on the best checkpoint afterwards is not an epoch
        if trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking or not trainer.is_global_zero:
            return
        row = {"epoch": trainer.current_epoch,
               **{k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


class RNGState(L.Callback):
    """Saves the global torch and Python random states in every checkpoint and restores them
    on resume, so a run resumed after a crash draws the same dropout masks as an uninterrupted
    run (batch order is already a function of seed and epoch)."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        version, state, gauss = random.getstate()
        checkpoint["rng"] = {"torch": torch.get_rng_state(), "python": [version, list(state), gauss]}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if "rng" in checkpoint:
            torch.set_rng_state(checkpoint["rng"]["torch"])
            version, state, gauss = checkpoint["rng"]["python"]
            random.setstate((version, tuple(state), gauss))


class CSVLogger(LightningCSVLogger):
    """Lightning's CSV logger, except that a resumed run keeps the rows of the epochs before its
    checkpoint: Lightning's deletes metrics.csv when it starts, so a run killed and resumed lost
    its history (KeptRows puts it back)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        path = Path(self.log_dir) / "metrics.csv"
        self.previous_rows = []
        if path.is_file():
            with path.open(newline="") as f:
                self.previous_rows = list(csv.DictReader(f))


class WandbLogger(LightningWandbLogger):
    """Lightning's W&B logger, less its `anonymous=None` argument to wandb.init: W&B warns on
    every run that the setting has no effect."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._wandb_init.pop("anonymous", None)


class KeptRows(L.Callback):
    """On a resumed run, hands each CSVLogger the rows it had logged before the epoch the
    checkpoint resumes at (rows of later, repeated epochs are dropped)."""

    def on_train_start(self, trainer, pl_module) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, CSVLogger) and logger.previous_rows:
                kept = [row for row in logger.previous_rows
                        if row.get("epoch") and int(float(row["epoch"])) < trainer.current_epoch]
                logger.experiment.metrics[:0] = kept
                logger.previous_rows = []


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint writer, atomic on a local disk: the file is written beside its
    target and renamed over it, so a full disk or a kill leaves the previous checkpoint whole.
    (Lightning's own transaction stages the file in the system temp directory and copies it in,
    and a full disk cuts that copy short: a truncated last.ckpt.)"""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if "://" in str(path):  # remote storage: Lightning's writer
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()  # serialised first: torch.save on a full disk fails with a RuntimeError
        torch.save(checkpoint, buffer)
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(buffer.getbuffer())
        except OSError as err:  # named by the checkpoint, not by its temporary file
            raise OSError(err.errno, err.strerror, str(path)) from err
