"""Early stopping in optimiser steps and learning-rate schedules, observed through the real
driver (research.train.run -> Trainer.fit)."""

import json
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch

from research.callbacks import ValidationCurve, stopping_point
from research.config import check
from research.errors import IncompatibleConfig
from research.schedules import warmup
from research.train import build_datamodule, run
from tests.conftest import TINY_SYNTHETIC

BASE = ("model=gru", "logger=csv", "datamodule.batch_size=32", "threads=1", *TINY_SYNTHETIC)


class LearningRates(L.Callback):
    """Writes the learning rate each training step ran with."""

    def __init__(self, path: str):
        self.path, self.rates = Path(path), []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_end(self, trainer, pl_module) -> None:
        self.path.write_text(json.dumps(self.rates))


def steps_per_epoch(make_cfg) -> int:
    cfg = make_cfg(*BASE)
    datamodule = build_datamodule(cfg)
    datamodule.setup()
    return len(datamodule.train_dataloader())


def test_patience_in_steps_keeps_training_beyond_the_patience_in_epochs(make_cfg, tmp_path):
    # min_delta so large that nothing after the first validation counts as an improvement
    never_better = ("trainer.max_epochs=10", "callbacks.early_stopping.patience=1",
                    "+callbacks.early_stopping.min_delta=1e9")
    epochs_only = run(make_cfg(*BASE, *never_better, "callbacks.early_stopping.patience_steps=null",
                               f"paths.output_dir={tmp_path / 'epochs'}"))
    assert epochs_only["time/epochs"] == 2  # the best epoch, then 1 without improvement
    steps = 3 * steps_per_epoch(make_cfg)  # 3 epochs' worth of optimiser steps: patience 3 checks
    in_steps = run(make_cfg(*BASE, *never_better, f"callbacks.early_stopping.patience_steps={steps}",
                            f"paths.output_dir={tmp_path / 'steps'}"))
    assert in_steps["time/epochs"] == 4


def test_the_loss_sets_the_patience_in_steps_that_the_driver_stops_with(make_cfg, tmp_path):
    never_better = ("trainer.max_epochs=10", "callbacks.early_stopping.patience=1",
                    "+callbacks.early_stopping.min_delta=1e9")
    steps = 3 * steps_per_epoch(make_cfg)
    result = run(make_cfg(*BASE, *never_better, f"loss.patience_steps={steps}", f"paths.output_dir={tmp_path}"))
    assert result["time/epochs"] == 4
    patience = lambda *o: make_cfg(*BASE, *o).callbacks.early_stopping.patience_steps  # noqa: E731
    assert patience("loss=gbce") > patience("loss=ce") == patience() > 0  # gBCE's slow start
    assert patience("loss=gbce", "callbacks.early_stopping.patience_steps=7") == 7  # the explicit value wins


def test_warmup_is_stepped_every_optimiser_step(make_cfg, tmp_path):
    path = tmp_path / "rates.json"
    run(make_cfg(*BASE, "trainer.max_epochs=2", "scheduler=warmup", "scheduler.warmup_steps=1000",
                 "optimizer.lr=0.001", "+callbacks.rates._target_=tests.test_schedules.LearningRates",
                 f"+callbacks.rates.path={path}"))
    rates = json.loads(path.read_text())
    expected = [0.001 * (step + 1) / 1000 for step in range(len(rates))]
    assert rates == pytest.approx(expected)  # one scheduler step per optimiser step, across epochs


@pytest.mark.parametrize("decay, halfway, end", [("constant", 1.0, 1.0), ("linear", 0.5, 0.0),
                                                  ("cosine", 0.5, 0.0)])
def test_warmup_then_decay(decay, halfway, end):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = warmup(optimizer, total_steps=110, warmup_steps=10, decay=decay)
    factors = [schedule.lr_lambdas[0](step) for step in (0, 9, 60, 110)]
    assert factors[:2] == [0.1, 1.0]
    assert factors[2:] == pytest.approx([halfway, end])


def test_an_unknown_decay_or_a_negative_warm_up_is_refused_when_the_config_is_composed(make_cfg):
    with pytest.raises(IncompatibleConfig, match=r"^scheduler.decay='step': must be one of constant, linear, cosine$"):
        check(make_cfg("scheduler=warmup", "scheduler.decay=step"))
    with pytest.raises(IncompatibleConfig, match=r"^scheduler.warmup_steps=-1: must be an integer >= 0$"):
        check(make_cfg("scheduler=warmup", "scheduler.warmup_steps=-1"))


def test_stopping_point_replays_early_stopping_on_a_recorded_curve(make_cfg, tmp_path):
    # a learning rate high enough that the validation curve falls back (checks without improvement)
    noisy = (*BASE, "optimizer.lr=0.05", "callbacks.early_stopping.patience_steps=null")
    run(make_cfg(*noisy, "trainer.max_epochs=8", "callbacks.early_stopping.patience=100",
                 f"paths.output_dir={tmp_path / 'long'}"))
    long = ValidationCurve.read(tmp_path / "long" / "validation_curve.jsonl")
    curve = [(r["epoch"], r["val/ndcg@10"]) for r in long]
    stop, _, best = stopping_point(curve, 1)
    assert stop is not None and stop < 7  # the case under test: patience 1 stops inside the curve
    short = run(make_cfg(*noisy, "trainer.max_epochs=8", "callbacks.early_stopping.patience=1",
                         f"paths.output_dir={tmp_path / 'short'}"))
    assert short["time/epochs"] == stop + 1
    replayed = ValidationCurve.read(tmp_path / "short" / "validation_curve.jsonl")
    assert replayed == long[:stop + 1]  # the same epochs, bit for bit
    assert short["val/ndcg@10"] == pytest.approx(best)  # the best checkpoint's figure
