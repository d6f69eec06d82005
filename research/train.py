"""Train, early-stop on validation, evaluate on test, write metrics.json.

    python -m research.train data=synthetic model=gru task=next_item [key=value ...]
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import hydra
import lightning.pytorch as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from research.callbacks import AtomicCheckpointIO, EpochTimer, KeptRows, RNGState, ValidationCurve
from research.cli import error_line, fail
from research.config import check, check_objective, flat, precheck
from research.data.schema import BadInput
from research.errors import IncompatibleConfig
from research.io import write_json, write_text
from research.metrics import measures_categories
from research.models import FittedOnData
from research.module import RecModule
from research.resources import StageMeter
from research.tasks import Task, check_supported

log = logging.getLogger(__name__)

# W&B's console chatter (its summary table, tips, a deprecation note from every WandbLogger) is off
# unless asked for, also for a user who runs the entry point without sourcing scripts/env.sh
for _key in ("WANDB_SILENT", "WANDB_X_DISABLE_STATS"):
    os.environ.setdefault(_key, "true")


def provenance(entry: str = "research.train") -> dict:
    """What produced a run: the command line and the code's git commit (if any)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                                  cwd=Path(__file__).parent).stdout.strip()
        except (OSError, subprocess.SubprocessError):  # no git, or it hangs: provenance stays empty
            return ""

    return {"command": " ".join([f"python -m {entry}", *sys.argv[1:]]), "git_commit": git("rev-parse", "HEAD"),
            "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def machine(trainer: L.Trainer) -> dict:
    """Where a run's timings and numbers came from."""
    device = trainer.strategy.root_device
    return {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch": torch.__version__, "threads": torch.get_num_threads(), "world_size": trainer.world_size}


def category_report_rows(report: dict[str, torch.Tensor], names: tuple[str, ...]) -> list[dict]:
    return [
        {"category": names[c - 1], **{k: float(v[c]) for k, v in report.items()}}
        for c in range(1, report["support"].numel())
    ]


def resume_checkpoint(out: Path) -> str | None:
    """The run folder's last checkpoint when it loads. A broken one (a kill or a full disk during
    its write) is moved aside to last.ckpt.broken, with a warning, and training starts afresh."""
    last = out / "checkpoints" / "last.ckpt"
    if not last.is_file():
        log.info("resume: no %s, starting afresh", last)
        return None
    try:
        torch.load(last, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or corrupt: torch raises several kinds
        last.replace(last.with_name("last.ckpt.broken"))
        log.warning("resume: %s is unreadable (%s): moved to last.ckpt.broken, starting afresh",
                    last, type(err).__name__)
        return None
    log.info("resuming from %s", last)
    return str(last)


# what a resumed run may change: where and how it logs (its folder may have moved), its budget and
# patience, threads
RESUMABLE_CHANGES = ("paths", "logger", "resume", "threads", "compile", "callbacks", "trainer.default_root_dir",
                     "trainer.max_epochs", "trainer.max_time", "trainer.max_steps")


def refuse_changed_settings(cfg: DictConfig, out: Path) -> None:
    """Before anything in the run folder is touched: a resumed run must compute what its saved
    config.yaml says, or its checkpoint and logs would no longer match its config."""
    saved = out / "config.yaml"
    if not saved.is_file():
        return
    try:
        before = flat(OmegaConf.to_container(OmegaConf.load(saved), resolve=False))
    except Exception as err:  # damaged: nothing proves the checkpoint matches these settings
        raise IncompatibleConfig(f"resume=true: {saved} is unreadable ({type(err).__name__}); "
                                 "write the run elsewhere") from None
    now = flat(OmegaConf.to_container(cfg, resolve=True))
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k)
                     and not any(k == p or k.startswith(f"{p}.") for p in RESUMABLE_CHANGES))
    if changed:
        shown = ", ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed[:4])
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        raise IncompatibleConfig(f"resume=true: {saved} was trained with other settings ({shown}{more}); "
                                 "resume with the same settings, or write the run elsewhere")


def build_datamodule(cfg: DictConfig):
    """The data a run reads, cut into the task's rows (built or read from the cache)."""
    log.info("building data <%s>", cfg.data.builder._target_)
    # the task is handed over after instantiation: Hydra would turn a dataclass argument into a config
    datamodule = instantiate(cfg.datamodule, builder=instantiate(cfg.data.builder), _partial_=True)(
        examples=instantiate(cfg.task))
    datamodule.prepare_data()
    datamodule.setup()
    return datamodule


def build_module(cfg: DictConfig, meta, targets_per_batch: float = 1.0) -> RecModule:
    """The module a run trains and evaluates; also how a saved run is rebuilt (research.tracking).
    `targets_per_batch` (the datamodule's) divides the summed loss under loss.weighting=target."""
    log.info("building model <%s> for task <%s>", cfg.model._target_, cfg.task.name)
    task: Task = instantiate(cfg.task)
    return task.module(
        instantiate(cfg.model, meta=meta),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        item_loss=instantiate(cfg.loss.item, meta=meta),
        category_loss=instantiate(cfg.loss.category),
        item_category=meta.item_category,
        eval=cfg.eval,
        loss_weighting=cfg.loss.weighting,
        targets_per_batch=targets_per_batch,
    )


def start(cfg: DictConfig) -> tuple[Path, Task]:
    """What every entry point that trains does first, before any data is built: the run folder,
    the threads, every check of the config, the seed. Returns the folder and the task."""
    out = Path(cfg.paths.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    check(cfg)
    check_objective(cfg, HydraConfig.get().runtime.choices.get("loss") if HydraConfig.initialized() else None)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    task: Task = instantiate(cfg.task)
    check_supported(get_class(cfg.model._target_), task.name)
    return out, task


def run(cfg: DictConfig) -> dict[str, float]:
    out, task = start(cfg)
    if cfg.eval.migration_latency and not get_class(cfg.split._target_).consecutive_targets:
        raise IncompatibleConfig(f"eval.migration_latency needs consecutive targets per user (split=user_holdout); "
                                 f"split {cfg.split._target_.rsplit('.', 1)[-1]} has one per user")

    if cfg.resume:
        refuse_changed_settings(cfg, out)

    meter = StageMeter()
    with meter.stage("data"):  # the cache entry built or read, the split made
        datamodule = build_datamodule(cfg)
        write_json(out / "data_report.json", {"cache_entry": str(datamodule.directory), **datamodule.build_counts(),
                                              "split": datamodule.split_counts()})
    if not measures_categories(datamodule.meta.num_categories):  # category accuracy would be 1.0 by construction
        why = f"{datamodule.meta.name} has {datamodule.meta.num_categories} category"
        if task.predicts_categories:
            raise IncompatibleConfig(f"task {task.name} predicts categories, but {why}")
        log.warning("%s: category metrics and the stay/shift slices are skipped (they would read 1.0 and 0 "
                    "by construction)", why)
    trivial = [k for k in cfg.eval.ks if k >= datamodule.meta.num_items]
    if trivial and task.ranks_items:  # every item is in the top k: hit@k is 1 whatever the model
        log.warning("%s has %d items: hit@k and ndcg@k for k in %s rank the whole catalogue and measure nothing",
                    datamodule.meta.name, datamodule.meta.num_items, trivial)
    module = build_module(cfg, datamodule.meta, datamodule.targets_per_batch)
    if cfg.compile and module.trainable:  # mixed precision is Lightning's own: trainer.precision=bf16-mixed
        module.model.compile()  # in place: parameter names, and so checkpoints, are unchanged
    timer = EpochTimer()
    callbacks = [instantiate(c) for c in cfg.callbacks.values()] if module.trainable else []
    interactive = sys.stdout.isatty()
    if not interactive:  # a log file: one line per epoch (EpochTimer), no bar redrawn with \r
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers = [instantiate(c) for c in cfg.logger.values()]
    resume_from = resume_checkpoint(out) if cfg.resume and module.trainable else None
    extra = [ValidationCurve(out / "validation_curve.jsonl", resume=resume_from is not None), RNGState(),
             *([KeptRows()] if resume_from else [])] if module.trainable else []
    trainer = instantiate(cfg.trainer, callbacks=[*callbacks, timer, *extra], logger=loggers,
                          enable_progress_bar=interactive, plugins=[AtomicCheckpointIO()])
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for logger in loggers:
        logger.log_hyperparams(resolved)
    write_text(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))  # atomic: a resume reads it
    write_json(out / "run_info.json", provenance() | machine(trainer))

    ckpt = None
    with meter.stage("fit"):
        if module.trainable:
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
            # the monitored checkpoint's file (ckpt_path="best" is ambiguous beside the last-epoch one)
            ckpt = next(c for c in trainer.checkpoint_callbacks if c.monitor).best_model_path
        elif isinstance(module.model, FittedOnData):  # fitted outside gradient descent (tree models)
            for name, text in module.model.fit_data(datamodule.fit_data()).items():
                write_text(out / name, text)
        else:
            log.info("model has no trainable parameters: evaluating only")
    timing = timer.summary()  # now: evaluating a checkpoint below restores the timer of its epoch
    # checkpoints are read as weights only (no pickled code), on resume and for the best epoch
    with meter.stage("evaluate"):  # the best checkpoint's validation and test passes
        results = {**trainer.validate(module, datamodule=datamodule, ckpt_path=ckpt, verbose=False,
                                      weights_only=True)[0],
                   **trainer.test(module, datamodule=datamodule, ckpt_path=ckpt, verbose=False, weights_only=True)[0]}
    results = {k: float(v) for k, v in results.items() if k.startswith(("val/", "test/"))}
    results |= timing | {"time/total_seconds": meter.stages["fit"]["seconds"] + meter.stages["evaluate"]["seconds"]}
    write_json(out / "resources.json", meter.report())
    write_json(out / "metrics.json", results)
    if "test" in module.category_reports:  # tasks that predict categories
        write_json(out / "category_report.json",
                   {"test": category_report_rows(module.category_reports["test"], datamodule.meta.category_names)})
    for logger in loggers:
        logger.log_metrics({f"final/{k}": v for k, v in results.items()})
        logger.finalize("success")
    _finish_wandb()
    log.info("metrics written to %s", out / "metrics.json")
    return results


def _finish_wandb() -> None:
    """One W&B run per training run, also when several runs share a process (tests, sweeps)."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def quiet_libraries() -> None:
    """Lightning's per-run notices (accelerators found, tips, checkpoint restores) and one
    known deprecation inside Lightning on current torch (../shared/STACK.md) are not news to
    the reader of a run's log; their warnings and errors still print."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # resume=true reopens its run folder on purpose (the CSV history is kept: callbacks.KeptRows)
    warnings.filterwarnings("ignore", message=r"(Experiment logs|Checkpoint) directory .* exists and is not empty")
    # a full disk: the log file's handler would print a traceback for every record it cannot
    # write; the console still shows them, and the run's next real write fails in one line
    logging.raiseExceptions = False


def guarded(run: Callable[[DictConfig], dict], cfg: DictConfig) -> dict[str, float]:
    """`run(cfg)`, with every failure we can name ending in one `error:` line."""
    quiet_libraries()
    try:
        return run(cfg)
    except (IncompatibleConfig, BadInput, OSError) as err:  # OSError: a path that is a file, a full disk
        fail(err, error_line(err))
    except InstantiationException as err:  # a constructor refused its settings: name the section
        cause = err.__cause__ or err
        if isinstance(cause, (BadInput, FileNotFoundError, ValueError)):  # our messages name file or key
            fail(cause)
        section = str(err).rsplit("full_key:", 1)[-1].strip() if "full_key:" in str(err) else "config"
        fail(cause, f"{section}: {type(cause).__name__}: {cause}")
    except (ValueError, MisconfigurationException) as err:  # our own checks in builders and
        fail(err)  # schedules, and Lightning's of its settings (HYDRA_FULL_ERROR=1: the traceback)


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    if cfg.get("update") is not None:
        fail(IncompatibleConfig("update strategies follow drifting data window by window: run them with "
                                "python -m research.windows"))
    results = guarded(run, cfg)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # without it some gloo runs abort at exit
    summary = {k: round(v, 4) for k, v in results.items() if k.startswith("test/") and "/" not in k[5:]}
    if rank_zero_only.rank == 0:  # under DDP every rank gets here; one summary is enough
        print(json.dumps(summary, indent=1))
    return results.get(cfg.task.monitor)


if __name__ == "__main__":
    precheck(sys.argv[1:])
    main()
