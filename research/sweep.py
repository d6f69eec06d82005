"""Optuna hyper-parameter search over `research.train`, one process per trial.

    python -m research.sweep hparams_search=sasrec_optuna [sweep.n_trials=20] [any training key=value]

The search space, objective metric, study name and storage come from conf/hparams_search/.
Each trial's config is composed from the same conf/ tree (so a wrong key fails at once), then
trained by `python -m research.train` in its own process: a crash, NaN or OOM fails that trial
only. The study lives in its storage (SQLite by default, any SQLAlchemy URL to share it between
workers), so a killed sweep restarted with the same study name finishes the remaining trials:
finished trials are kept and never rerun, and a trial whose worker died is marked failed once
its heartbeat is older than `sweep.grace_period`. The driver follows each trial's validation
curve and reports it to the study, so `sweep.pruner` (any Optuna pruner) can stop poor trials.
Hydra's Optuna sweeper plugin is not used: its releases pin optuna<3 and cannot resume.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import hydra
import optuna
import sqlalchemy
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from research.cli import error_line, fail, stop_on_sigterm
from research.config import check, computation, flat, precheck
from research.errors import IncompatibleConfig
from research.io import atomic_path, write_json, write_text

log = logging.getLogger(__name__)
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


class TrialFailed(RuntimeError):
    """The trial's process failed or its metric is missing or not finite: the trial is marked
    failed and the sweep goes on."""


def suggest(trial: optuna.Trial, key: str, space: DictConfig):
    kind = space.type
    if kind == "float":
        return trial.suggest_float(key, space.low, space.high, log=space.get("log", False))
    if kind == "int":
        return trial.suggest_int(key, space.low, space.high, log=space.get("log", False))
    if kind == "categorical":
        return trial.suggest_categorical(key, list(space.choices))
    raise ValueError(f"sweep.params.{key}: type must be float, int or categorical, got '{kind}'")


class Objective:
    """Trains one trial in a subprocess and returns its validation metric."""

    def __init__(self, cfg: DictConfig, base_overrides: list[str]):
        self.sweep, self.base = cfg.sweep, base_overrides
        self.wandb = "wandb" in cfg.get("logger", {})

    def overrides(self, trial: optuna.Trial) -> list[str]:
        params = [f"{k}={suggest(trial, k, space)}" for k, space in self.sweep.params.items()]
        extra = [f"logger.wandb.group={self.sweep.study_name}"] if self.wandb else []
        return [*self.base, *params, *extra]

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        overrides = self.overrides(trial)
        check(compose(config_name="train", overrides=overrides))  # a wrong key or value fails here, in one line
        run_dir = Path(self.sweep.dir) / f"trial_{trial.number:04d}"
        run_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "research.train", *overrides, f"hydra.run.dir={run_dir}"]
        log.info("trial %d: %s", trial.number, " ".join(overrides[len(self.base):]))
        with open(run_dir / "stdout.log", "w") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
            try:
                returncode = self.follow(trial, proc, run_dir / "validation_curve.jsonl")
            finally:
                if proc.poll() is None:  # pruned, timed out, or the driver itself interrupted
                    proc.kill()
                    proc.wait()
        if returncode != 0:
            raise TrialFailed(f"trial {trial.number}: exit code {returncode}, see {run_dir / 'stdout.log'}")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        value = metrics.get(self.sweep.metric, float("nan"))
        if not math.isfinite(value):
            raise TrialFailed(f"trial {trial.number}: {self.sweep.metric} = {value}")
        trial.set_user_attr("run_dir", str(run_dir))
        return value

    def follow(self, trial: optuna.Trial, proc: subprocess.Popen, curve: Path) -> int:
        """Waits for the trial's process, reporting each validation epoch to the study so the
        pruner can stop a poor trial early (the process is then killed and the trial PRUNED)."""
        deadline, reported = time.monotonic() + self.sweep.trial_timeout, 0
        while True:
            returncode = proc.poll()
            lines = curve.read_text().splitlines() if curve.exists() else []
            for line in lines[reported:]:
                if not line.endswith("}"):  # being written
                    break
                row = json.loads(line)
                reported += 1
                value = row.get(self.sweep.metric)
                if value is None or not math.isfinite(value):
                    continue  # a NaN epoch is judged by the final metric, not reported
                trial.report(value, step=row["epoch"])
                if returncode is None and trial.should_prune():
                    log.info("trial %d: pruned after epoch %d (%s = %.4f)", trial.number, row["epoch"],
                             self.sweep.metric, value)
                    raise optuna.TrialPruned(f"epoch {row['epoch']}: {self.sweep.metric} = {value}")
            if returncode is not None:
                return returncode
            if time.monotonic() > deadline:
                raise TrialFailed(f"trial {trial.number}: timed out after {self.sweep.trial_timeout} s")
            time.sleep(self.sweep.poll_seconds)


def connect(sweep: DictConfig, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Workers that start together on an empty database race to create its tables; the loser's
    DDL fails with an integrity error, and a retry finds the tables made."""
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(sweep.storage, heartbeat_interval=sweep.heartbeat_interval,
                                              grace_period=sweep.grace_period)
        except sqlalchemy.exc.SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 + random.random())


def definition(cfg: DictConfig) -> dict:
    """What makes a rerun the same study: the search (space, metric, direction, pruner) and the
    config every trial starts from, its budget included (research.config.computation); not the
    number of trials wanted, nor where trials write and log."""
    search = {k: OmegaConf.to_container(cfg.sweep, resolve=True).get(k) for k in ("params", "metric", "direction",
                                                                                  "pruner")}
    # through JSON, as the study keeps it (tuples become lists)
    return json.loads(json.dumps({"search": search, "trials": computation(cfg)}, sort_keys=True, default=str))


class StudyChanged(ValueError):
    """A rerun whose search or trial settings differ from those the study was started with."""


def open_study(cfg: DictConfig) -> optuna.Study:
    """The study named sweep.study_name, created or continued. A rerun continues it only with the
    settings it was started with (more trials are fine): trials trained under another budget or
    drawn from another space would be ranked together as if they were comparable."""
    sweep = cfg.sweep
    # heartbeats are "experimental" in Optuna 5 but are the documented way to fail dead workers' trials
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage = connect(sweep)
    pruner = instantiate(sweep.pruner) if sweep.get("pruner") else optuna.pruners.NopPruner()
    study = optuna.create_study(study_name=sweep.study_name, storage=storage, direction=sweep.direction,
                                pruner=pruner, load_if_exists=True)
    now, started = definition(cfg), study.user_attrs.get("definition")
    if started is None:  # a new study (or one from before definitions were kept): this is its definition
        study.set_user_attr("definition", now)
    elif started != now:
        before, after = flat(started), flat(now)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        shown = ", ".join(f"{k.split('.', 1)[1]}: {before.get(k)!r} -> {after.get(k)!r}" for k in changed[:3])
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise StudyChanged(f"sweep.study_name={sweep.study_name}: this study was started with other settings "
                           f"({shown}{more}); rerun it with those, or give a new sweep.study_name to start another")
    # a fixed seed would re-propose the first trials' parameters after a restart
    study.sampler = optuna.samplers.TPESampler(seed=sweep.sampler_seed + len(study.trials))
    return study


def finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def write_summary(study: optuna.Study, directory: Path) -> None:
    """trials.csv, best.json, best_config.yaml; each replaced atomically (workers may race)."""
    trials = study.get_trials(deepcopy=False)
    keys = sorted({k for t in trials for k in t.params})
    with atomic_path(directory / "trials.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "state", "value", "worker", *keys])
        for t in trials:
            writer.writerow([t.number, t.state.name, t.value, t.user_attrs.get("worker"),
                             *(t.params.get(k) for k in keys)])
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        return
    best = study.best_trial
    run_dir = Path(best.user_attrs["run_dir"])
    write_json(directory / "best.json", {"number": best.number, "value": best.value, "params": best.params,
                                         "metrics": json.loads((run_dir / "metrics.json").read_text())})
    with atomic_path(directory / "best_config.yaml") as tmp:
        shutil.copyfile(run_dir / "config.yaml", tmp)


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    stop_on_sigterm()  # the running trial's process is killed on the way out (Objective)
    try:
        return run_sweep(cfg)
    except OSError as err:  # a full disk under sweep.dir
        fail(err, error_line(err))
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as err:
        # the database's own reason (a full disk, no server); not the URL, which may hold a password
        fail(err, f"sweep.storage: the study's database failed: {str(err.__cause__ or err).splitlines()[0]}")


def run_sweep(cfg: DictConfig) -> float | None:
    if "sweep" not in cfg:
        sys.exit("error: choose a search space, e.g. hparams_search=sasrec_optuna (conf/hparams_search/)")
    sweep = cfg.sweep
    try:
        check(cfg)  # the base config, before any study or trial exists
    except IncompatibleConfig as err:
        sys.exit(f"error: {err}")
    directory = Path(sweep.dir)
    directory.mkdir(parents=True, exist_ok=True)
    base = [o for o in HydraConfig.get().overrides.task if not o.startswith(("sweep.", "hydra."))]
    try:
        study = open_study(cfg)
    except StudyChanged as err:
        sys.exit(f"error: {err}")
    if sweep.get("enqueue_defaults"):
        # trial 0 is the composed config itself: the before figure, under the sweep's own budget
        study.enqueue_trial({k: OmegaConf.select(cfg, k) for k in sweep.params}, skip_if_exists=True)
    objective = Objective(cfg, base)
    write_text(directory / "sweep_config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    attempts = 0
    # count finished trials over all workers and restarts; failures are retried, within a bound
    while finished(study) < sweep.n_trials and attempts < 2 * sweep.n_trials:
        try:
            study.optimize(objective, n_trials=1, catch=(TrialFailed,))
        except (IncompatibleConfig, HydraException) as err:  # a sampled value the config refuses
            sys.exit(f"error: {' '.join(str(err).split())}")
        attempts += 1
    write_summary(study, directory)
    done = finished(study)
    log.info("study %s: %d finished trials (%d wanted) in %s", sweep.study_name, done, sweep.n_trials, directory)
    if done < sweep.n_trials:
        sys.exit(f"error: only {done} of {sweep.n_trials} trials finished; see {directory / 'trials.csv'}")
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return study.best_value if complete else None  # every trial pruned: no best


if __name__ == "__main__":
    precheck(sys.argv[1:])
    main()
