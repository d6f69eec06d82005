"""Small Lightning callbacks the library does not ship."""

from __future__ import annotations

import logging
import time

import lightning.pytorch as L

log = logging.getLogger(__name__)


class EpochTimer(L.Callback):
    """Wall seconds of every training epoch and every validation pass, logged and kept."""

    def __init__(self):
        self.train_seconds: list[float] = []
        self.eval_seconds: list[float] = []
        self._t0 = self._v0 = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        seconds = time.perf_counter() - self._t0
        self.train_seconds.append(seconds)
        pl_module.log("time/train_epoch_seconds", seconds, on_epoch=True)
        log.info("epoch %d: %.2f s training", trainer.current_epoch, seconds)

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._v0 = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self.eval_seconds.append(time.perf_counter() - self._v0)

    def summary(self) -> dict[str, float]:
        out = {}
        if self.train_seconds:
            out["time/train_epoch_seconds"] = sum(self.train_seconds) / len(self.train_seconds)
            out["time/epochs"] = float(len(self.train_seconds))
        if self.eval_seconds:
            out["time/eval_pass_seconds"] = sum(self.eval_seconds) / len(self.eval_seconds)
        return out
