"""Shared fixtures. Threads and W&B are pinned before torch or wandb are imported anywhere
(see ../shared/STACK.md: thread collapse on 2 cores; W&B blocking without network)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_X_DISABLE_STATS"] = "true"
os.environ["WANDB_SILENT"] = "true"

import contextlib  # noqa: E402
import runpy  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from unittest import mock  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from hydra.utils import get_class  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
BEAUTY = ROOT.parent / "shared" / "datasets" / "amazon-beauty"

# A small simulator: seconds to build and train on.
TINY_SYNTHETIC = [
    "data.builder.num_users=200",
    "data.builder.num_items=120",
    "data.builder.num_categories=6",
    "data.builder.mean_events=30",
    "data.builder.min_events=5",
    "data.builder.max_events=60",
]


def train_in_process(arguments: list[str], root: Path, capfd=None, run_dir: Path | None = None,
                     module: str = "research.train") -> tuple[int, list[str]]:
    """`python -m research.train ARGUMENTS` (or another entry `module`) run in this process through
    the module's own `__main__` block (seconds, not a new interpreter each): the exit code and the
    stderr lines. The cache and the run folder go under `root` unless `run_dir` names the run folder."""
    flags = [a for a in arguments if a.startswith("-")]  # Hydra reads its flags before the overrides
    argv = [*flags, f"paths.cache_dir={root / 'cache'}", f"hydra.run.dir={run_dir or root / 'run'}",
            *[a for a in arguments if a not in flags]]
    GlobalHydra.instance().clear()
    with mock.patch.object(sys, "argv", [module.replace(".", "/") + ".py", *argv]), warnings.catch_warnings():
        # runpy's note that the module is imported already (by other tests) says nothing about the run
        warnings.filterwarnings("ignore", f"'{module}' found in sys.modules", RuntimeWarning)
        try:  # Hydra's config path is found from the module's file, as on the command line
            runpy.run_module(module, run_name="__main__", alter_sys=False)
            code, message = 0, None
        except SystemExit as exit:  # sys.exit("error: ...") prints its text when the interpreter exits
            code, message = (1, exit.code) if isinstance(exit.code, str) else (exit.code, None)
    err = capfd.readouterr().err if capfd else ""
    return code, err.strip().splitlines() + ([message] if message else [])


def options(group: str) -> list[str]:
    """Every option of a config group, so a new config file is tested without a new test."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def model_class(name: str) -> type:
    target = yaml.safe_load((CONF / "model" / f"{name}.yaml").read_text())["_target_"]
    return get_class(target)


def trains_on_prefixes_only(model: str) -> bool:
    """Not causal and without an objective of its own (BSARec): trains on task.train_rows=prefixes."""
    from research.models import OwnObjective, is_causal

    cls = model_class(model)
    return not is_causal(cls) and not issubclass(cls, OwnObjective)


def models_supporting(*tasks: str) -> list[str]:
    """The model options that support any of `tasks` (each model declares its own)."""
    return [m for m in options("model") if model_class(m).supported_tasks & set(tasks)]


@pytest.fixture
def make_cfg(tmp_path):
    def make(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(
                "train",
                overrides=[f"paths.output_dir={tmp_path / 'run'}", f"paths.cache_dir={tmp_path / 'cache'}",
                           *overrides],
            )

    return make


def stop_with_sigterm(command: list[str], cwd: Path, started: Callable[[], bool], marker: str) -> None:
    """Runs `command` until `started()`, stops it with SIGTERM (as `kill` or a batch scheduler
    does) and checks that it exits non-zero and leaves no process whose command line holds
    `marker` (the training process it started). Whatever is left is killed either way, so nothing
    runs on into later tests."""
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(started, 180, "the child's first epoch")
        assert processes_running(marker)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) != 0
        wait_until(lambda: not processes_running(marker), 60, "the child process to end")
    finally:
        for pid in [proc.pid, *processes_running(marker)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def processes_running(marker: str) -> list[int]:
    """Process ids whose command line contains `marker` (Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:  # ended while being read
            continue
    return found


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            pytest.fail(f"waited {seconds} s for {what}")
        time.sleep(0.2)


requires_beauty = pytest.mark.skipif(not BEAUTY.is_dir(), reason=f"{BEAUTY} not present")
