"""The Optuna sweep driver: trials run in their own processes, a killed sweep resumes without
losing or rerunning a finished trial, and failing trials never stop the sweep."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from omegaconf import OmegaConf

from tests.conftest import ROOT, TINY_SYNTHETIC, stop_with_sigterm
from tests.conftest import train_in_process as run


def sweep_command(tmp_path, n_trials: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "research.sweep", "hparams_search=sasrec_optuna", "debug=fast", *TINY_SYNTHETIC,
            f"sweep.n_trials={n_trials}", f"sweep.dir={tmp_path / 'sweep'}", "sweep.study_name=test",
            f"sweep.storage=sqlite:///{tmp_path / 'optuna.db'}", "sweep.heartbeat_interval=1", "sweep.grace_period=2",
            f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'driver'}", *extra]


def trials(tmp_path) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    try:
        return optuna.load_study(study_name="test", storage=storage).get_trials()
    finally:
        storage.engine.dispose()


def trials_so_far(tmp_path) -> list[optuna.trial.FrozenTrial]:
    """The trials of a sweep that may not have created its storage or its study yet."""
    if not (tmp_path / "optuna.db").exists():
        return []
    try:
        return trials(tmp_path)
    except (KeyError, RuntimeError, sqlalchemy.exc.SQLAlchemyError):
        # the file exists while the sweep still creates its tables, version record or study
        return []


def test_a_stopped_sweep_ends_the_trial_it_was_training(tmp_path):
    long_trial = ("trainer.max_epochs=100000", "trainer.limit_train_batches=1.0", "sweep.trial_timeout=100000")
    run_dir = tmp_path / "sweep" / "trial_0000"
    stop_with_sigterm(sweep_command(tmp_path, 1, *long_trial), ROOT,
                      started=lambda: (run_dir / "validation_curve.jsonl").is_file(), marker=f"hydra.run.dir={run_dir}")
    assert [t.state for t in trials(tmp_path)] == [optuna.trial.TrialState.FAIL]  # not left RUNNING


def test_a_killed_sweep_resumes_without_losing_or_repeating_a_finished_trial_and_refuses_other_settings(
        tmp_path, capfd):
    proc = subprocess.Popen(sweep_command(tmp_path, 3), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:  # kill it while trial 1 runs, after trial 0 finished
            time.sleep(0.3)
            states = [t.state for t in trials_so_far(tmp_path)]
            if states[:1] == [optuna.trial.TrialState.COMPLETE] and optuna.trial.TrialState.RUNNING in states:
                break
        else:
            pytest.fail("the sweep never reached a finished trial followed by a running one")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its trial process, as a crash would
        proc.wait()
    before = {t.number: t.value for t in trials(tmp_path) if t.state == optuna.trial.TrialState.COMPLETE}
    time.sleep(3)  # past the grace period: the dead worker's trial is stale

    done = subprocess.run(sweep_command(tmp_path, 3), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = trials(tmp_path)
    complete = [t for t in after if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 3
    assert all(after[n].value == v for n, v in before.items())  # kept, not rerun
    assert [t.state for t in after].count(optuna.trial.TrialState.FAIL) == 1  # the killed trial
    finished_runs = sorted(p.parent.name for p in (tmp_path / "sweep").glob("trial_*/metrics.json"))
    assert finished_runs == sorted(f"trial_{t.number:04d}" for t in complete)
    assert (tmp_path / "sweep" / "best.json").is_file() and (tmp_path / "sweep" / "best_config.yaml").is_file()

    # a rerun under another budget or search space would rank incomparable trials together
    for change, shown in [("trainer.max_epochs=2", "trainer.max_epochs: 1 -> 2"),
                          ("sweep.pruner.n_warmup_steps=2", "pruner.n_warmup_steps: 4 -> 2")]:
        # in this process (the refusal comes before any trial): the same entry point, seconds sooner
        arguments = [a for a in sweep_command(tmp_path, 4, change)[3:] if not a.startswith(("paths.", "hydra."))]
        code, lines = run(arguments, tmp_path, capfd, module="research.sweep")
        assert code != 0
        errors = [line for line in lines if line.startswith("error:")]
        assert len(errors) == 1 and not any("Traceback" in line for line in lines), lines[-20:]
        assert "sweep.study_name=test: this study was started with other settings" in errors[0]
        assert shown in errors[0] and "give a new sweep.study_name" in errors[0]
    assert [(t.number, t.state) for t in trials(tmp_path)] == [(t.number, t.state) for t in after]  # untouched


def test_failing_trials_are_marked_failed_and_the_sweep_reports_it(tmp_path):
    # settings each in range but refused together when the data is built (fewer items than
    # categories): every trial's training process fails
    proc = subprocess.run(sweep_command(tmp_path, 1, "data.builder.num_items=3"), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "only 0 of 1 trials finished" in proc.stderr
    assert [t.state for t in trials(tmp_path)] == [optuna.trial.TrialState.FAIL] * 2  # retried once, bounded


def test_trials_are_grouped_in_wandb_by_study_and_keep_the_command_line_overrides(make_cfg):
    from research.sweep import Objective

    cfg = make_cfg("hparams_search=sasrec_optuna", "logger=default", "sweep.study_name=grouped")
    study = optuna.create_study()
    overrides = Objective(cfg, ["hparams_search=sasrec_optuna", "trainer.max_epochs=1"]).overrides(study.ask())
    assert overrides[:2] == ["hparams_search=sasrec_optuna", "trainer.max_epochs=1"]
    assert "logger.wandb.group=grouped" in overrides
    assert {o.split("=")[0] for o in overrides} >= set(cfg.sweep.params)  # one value per searched key
    csv_only = make_cfg("hparams_search=sasrec_optuna", "logger=csv")
    assert not any("wandb" in o for o in Objective(csv_only, []).overrides(study.ask()))


def test_the_pruner_stops_a_trial_from_its_validation_curve_and_the_sweep_goes_on(tmp_path, make_cfg):
    # a threshold no trial can reach: each is pruned at its first validation epoch, its process killed
    proc = subprocess.run(sweep_command(tmp_path, 2, "trainer.max_epochs=50", "callbacks.early_stopping.patience=50",
                                        "~sweep.pruner", "+sweep.pruner._target_=optuna.pruners.ThresholdPruner",
                                        "+sweep.pruner.lower=1.01", "sweep.poll_seconds=0.2"),
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    done = trials(tmp_path)
    assert [t.state for t in done] == [optuna.trial.TrialState.PRUNED] * 2
    cfg = make_cfg("hparams_search=sasrec_optuna")
    assert done[0].params == {k: OmegaConf.select(cfg, k) for k in cfg.sweep.params}  # the default config first
    from research.sweep_report import markdown

    report = markdown(tmp_path / "sweep")
    assert report.count("| PRUNED | 1 |") == 2 and "Best:" not in report  # no complete trial, no best
    for t in done:
        run = tmp_path / "sweep" / f"trial_{t.number:04d}"
        assert not (run / "metrics.json").exists()  # killed before its 50 epochs ended
        epochs = [json.loads(line)["epoch"] for line in (run / "validation_curve.jsonl").read_text().splitlines()]
        assert min(t.intermediate_values) == 0 and len(epochs) < 50
        assert t.intermediate_values[0] == pytest.approx(
            json.loads((run / "validation_curve.jsonl").read_text().splitlines()[0])["val/ndcg@10"])


def test_the_validation_curve_has_one_line_per_training_epoch(tmp_path, make_cfg):
    from research.train import run

    cfg = make_cfg("model=gru", "debug=fast", *TINY_SYNTHETIC, "trainer.max_epochs=3",
                   "callbacks.early_stopping.patience=50")
    run(cfg)
    curve = Path(cfg.paths.output_dir) / "validation_curve.jsonl"
    rows = [json.loads(line) for line in curve.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2]  # no sanity check, no final validate() on the best checkpoint
    # each row is its own epoch's figures (no lag): the best checkpoint's validation equals the best row
    best = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())[cfg.task.monitor]
    assert max(r[cfg.task.monitor] for r in rows) == pytest.approx(best)
